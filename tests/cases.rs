//! Data-driven diagnostics: every `cases/*.kdl` (and `cases/*/fabric.kdl`
//! for multi-file cases) is checked by the real binary, and its rendered
//! report and exit code are compared with the snapshot in `snapshots/`.
//! Adding a case is adding a file; `INSTA_UPDATE=always cargo test --test
//! cases` writes the snapshot of a new one for review.

use std::path::Path;
use std::process::Command;

fn run_case(path: &Path) -> String {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let relative = path.strip_prefix(&tests).expect("cases live under tests/");
    let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .current_dir(&tests)
        .args(["check", "--color", "never"])
        .arg(relative)
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR")
        .output()
        .expect("the binary runs");
    format!("exit: {}\n{}", output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn single_file_cases() {
    insta::glob!("cases/*.kdl", |path| {
        insta::assert_snapshot!(run_case(path));
    });
}

#[test]
fn multi_file_cases() {
    insta::glob!("cases/*/fabric.kdl", |path| {
        insta::assert_snapshot!(run_case(path));
    });
}
