//! Data-driven diagnostics: every `cases/*.kdl` (and `cases/*/fabric.kdl`
//! for multi-file cases) is checked by the real binary, and its rendered
//! report and exit code are compared with the snapshot in `snapshots/`.
//! Each case is a test of its own, named by its path, so one runs by name:
//! `cargo test --test cases -- import-outside`. Adding a case is adding a
//! file; `INSTA_UPDATE=always cargo test --test cases` writes the snapshot
//! of a new one for review.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

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

/// Every case with its snapshot name (the names insta's glob gave them).
fn cases() -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/cases exists") {
        let path = entry.expect("a readable entry").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() && path.join("fabric.kdl").is_file() {
            cases.push((format!("multi_file_cases@{name}__fabric.kdl"), path.join("fabric.kdl")));
        } else if name.ends_with(".kdl") {
            cases.push((format!("single_file_cases@{name}"), path));
        }
    }
    cases.sort();
    cases
}

fn main() {
    let args = Arguments::from_args();
    let trials = cases()
        .into_iter()
        .map(|(name, path)| {
            Trial::test(name.clone(), move || {
                let report = run_case(&path);
                std::panic::catch_unwind(|| {
                    let mut settings = insta::Settings::clone_current();
                    settings.set_input_file(&path);
                    settings.set_prepend_module_to_snapshot(true);
                    settings.bind(|| insta::assert_snapshot!(name.as_str(), report, "run_case(path)"));
                })
                .map_err(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "the snapshot does not match".to_owned());
                    Failed::from(message)
                })
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
