//! The disk, as the compiler's [`Host`].

use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sovereign_check::{FileKind, Host, MAX_FILE_BYTES};

/// Reads specs from the local file system.
pub(crate) struct DiskHost;

/// Kernel file systems: their "files" are generated on read (the process
/// environment, memory maps), never specs.
const KERNEL_TREES: [&str; 3] = ["/proc", "/sys", "/dev"];

impl Host for DiskHost {
    /// Opens without blocking (a FIFO swapped in after `kind` must not hang
    /// the check) and reads only a regular file.
    /// The path is resolved first and a kernel file refused; the resolved
    /// path is opened without following a link (a link swapped in since is
    /// an error, not a read elsewhere), and nothing but a regular file of at
    /// most 1 GiB is read. What is left is a directory swapped between the
    /// two steps by someone who can already write the spec's tree.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let resolved = std::fs::canonicalize(path)?;
        if KERNEL_TREES.iter().any(|tree| resolved.starts_with(tree)) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a kernel file, not a spec"));
        }
        let file =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(&resolved)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        if metadata.len() > MAX_FILE_BYTES as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "larger than 1 GiB"));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        // A file that grows while read is cut at the limit, not read on.
        file.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
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

    /// Links to folders are not followed (a link to `/` would walk the
    /// machine); a link to a file is listed, and the loader then checks that
    /// it resolves inside the spec's folder.
    fn kdl_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
            let entry = entry.map_err(io::Error::other)?;
            if entry.path().extension().is_none_or(|e| e != "kdl") {
                continue;
            }
            // Regular files only (a FIFO named `x.kdl` is not listed); a link
            // counts when what it points to is one.
            let regular = entry.file_type().is_file()
                || (entry.path_is_symlink() && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()));
            if regular {
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
