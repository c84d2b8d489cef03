//! End-to-end tests of the `sovereign` binary: exit codes, output formats,
//! colour rules, `explain`, secrets and determinism.

use std::path::PathBuf;
use std::process::Command;

mod common;

use common::{sovereign, stdout};

#[test]
fn examples_check_clean() {
    for example in ["examples/lab", "examples/enterprise", "examples/airgapped", "examples/lab/fabric.kdl"] {
        let output = sovereign(&["check", example]);
        assert_eq!(output.status.code(), Some(0), "{example}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn exit_codes() {
    assert_eq!(sovereign(&["check", "tests/cases/names-duplicate.kdl"]).status.code(), Some(1));
    assert_eq!(sovereign(&["check", "tests/cases/does-not-exist.kdl"]).status.code(), Some(2));
    assert_eq!(sovereign(&["check", "--format", "yaml", "examples/lab"]).status.code(), Some(2));
    assert_eq!(sovereign(&["frobnicate"]).status.code(), Some(2));
    // A folder without fabric.kdl is an IO error, not a spec error.
    assert_eq!(sovereign(&["check", "tests"]).status.code(), Some(2));
}

#[test]
fn warnings_fail_only_when_denied() {
    let case = "tests/cases/schema-type-annotation-warning.kdl";
    assert_eq!(sovereign(&["check", case]).status.code(), Some(0));
    assert_eq!(sovereign(&["check", "--deny-warnings", case]).status.code(), Some(1));
}

#[test]
fn json_is_versioned_and_complete() {
    let output = sovereign(&["check", "--format", "json", "tests/cases/names-unknown-reference.kdl"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["version"], 1);
    let diagnostic = &json["diagnostics"][0];
    assert_eq!(diagnostic["code"], "SOV3002");
    assert_eq!(diagnostic["location"]["line"], 4);
    assert_eq!(diagnostic["location"]["column"], 20);
    assert_eq!(diagnostic["fixes"][0]["replacement"], "\"llama\"");
    assert_eq!(json["summary"]["errors"], 1);
}

#[test]
fn sarif_is_valid_against_the_2_1_0_schema() {
    let schema_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif-schema-2.1.0.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    // Formats too: `uri` must be a URI reference, not a raw path.
    let validator =
        jsonschema::options().should_validate_formats(true).build(&schema).expect("the SARIF schema compiles");
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("my specs/façade #1.kdl");
    std::fs::create_dir_all(odd.parent().unwrap()).unwrap();
    std::fs::write(&odd, b"fabric \"t\"\nbogus \"\xff\xfe\"\n").unwrap();
    let odd = odd.to_string_lossy().into_owned();
    for case in [
        "tests/cases/cycle-three.kdl",
        "tests/cases/schema-unknown-node.kdl",
        "examples/lab",
        "tests/cases/secret-literal.kdl",
        &odd,
    ] {
        let output = sovereign(&["check", "--format", "sarif", case]);
        let sarif: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&sarif).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{case}: SARIF is invalid:\n{}", errors.join("\n"));
        assert_eq!(sarif["version"], "2.1.0");
    }
}

#[test]
fn byte_offsets_count_the_bytes_on_disk_after_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.kdl");
    // Three invalid bytes before an unknown node: in the decoded text they
    // are three replacement characters (nine bytes).
    let bytes = b"fabric \"t\" // \xff\xfe\xfd\nbogus 1\n";
    std::fs::write(&path, bytes).unwrap();
    let output = sovereign(&["check", "--format", "json", &path.to_string_lossy()]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let bogus = json["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "SOV2001").unwrap();
    let at = bytes.windows(5).position(|w| w == b"bogus").unwrap();
    assert_eq!(bogus["location"]["byte_start"], at);
    assert_eq!(bogus["location"]["byte_end"], at + 5);
    for d in json["diagnostics"].as_array().unwrap() {
        assert!(d["location"]["byte_end"].as_u64().unwrap() <= bytes.len() as u64, "{d}");
    }
}

#[test]
fn github_annotations() {
    let output = sovereign(&["check", "--format", "github", "tests/cases/schema-unknown-node.kdl"]);
    let text = stdout(&output);
    assert!(
        text.starts_with("::error file=tests/cases/schema-unknown-node.kdl,line=3,col=1,endLine=3,endColumn=5,title=SOV2001 unknown-node::"),
        "{text}"
    );
    assert!(text.contains("%0Ahelp: did you mean `serve`?"), "{text}");
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    let case = "tests/cases/schema-unknown-node.kdl";
    let coloured = sovereign(&["check", "--color", "always", case]);
    assert!(coloured.stderr.contains(&0x1b), "--color always colours");
    let piped = sovereign(&["check", case]);
    assert!(!piped.stderr.contains(&0x1b), "not a terminal: no colour");
    let no_color = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--color", "always", case])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!no_color.stderr.contains(&0x1b), "NO_COLOR wins");
}

#[test]
fn secrets_are_never_printed() {
    for case in ["tests/cases/secret-literal.kdl", "tests/cases/schema-invalid-secret-source.kdl"] {
        let literal = if case.contains("literal") { "pylf_v1_eu_0123456789abcdef" } else { "hunter2-plaintext" };
        for format in ["human", "json", "sarif", "github"] {
            let output = sovereign(&["check", "--format", format, case]);
            let all = format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr));
            assert!(!all.contains(literal), "{case} --format {format} printed the secret");
            assert_eq!(output.status.code(), Some(1));
        }
    }
}

#[test]
fn explain_prints_the_page() {
    let output = sovereign(&["explain", "SOV3005"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("# SOV3005 dependency-cycle"));
    assert_eq!(sovereign(&["explain", "unknown-node"]).status.code(), Some(0));
    assert_eq!(sovereign(&["explain", "SOV9999"]).status.code(), Some(2));
}

#[test]
fn output_is_deterministic() {
    for format in ["human", "json", "sarif"] {
        let a = sovereign(&["check", "--format", format, "tests/cases/syntax-many-errors.kdl"]);
        let b = sovereign(&["check", "--format", format, "tests/cases/syntax-many-errors.kdl"]);
        assert_eq!(a.stdout, b.stdout);
        assert_eq!(a.stderr, b.stderr);
    }
}

/// Every code promises help: every diagnostic of every case says what to do.
#[test]
fn every_diagnostic_of_every_case_has_help() {
    let mut missing = Vec::new();
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&cases).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        let output = sovereign(&["check", "--format", "json", &path.to_string_lossy()]);
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&stdout(&output)) else { continue };
        for d in json["diagnostics"].as_array().into_iter().flatten() {
            if d["help"].as_str().is_none_or(str::is_empty) {
                missing.push(format!("{}: {} {}", path.display(), d["code"], d["message"]));
            }
        }
    }
    assert!(missing.is_empty(), "diagnostics without help:\n{}", missing.join("\n"));
}

/// Spec text never reaches the terminal raw: escape sequences, BEL, NUL and
/// lone CRs are escaped (also with NO_COLOR), gutter line numbers count a
/// lone CR as a line break, and a diagnostic past column 65,535 renders.
#[test]
fn hostile_text_is_escaped_and_long_lines_render() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.kdl");
    std::fs::write(
        &path,
        "fabric \"t\"\rsite \"\\u{1b}[2J\\u{1b}]0;owned\\u{7}\" tier=\"server\"\r\rbogus \"\u{1b}[31m\u{7}\u{0}\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(["check", "--color", "never"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    for raw in ['\u{1b}', '\u{7}', '\u{0}', '\r'] {
        assert!(!text.contains(raw), "{raw:?} reached the terminal:\n{text}");
    }
    assert!(text.contains("\\u{1b}[2J"), "{text}");
    // `bogus` is on line 4: lines end at each lone CR.
    assert!(text.contains("hostile.kdl:4:1]"), "{text}");
    assert!(text.contains(" 4 │ bogus"), "{text}");

    let long = dir.path().join("long.kdl");
    let line = format!("site \"a\" tier=\"server\" region=\"eu-central\" {}bogus=2\n", "x=1 ".repeat(20_000));
    std::fs::write(&long, format!("fabric \"t\"\n{line}")).unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_sovereign")).args(["check", "--color", "never"]).arg(&long).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains(&format!("long.kdl:2:{}]", line.find("bogus").unwrap() + 1)), "the column is the file's");
    assert!(text.lines().all(|l| l.chars().count() < 400), "long lines are cut around the label");
}
