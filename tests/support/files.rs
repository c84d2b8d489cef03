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
