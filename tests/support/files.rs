//! Test support shared by the test crates, which include it with
//! `#[path = ".../tests/support/files.rs"] mod files;`: the files under a
//! folder, and the example fabrics.
#![allow(dead_code)] // each test crate uses part of it

use std::path::{Path, PathBuf};

/// Every file under `dir`, at any depth, sorted.
pub(crate) fn under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    out
}

/// The spec files (`.kdl`) under `dir`.
pub(crate) fn specs(dir: &Path) -> Vec<PathBuf> {
    under(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "kdl")).collect()
}

/// The example fabrics in `examples/` (folders with a `fabric.kdl`), sorted.
pub(crate) fn examples(workspace: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(workspace.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("fabric.kdl").is_file())
        .collect();
    out.sort();
    out
}

/// A test's tool is missing: a failure where the test command installs it
/// (it sets `SOVEREIGN_EXPECT_KUBERNETES_VALIDATE`), else a skip that says so.
pub(crate) fn skip_without(what: &str) {
    assert!(std::env::var_os("SOVEREIGN_EXPECT_KUBERNETES_VALIDATE").is_none(), "{what} is missing");
    eprintln!("skipped: {what} is missing");
}

/// Whether `python3` runs and can import `jsonschema` and `yaml`.
pub(crate) fn python_with_jsonschema() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import jsonschema, yaml"])
        .output()
        .is_ok_and(|o| o.status.success())
}
