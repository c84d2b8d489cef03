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
    let key = match std::fs::metadata(key).map(|m| m.len()).and_then(|len| {
        if len > 1 << 16 {
            Err(std::io::Error::other("larger than a public key"))
        } else {
            std::fs::read_to_string(key)
        }
    }) {
        Ok(key) => key,
        Err(e) => {
            let _ = writeln!(stderr, "error: cannot read the key {}: {e}", key.display());
            return ExitCode::from(2);
        }
    };
    let Ok(root) = std::fs::canonicalize(dir) else {
        let _ = writeln!(stderr, "error: cannot read {}", dir.display());
        return ExitCode::from(2);
    };
    // Only regular files inside DIR (after every link is resolved), named
    // as a layout names them, and no more than MAX_BLOB of any.
    let read = |path: &str| -> Option<Vec<u8>> {
        use std::io::Read as _;
        if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return None;
        }
        let full = std::fs::canonicalize(root.join(path)).ok()?;
        if !full.starts_with(&root) {
            return None;
        }
        let file = std::fs::File::open(&full).ok()?;
        // The opened file's own metadata: what was checked is what is read.
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_BLOB + 1).read_to_end(&mut bytes).ok()?;
        (bytes.len() as u64 <= MAX_BLOB).then_some(bytes)
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
