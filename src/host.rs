//! The disk, as the compiler's [`Host`].

use std::io;
use std::path::{Path, PathBuf};

use sovereign_check::Host;

/// Reads specs from the local file system.
pub(crate) struct DiskHost;

impl Host for DiskHost {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn kdl_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name() {
            let entry = entry.map_err(io::Error::other)?;
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "kdl") {
                files.push(entry.into_path());
            }
        }
        Ok(files)
    }

    fn canonical(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }
}
