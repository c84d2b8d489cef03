//! The disk, as the compiler's [`Host`].

use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sovereign_check::{FileKind, Host};

/// Reads specs from the local file system.
pub(crate) struct DiskHost;

/// Kernel file systems: their "files" are generated on read (the process
/// environment, memory maps), never specs.
const KERNEL_TREES: [&str; 3] = ["/proc", "/sys", "/dev"];

impl Host for DiskHost {
    /// Opens without blocking (a FIFO swapped in after `kind` must not hang
    /// the check) and reads only a regular file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn kind(&self, path: &Path) -> FileKind {
        // `metadata` is a stat: it follows symlinks and opens nothing.
        let Ok(metadata) = std::fs::metadata(path) else { return FileKind::Missing };
        let file_type = metadata.file_type();
        let canonical = self.canonical(path);
        if KERNEL_TREES.iter().any(|tree| canonical.starts_with(tree)) {
            FileKind::Special("a kernel file")
        } else if file_type.is_dir() {
            FileKind::Dir
        } else if file_type.is_file() {
            FileKind::File
        } else if file_type.is_fifo() {
            FileKind::Special("a FIFO")
        } else if file_type.is_socket() {
            FileKind::Special("a socket")
        } else if file_type.is_block_device() || file_type.is_char_device() {
            FileKind::Special("a device")
        } else {
            FileKind::Special("a special file")
        }
    }

    fn kdl_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name() {
            let entry = entry.map_err(io::Error::other)?;
            // Regular files only (after links): a FIFO named `x.kdl` is not listed.
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "kdl") {
                files.push(entry.into_path());
            }
        }
        Ok(files)
    }

    /// A missing path is canonical below its nearest existing ancestor, so
    /// that it can still be compared with the spec's folder.
    fn canonical(&self, path: &Path) -> PathBuf {
        if let Ok(canonical) = std::fs::canonicalize(path) {
            return canonical;
        }
        let mut rest = Vec::new();
        let mut ancestor = path;
        while let (Some(parent), Some(name)) = (ancestor.parent(), ancestor.file_name()) {
            rest.push(name);
            ancestor = parent;
            let existing = if ancestor.as_os_str().is_empty() { Path::new(".") } else { ancestor };
            if let Ok(mut canonical) = std::fs::canonicalize(existing) {
                canonical.extend(rest.iter().rev());
                return canonical;
            }
        }
        path.to_path_buf()
    }
}
