use super::*;

fn id(kind: &str, namespace: Option<&str>, name: &str) -> ResourceId {
    ResourceId {
        target: Target::K3s,
        site: "fra".into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
    }
}

fn record(body: &str) -> Record {
    let applied = RawValue::from_string(body.to_owned()).unwrap();
    Record {
        declaration: Some("serve \"chat\"".into()),
        patch: false,
        depends_on: vec![id("Namespace", None, "kinetic")],
        content_sha256: sovereign_desired::hex(&<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())),
        applied,
        live: Some(Live { uid: Some("u-1".into()), resource_version: Some("7".into()) }),
        applied_at: "2026-12-02T01:02:03Z".into(),
        unready: false,
        gate_override: None,
    }
}

fn sample() -> StateDocument {
    let mut state = StateDocument::new("lab");
    state.serial = 3;
    state.resources.insert(
        id("apps/Deployment", Some("kinetic"), "chat"),
        record(r#"{"kind":"Deployment","spec":{"replicas":2}}"#),
    );
    let mut namespace = record(r#"{"kind":"Namespace"}"#);
    namespace.depends_on.clear();
    namespace.live = None;
    namespace.declaration = None;
    state.resources.insert(id("Namespace", None, "kinetic"), namespace);
    state
}

#[test]
fn a_state_reads_back_as_it_was_written_one_resource_per_line() {
    let state = sample();
    let text = state.to_text();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.starts_with(&format!(
        r#"{{"fabric":"lab","format_version":1,"lineage":"{}","serial":3,"resources":["#,
        state.lineage
    )));
    let back = StateDocument::from_text(&text).unwrap();
    assert_eq!(back.to_text(), text);
    assert_eq!(back.serial, 3);
    let chat = &back.resources[&id("apps/Deployment", Some("kinetic"), "chat")];
    assert_eq!(chat.applied.get(), r#"{"kind":"Deployment","spec":{"replicas":2}}"#);
    assert_eq!(chat.depends_on, [id("Namespace", None, "kinetic")]);
}

#[test]
fn a_state_that_does_not_hold_together_is_refused_saying_where() {
    let text = sample().to_text();
    let cases = [
        (text.replace("\"serial\":3", "\"serial\":\"3\""), "line 1"),
        (text.replace("\"format_version\":1", "\"format_version\":9"), "newer sovereign"),
        (text.replace("\"replicas\":2", "\"replicas\":3"), "content_sha256"),
        (text.replace("\"name\":\"chat\"", "\"name\":\"other\""), "its parts make the id"),
        (text.replace("\"target\":\"k3s\"", "\"target\":\"k9s\""), "unknown target"),
        (text.replace("2026-12-02T01:02:03Z", "yesterday"), "RFC 3339"),
        (text[..text.len() / 2].to_owned(), "EOF"),
    ];
    for (bad, says) in cases {
        let error = StateDocument::from_text(&bad).unwrap_err();
        assert!(error.contains(says), "{says}: {error}");
    }
}

#[test]
fn a_save_keeps_the_previous_file_as_the_backup_and_a_corrupt_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalState::new(dir.path().join(".sovereign/state.json"));
    assert!(local.load().unwrap().is_none(), "nothing saved yet");
    let mut state = sample();
    local.save(&state).unwrap();
    assert!(!local.backup().exists(), "the first save has nothing to back up");
    let first = std::fs::read_to_string(&local.path).unwrap();
    state.serial += 1;
    local.save(&state).unwrap();
    assert_eq!(std::fs::read_to_string(local.backup()).unwrap(), first);
    assert_eq!(local.load().unwrap().unwrap().serial, 4);
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(local.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Truncated by hand: an error that names the backup, which is untouched.
    let current = std::fs::read_to_string(&local.path).unwrap();
    std::fs::write(&local.path, &current[..current.len() / 3]).unwrap();
    let error = local.load().unwrap_err().0;
    assert!(error.contains("cannot be read") && error.contains("state.json.backup"), "{error}");
    assert_eq!(std::fs::read_to_string(local.backup()).unwrap(), first);

    // Deleted, with a backup beside it: never an empty state.
    std::fs::remove_file(&local.path).unwrap();
    assert!(local.load().unwrap_err().0.contains("is missing but its backup"));
}

#[test]
fn a_large_state_reads_back_on_every_core_and_a_reformatted_one_still_reads() {
    let mut state = sample();
    let template = state.resources[&id("apps/Deployment", Some("kinetic"), "chat")].clone();
    for n in 0..2000 {
        state.resources.insert(id("apps/Deployment", Some("kinetic"), &format!("chat-{n:04}")), template.clone());
    }
    let text = state.to_text();
    assert_eq!(text.lines().count(), 2002 + 2);
    let back = StateDocument::from_text(&text).unwrap();
    assert_eq!(back.resources.len(), 2002);
    assert_eq!(back.to_text(), text);
    // Joined onto one line by hand: not the shape `to_text` writes, read all the same.
    let joined = text.replace(",\n", ",").replace("[\n", "[");
    assert_eq!(joined.lines().count(), 2);
    assert_eq!(StateDocument::from_text(&joined).unwrap().to_text(), text);
    // A record given twice, on lines of their own.
    let line = text.lines().nth(1).unwrap().trim_end_matches(',');
    let twice = text.replacen(&format!("{line},\n"), &format!("{line},\n{line},\n"), 1);
    assert!(StateDocument::from_text(&twice).unwrap_err().contains("recorded twice"));
}
