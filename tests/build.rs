//! `sovereign build` end to end: what it writes, that it writes it
//! atomically and deterministically, and what it refuses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sovereign(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sovereign"));
    command.args(args).args(["--color", "never"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

#[path = "support/files.rs"]
mod support;

/// Every file of a build, by path relative to it, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    support::under(dir)
        .into_iter()
        .map(|path| (path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()))
        .collect()
}

#[test]
fn a_partial_build_writes_every_site_with_an_index_and_the_same_bytes_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for out in [&a, &b] {
        let output = sovereign(&["build", "examples/enterprise", "--partial", "-o", out.to_str().unwrap()], &[]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("warning: not built: edge"));
    }
    assert_eq!(files(&a), files(&b), "two builds of one spec differ");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["version"], 1);
    let artifacts = index["artifacts"].as_array().unwrap();
    assert!(artifacts.len() > 10);
    for artifact in artifacts {
        assert!(a.join(artifact["path"].as_str().unwrap()).is_file(), "{artifact}");
        assert_eq!(artifact["content_sha256"].as_str().unwrap().len(), 64);
    }
    let listed = index["files"].as_array().unwrap();
    // Every file but the index and the marker is listed, with its digest.
    assert_eq!(listed.len(), files(&a).len() - 2);
    for file in listed {
        let path = a.join(file["path"].as_str().unwrap());
        assert_eq!(file["sha256"], sha256(&std::fs::read(&path).unwrap()), "{}", path.display());
        // K3s names an AddOn after the file: an RFC 1123 name (other
        // targets' files, outside the site folders, join labels with `.`).
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let dots = file["path"].as_str().unwrap().starts_with("targets/");
        for label in if dots { stem.split('.').collect() } else { vec![stem.as_str()] } {
            assert!(
                !label.is_empty() && label.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
                "{stem}"
            );
        }
    }
    // Each site's stream puts a namespace before the objects in it.
    let stream = std::fs::read_to_string(a.join("fra").join("sovereign-meridian.yaml")).unwrap();
    let namespace = stream.find("kind: Namespace").unwrap();
    let deployment = stream.find("kind: Deployment").unwrap();
    assert!(namespace < deployment);
    for site in ["fra", "burst"] {
        assert!(a.join(site).join("kustomization.yaml").is_file(), "{site} has no kustomization");
    }
}

fn sha256(bytes: &[u8]) -> String {
    let output =
        Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn();
    let mut child = output.unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

/// Batches of one site, or the default batches built on every core: the
/// same bytes (emitters never depend on another batch; the index is per site).
#[test]
fn the_batch_size_changes_no_byte_of_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("fabric.kdl");
    std::fs::write(&spec, fabric_gen::fabric(1200)).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (out, batch) in [(&a, "1"), (&b, "")] {
        let args = ["build", spec.to_str().unwrap(), "--partial", "-o", out.to_str().unwrap()];
        let envs: &[(&str, &str)] = if batch.is_empty() { &[] } else { &[("SOVEREIGN_BUILD_BATCH_SITES", batch)] };
        let output = sovereign(&args, envs);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    assert!(files(&a).len() > 100);
    assert_eq!(files(&a), files(&b), "a build in batches of one site differs");
}

#[test]
fn what_cannot_be_built_is_an_error_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = sovereign(&["build", "examples/enterprise", "-o", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A signing key the environment does not hold is named, never guessed.
    assert!(stderr.contains("error: cannot build: edge \"adjuster-assist\": its signing key"), "{stderr}");
    assert!(stderr.contains("the environment has no SOVEREIGN_BUNDLE_KEY"), "{stderr}");
    assert!(!out.exists());
    assert!(!tmp.path().join("out.sovereign-new").exists(), "a refused build left its folder behind");
}

#[test]
fn a_spec_with_errors_builds_nothing_and_leaves_the_folder_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let ok = sovereign(&["build", "examples/lab", "--partial", "-o", out.to_str().unwrap()], &[]);
    assert!(ok.status.success());
    let before = files(&out);
    let broken = tmp.path().join("broken.kdl");
    std::fs::write(&broken, "fabric \"x\" {\n    residency \"eu\"\n}\nserve \"s\" model=\"nope\"\n").unwrap();
    let output = sovereign(&["build", broken.to_str().unwrap(), "--partial", "-o", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SOV3002"));
    assert_eq!(files(&out), before);
}

#[test]
fn a_rebuild_removes_what_the_spec_no_longer_produces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    assert!(sovereign(&["build", "examples/lab", "--partial", "-o", out_arg], &[]).status.success());
    std::fs::write(out.join("bench").join("stale.yaml"), "kind: Left\n").unwrap();
    assert!(out.join("bench").join("sovereign-lab.yaml").is_file());
    assert!(sovereign(&["build", "examples/lab", "--partial", "-o", out_arg], &[]).status.success());
    assert!(!out.join("bench").join("stale.yaml").exists());
    // Nothing of the swap is left beside it.
    let siblings: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(siblings, ["out"]);
}

#[test]
fn a_folder_beside_it_that_no_build_made_is_kept_and_a_second_build_waits_its_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_arg = out.to_str().unwrap();
    // A user's folder that happens to have the name of the swap's.
    let beside = tmp.path().join("out.sovereign-new");
    std::fs::create_dir(&beside).unwrap();
    std::fs::write(beside.join("notes.txt"), "mine").unwrap();
    let output = sovereign(&["build", "examples/lab", "--partial", "-o", out_arg], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("out.sovereign-new exists and was not written by"));
    assert!(beside.join("notes.txt").is_file() && !out.exists());
    std::fs::remove_dir_all(&beside).unwrap();
    // A build halfway (its folder marked from the start) is cleaned up by the next.
    std::fs::create_dir(&beside).unwrap();
    std::fs::write(beside.join(".sovereign-build"), "written by sovereign build\n").unwrap();
    std::fs::write(beside.join("half.yaml"), "kind: Half\n").unwrap();
    assert!(sovereign(&["build", "examples/lab", "--partial", "-o", out_arg], &[]).status.success());
    assert!(!beside.exists() && out.join("bench").join("sovereign-lab.yaml").is_file());
    // While another build holds the lock, a build says so and touches nothing.
    let lock = std::fs::File::create(tmp.path().join("out.sovereign-lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let before = files(&out);
    let output = sovereign(&["build", "examples/lab", "--partial", "-o", out_arg], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("another `sovereign build` is writing"));
    assert_eq!(files(&out), before);
    drop(lock);
    assert!(sovereign(&["build", "examples/lab", "--partial", "-o", out_arg], &[]).status.success());
}

/// `-o` through a link to an earlier build, and into a folder that does
/// not exist yet: the link is replaced by the build and what it pointed at
/// is left alone; missing parents are made.
#[test]
fn a_linked_folder_keeps_its_target_and_missing_parents_are_made() {
    let tmp = tempfile::tempdir().unwrap();
    let earlier = tmp.path().join("earlier");
    assert!(sovereign(&["build", "examples/lab", "--partial", "-o", earlier.to_str().unwrap()], &[]).status.success());
    let before = files(&earlier);
    let link = tmp.path().join("out");
    std::os::unix::fs::symlink(&earlier, &link).unwrap();
    let output = sovereign(&["build", "examples/lab", "--partial", "-o", link.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(files(&earlier), before, "the link's target was touched");
    assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(link.join("bench").join("sovereign-lab.yaml").is_file());
    let nested = tmp.path().join("a").join("b").join("out");
    let output = sovereign(&["build", "examples/lab", "--partial", "-o", nested.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(nested.join("index.json").is_file());
    let bad = sovereign(
        &["build", "examples/lab", "--partial", "-o", nested.to_str().unwrap()],
        &[("SOVEREIGN_BUILD_BATCH_SITES", "lots")],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SOVEREIGN_BUILD_BATCH_SITES must be a number"));
}

#[test]
fn a_folder_that_is_not_a_build_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let output = sovereign(&["build", "examples/lab", "--partial", "-o", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("was not written by `sovereign build`"));
    assert!(out.join("notes.txt").is_file());
    let forced = sovereign(&["build", "examples/lab", "--partial", "--force", "-o", out.to_str().unwrap()], &[]);
    assert!(forced.status.success());
    assert!(!out.join("notes.txt").exists());
}

#[test]
fn one_site_prints_as_a_yaml_stream_or_json_for_kubectl() {
    let output = sovereign(&["build", "examples/lab", "--partial", "--site", "bench"], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert!(yaml.contains("kind: Namespace") && yaml.contains("\n---\n") && yaml.contains("kind: Deployment"));
    assert!(!yaml.contains("kind: Node\n"), "patches are not for kubectl apply");
    let output = sovereign(&["build", "examples/lab", "--partial", "--site", "bench", "--json"], &[]);
    let objects: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(objects.as_array().unwrap().len() > 5);
    let output = sovereign(&["build", "examples/lab", "--partial", "--site", "bench", "--format", "json"], &[]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap(), objects);
    let missing = sovereign(&["build", "examples/lab", "--partial", "--site", "nowhere"], &[]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn no_secret_value_reaches_the_output() {
    // Every `env:` source of every example, each set to its own canary,
    // and the variables a user might have set anyway.
    let mut names: Vec<String> = ["LOGFIRE_TOKEN", "OPENAI_API_KEY", "HF_TOKEN"].map(String::from).to_vec();
    for example in support::examples(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        for path in support::specs(&example) {
            let text = std::fs::read_to_string(&path).unwrap();
            for rest in text.split("from=\"env:").skip(1) {
                names.push(rest.split('"').next().unwrap().to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    assert!(names.len() > 3, "the examples declare env: secrets: {names:?}");
    let canaries: Vec<(String, String)> =
        names.iter().enumerate().map(|(i, n)| (n.clone(), format!("sk-canary-{i:02}-4f1c9e-never-print"))).collect();
    let envs: Vec<(&str, &str)> = canaries.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for example in ["examples/lab", "examples/enterprise", "examples/airgapped"] {
        let output = sovereign(&["build", example, "--partial", "--force", "-o", out.to_str().unwrap()], &envs);
        assert!(output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        for (_, canary) in &canaries {
            assert!(!stderr.contains(canary.as_str()), "{canary} printed");
            for (path, bytes) in files(&out) {
                assert!(!String::from_utf8_lossy(&bytes).contains(canary.as_str()), "{}", path.display());
            }
        }
    }
}

/// A batch (and `--site`) speaks only for its own sites: an eval that
/// cannot be scheduled is said by the build of its Temporal's site, and a
/// build of another site neither says it nor fails for it.
#[test]
fn an_unbuilt_eval_is_said_by_its_sites_build_only() {
    let lab = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab/fabric.kdl")).unwrap();
    let unscheduled = lab.replace("    schedule \"0 7 * * 1-5\" // weekdays at 07:00, before people arrive\n", "");
    assert_ne!(unscheduled, lab, "the lab's eval has a schedule to remove");
    let spec = format!(
        "{unscheduled}\nsite \"other\" tier=\"server\" region=\"eu-central\" {{\n    cluster kind=\"k3s\" context=\"other\"\n}}\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fabric.kdl");
    std::fs::write(&path, spec).unwrap();
    let path = path.to_str().unwrap();
    let said = "eval \"chat-smoke\": no `schedule`";
    let own = sovereign(&["build", path, "--partial", "--site", "bench"], &[]);
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    assert!(String::from_utf8_lossy(&own.stderr).contains(said), "{}", String::from_utf8_lossy(&own.stderr));
    let other = sovereign(&["build", path, "--site", "other"], &[]);
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!stderr.contains("chat-smoke"), "{stderr}");
    let whole = sovereign(&["build", path, "--partial", "-o", tmp.path().join("out").to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(whole.status.success(), "{stderr}");
    assert_eq!(stderr.matches(said).count(), 1, "said once, by its site's batch: {stderr}");
}
