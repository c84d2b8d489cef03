//! `sovereign fmt` through the binary: rewriting, `--check` with a diff,
//! files with errors left alone, standard input, and the examples kept
//! in the canonical style.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn sovereign(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign")).current_dir(dir).args(args).env("NO_COLOR", "1").output().unwrap()
}

#[test]
fn rewrites_check_reports_and_errors_leave_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "fabric \"a\"{residency \"eu\";state backend=\"local\"}\n\n\n// end\n";
    let clean = "fabric \"a\" {\n    residency \"eu\"\n    state backend=\"local\"\n}\n\n// end\n";
    let broken = "fabric \"b\" {\n    residency \"eu\n";
    fs::write(dir.path().join("messy.kdl"), messy).unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/broken.kdl"), broken).unwrap();

    // --check: a diff, exit 1, nothing written.
    let output = sovereign(&["fmt", "--check", "."], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&output.stdout);
    assert!(diff.contains("--- a/./messy.kdl") && diff.contains("+    residency \"eu\""), "{diff}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("SOV1002"), "the broken file's error is shown");
    assert_eq!(fs::read_to_string(dir.path().join("messy.kdl")).unwrap(), messy);

    // Rewrite: the clean file changes, the broken one does not; exit 1 for the broken one.
    let output = sovereign(&["fmt", "."], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(fs::read_to_string(dir.path().join("messy.kdl")).unwrap(), clean);
    assert_eq!(fs::read_to_string(dir.path().join("sub/broken.kdl")).unwrap(), broken);

    // Formatted files pass --check.
    let output = sovereign(&["fmt", "--check", "messy.kdl"], dir.path());
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());

    // A path that does not exist is a usage error.
    assert_eq!(sovereign(&["fmt", "nope.kdl"], dir.path()).status.code(), Some(2));
}

#[test]
fn standard_input_to_standard_output() {
    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sovereign"))
            .args(["fmt", "-"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let output = run("node   a   b=1");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "node a b=1\n");
    // A broken buffer comes back unchanged, with the errors on stderr.
    let output = run("node \"open");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "node \"open");
}

#[test]
fn the_examples_are_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = sovereign(&["fmt", "--check", "examples"], root);
    assert_eq!(
        output.status.code(),
        Some(0),
        "run `sovereign fmt examples`:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn failing_suite_cases_are_left_alone() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/syntax/tests/kdl-spec-tests/input");
    let dir = tempfile::tempdir().unwrap();
    let mut copied = Vec::new();
    for entry in fs::read_dir(&suite).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().ends_with("_fail.kdl") {
            let target = dir.path().join(path.file_name().unwrap());
            fs::copy(&path, &target).unwrap();
            copied.push((target, fs::read(&path).unwrap()));
        }
    }
    assert!(copied.len() > 50);
    let output = sovereign(&["fmt", "."], dir.path());
    assert_eq!(output.status.code(), Some(1));
    for (path, before) in copied {
        assert_eq!(fs::read(&path).unwrap(), before, "{} was changed", path.display());
    }
}

#[test]
fn check_diffs_mask_secrets_and_escape_controls() {
    let dir = tempfile::tempdir().unwrap();
    let canary = "pylf_v1_eu_fmtcanary0123456789";
    let spec = format!(
        "fabric \"t\"\nsecret \"lf\" from=\"env:X\"\nobserve \"o\" {{\n      export \"logfire\"  region=\"eu\" token=\"{canary}\"\n}}\ndataset  \"d\" classification=\"public\" table=\"\\u{{1b}}[2J\"\n"
    );
    fs::write(dir.path().join("f.kdl"), &spec).unwrap();
    let output = sovereign(&["fmt", "--check", "f.kdl"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&output.stdout);
    assert!(!diff.contains(canary) && !diff.contains("fmtcanary"), "{diff}");
    assert!(diff.contains("token=*"), "{diff}");

    // The same through standard input: the diff, not the text, and exit 1.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(["fmt", "--check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(spec.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&output.stdout);
    assert!(diff.starts_with("--- a/<stdin>"), "{diff}");
    assert!(!diff.contains(canary), "{diff}");
}

#[test]
fn secrets_near_syntax_errors_and_in_multiline_strings_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("broken.kdl"),
        "fabric \"t\"\nobserve \"o\" {\n    export \"logfire\" region=\"eu\" token=\"sk-live-a\\qb\"\n}\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("multi.kdl"),
        "fabric \"t\"\nobserve \"o\" {\n      export \"logfire\" region=\"eu\" token=\"\"\"\n    sk-live-MULTILINE-0123\n    \"\"\"\n}\n",
    )
    .unwrap();
    let output = sovereign(&["fmt", "--check", "."], dir.path());
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(all.contains("SOV1004"), "the syntax error is reported:\n{all}");
    assert!(!all.contains("sk-live"), "a secret was printed:\n{all}");
}
