//! `sovereign bundle verify DIR --key PUB`: reads a bundle's OCI image
//! layout and checks it with `sovereign_npu::verify`; `sovereign bundle
//! export DIR -o FILE.tar`: the layout as one tar, for air-gapped sites
//! (what `skopeo copy oci-archive:FILE.tar:bundle …` or a device agent
//! reads).

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

/// The layout in `dir` as a tar at `out`: `oci-layout`, `index.json` and
/// every blob, each blob checked against its digest first; written
/// atomically, and the same bytes for the same layout (sorted entries, no
/// times, owners or modes of the machine).
pub(crate) fn export(dir: &Path, out: &Path) -> ExitCode {
    use sha2::Digest as _;
    let mut stderr = std::io::stderr();
    let mut fail = |message: String| {
        let _ = writeln!(stderr, "error: {message}");
        ExitCode::from(1)
    };
    let read_small = |path: &Path| -> Result<Vec<u8>, String> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !meta.is_file() || meta.len() > MAX_BLOB {
            return Err(format!("{} is not a regular file of at most 1 GiB", path.display()));
        }
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for name in ["oci-layout", "index.json"] {
        match read_small(&dir.join(name)) {
            Ok(bytes) => entries.push((name.to_owned(), bytes)),
            Err(why) => return fail(format!("{why} (is {} a bundle folder of a build?)", dir.display())),
        }
    }
    let blobs = dir.join("blobs/sha256");
    let names = match std::fs::read_dir(&blobs) {
        Ok(names) => names,
        Err(e) => return fail(format!("cannot read {}: {e}", blobs.display())),
    };
    for entry in names {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return fail(format!("{}: not a blob of an OCI layout (names are sha256 digests)", entry.path().display()));
        }
        let bytes = match read_small(&entry.path()) {
            Ok(bytes) => bytes,
            Err(why) => return fail(why),
        };
        if sovereign_desired::hex(&sha2::Sha256::digest(&bytes)) != name {
            return fail(format!(
                "blob {name} does not have its digest: the layout is damaged (`sovereign bundle verify`)"
            ));
        }
        entries.push((format!("blobs/sha256/{name}"), bytes));
    }
    entries.sort();
    let mut tar = Vec::new();
    for folder in ["blobs/", "blobs/sha256/"] {
        tar_entry(&mut tar, folder, b'5', &[]);
    }
    for (name, bytes) in &entries {
        tar_entry(&mut tar, name, b'0', bytes);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    match sovereign::files::replace(out, &tar) {
        Ok(()) => {
            let _ = writeln!(
                std::io::stderr(),
                "ok: {} written: {} files, {} bytes",
                out.display(),
                entries.len(),
                tar.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot write {}: {e}", out.display())),
    }
}

/// One ustar entry (POSIX.1-1988): a 512-byte header, then the content
/// padded to 512 bytes. Names here are under 100 bytes.
fn tar_entry(tar: &mut Vec<u8>, name: &str, kind: u8, bytes: &[u8]) {
    let mut header = [0u8; 512];
    let field = |header: &mut [u8; 512], at: usize, text: &[u8]| header[at..at + text.len()].copy_from_slice(text);
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, if kind == b'5' { b"0000755\0" } else { b"0000644\0" });
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(&mut header, 124, format!("{:011o}\0", bytes.len()).as_bytes());
    field(&mut header, 136, b"00000000000\0");
    field(&mut header, 148, b"        ");
    header[156] = kind;
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    tar.extend_from_slice(&header);
    tar.extend_from_slice(bytes);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}
