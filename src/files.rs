//! A file replaced whole: what `fmt` writes and `plan -o` saves.

use std::io::Write as _;
use std::path::Path;

/// Replaces `path` with `bytes` through a temporary file in the same
/// folder, fsynced and renamed, so an interrupted run leaves the old file
/// or the new one, never half of one. Through a symlink, the file it points
/// to is replaced; an existing file keeps its permissions, a new one is
/// made readable by its owner only. Missing folders are made.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_as(path, bytes, None)
}

/// As [`replace`], a new file readable by everyone (a man page).
pub fn replace_readable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_as(path, bytes, Some(0o644))
}

/// Writes a new file whole (temporary file, fsync, then a link that fails
/// if `path` exists): never over an existing file, never half of one.
pub fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist_noclobber(path).map_err(|e| e.error)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn replace_as(path: &Path, bytes: &[u8], new_mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    if let Ok(metadata) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(temp.path(), metadata.permissions());
    } else if let Some(mode) = new_mode {
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode))?;
    }
    temp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable (best effort: not every file system allows it).
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
