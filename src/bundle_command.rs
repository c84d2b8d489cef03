//! `sovereign bundle verify DIR --key PUB`: reads a bundle's OCI image
//! layout and checks it with `sovereign_npu::verify`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The largest blob read (a bundle carries no weights yet; this keeps a
/// hostile folder from exhausting memory).
const MAX_BLOB: u64 = 1 << 30;

pub(crate) fn verify(dir: &Path, key: &Path) -> ExitCode {
    let mut stderr = std::io::stderr();
    let key = match std::fs::read_to_string(key) {
        Ok(key) => key,
        Err(e) => {
            let _ = writeln!(stderr, "error: cannot read the key {}: {e}", key.display());
            return ExitCode::from(2);
        }
    };
    // Only regular files inside DIR, named as a layout names them.
    let read = |path: &str| -> Option<Vec<u8>> {
        if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return None;
        }
        let full = dir.join(path);
        let meta = std::fs::symlink_metadata(&full).ok()?;
        (meta.is_file() && meta.len() <= MAX_BLOB).then(|| std::fs::read(&full).ok()).flatten()
    };
    match sovereign_npu::verify(&read, &key) {
        Ok(verified) => {
            let _ = writeln!(
                stderr,
                "ok: {} verified: {} blobs with the digests their descriptors name, signature over {} valid",
                dir.display(),
                verified.blobs,
                verified.digest
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                let _ = writeln!(stderr, "error: {problem}");
            }
            let _ = writeln!(stderr, "error: {} does not verify", dir.display());
            ExitCode::from(1)
        }
    }
}
