//! The example fabrics as a compiler host, shared by the target crates'
//! tests (`#[path = ".../tests/support/example_host.rs"] mod example_host;`,
//! beside `files.rs`).

use std::path::{Path, PathBuf};

use sovereign_check::MemoryHost;

use crate::files;

/// The example fabrics of the workspace, sorted.
pub(crate) fn examples() -> Vec<PathBuf> {
    files::examples(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The example's files, by path relative to its folder.
pub(crate) fn host(dir: &Path) -> MemoryHost {
    let mut host = MemoryHost::default();
    for path in files::specs(dir) {
        host.add(path.strip_prefix(dir).unwrap(), std::fs::read_to_string(&path).unwrap());
    }
    host
}
