//! Device bundles end to end: `sovereign build` signs them with the key
//! the spec names, `sovereign bundle verify` accepts them with the public
//! key and refuses a flipped byte in any blob or a wrong key, `skopeo`
//! reads them as OCI image layouts, and the key never reaches the output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/files.rs"]
mod support;

fn sovereign(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sovereign"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// An ed25519 key pair in PEM, made by openssl: (private, public) paths.
fn key_pair(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let made = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&private).status();
    if !made.is_ok_and(|s| s.success()) {
        return None;
    }
    let public_made =
        Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&private).arg("-out").arg(&public).status();
    public_made.is_ok_and(|s| s.success()).then_some((private, public))
}

fn bundle_dir(out: &Path) -> PathBuf {
    out.join("targets/npu/field/adjuster-tablets/adjuster-assist")
}

fn verify(dir: &Path, key: &Path) -> Output {
    sovereign(&["bundle", "verify", dir.to_str().unwrap(), "--key", key.to_str().unwrap()], &[])
}

#[test]
fn bundles_are_signed_verified_and_refused_when_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((private, public)) = key_pair(tmp.path(), "fleet") else {
        support::skip_without("openssl");
        return;
    };
    let pem = std::fs::read_to_string(&private).unwrap();
    let out = tmp.path().join("out");
    let built = sovereign(
        &["build", "examples/enterprise", "--partial", "-o", out.to_str().unwrap()],
        &[("SOVEREIGN_BUNDLE_KEY", &pem)],
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert!(!stderr.contains("edge \"adjuster-assist\""), "the edge should build: {stderr}");
    let bundle = bundle_dir(&out);
    let ok = verify(&bundle, &public);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // The private key is in no file of the build.
    let key_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for file in support::under(&out) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&key_body), "{} holds the key", file.display());
    }

    // Same spec, same key: same bytes (ed25519 is deterministic).
    let again = tmp.path().join("again");
    let rebuilt = sovereign(
        &["build", "examples/enterprise", "--partial", "-o", again.to_str().unwrap()],
        &[("SOVEREIGN_BUNDLE_KEY", &pem)],
    );
    assert!(rebuilt.status.success());
    for file in support::under(&bundle) {
        let twin = bundle_dir(&again).join(file.strip_prefix(&bundle).unwrap());
        assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(twin).unwrap(), "{}", file.display());
    }

    // Another key does not verify.
    let (_, other) = key_pair(tmp.path(), "other").unwrap();
    let wrong = verify(&bundle, &other);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not verify with this key"));

    // A flipped byte in any blob is found.
    let blobs: Vec<PathBuf> = support::under(&bundle.join("blobs/sha256"));
    assert!(blobs.len() >= 8, "{blobs:?}");
    for blob in &blobs {
        let original = std::fs::read(blob).unwrap();
        let mut flipped = original.clone();
        flipped[original.len() / 2] ^= 0x01;
        std::fs::write(blob, &flipped).unwrap();
        let touched = verify(&bundle, &public);
        assert_eq!(touched.status.code(), Some(1), "{} flipped, still verified", blob.display());
        std::fs::write(blob, &original).unwrap();
    }
    assert!(verify(&bundle, &public).status.success());

    // index.json is not signed itself: what it names beside the bundle must
    // be what the bundle holds, and the bundle must be an index.
    let index_path = bundle.join("index.json");
    let original = std::fs::read(&index_path).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let smuggled = b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}";
    let digest = sha256_hex(smuggled);
    std::fs::write(bundle.join("blobs/sha256").join(&digest), smuggled).unwrap();
    let mut added = index.clone();
    added["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{digest}"),
        "size": smuggled.len(),
        "annotations": { "org.opencontainers.image.ref.name": "variant-smuggled" },
    }));
    std::fs::write(&index_path, serde_json::to_vec(&added).unwrap()).unwrap();
    let touched = verify(&bundle, &public);
    assert_eq!(touched.status.code(), Some(1), "an added variant verified");
    assert!(String::from_utf8_lossy(&touched.stderr).contains("which the signed bundle does not hold"));
    let mut relabelled = index.clone();
    relabelled["manifests"][0]["mediaType"] = serde_json::json!("application/octet-stream");
    std::fs::write(&index_path, serde_json::to_vec(&relabelled).unwrap()).unwrap();
    assert_eq!(verify(&bundle, &public).status.code(), Some(1), "a relabelled bundle verified");
    std::fs::write(&index_path, &original).unwrap();
    std::fs::remove_file(bundle.join("blobs/sha256").join(&digest)).unwrap();
    assert!(verify(&bundle, &public).status.success());
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn without_a_key_the_bundle_is_unsigned_with_a_warning_and_does_not_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, public)) = key_pair(tmp.path(), "fleet") else { return };
    let out = tmp.path().join("out");
    let built = sovereign(&["build", "examples/airgapped", "--partial", "-o", out.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert!(stderr.contains("are unsigned: devices refuse unsigned bundles"), "{stderr}");
    let bundle = out.join("targets/npu/floor/handhelds/floor-assist");
    let checked = verify(&bundle, &public);
    assert_eq!(checked.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&checked.stderr).contains("not signed"));
}

/// The enterprise example's signed bundle, built in a folder of its own;
/// `None` (the skip said) without skopeo to read it.
fn signed_bundle_for_skopeo() -> Option<(tempfile::TempDir, PathBuf)> {
    if Command::new("skopeo").arg("--version").output().is_err() {
        support::skip_without("skopeo (apt-get install skopeo)");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (private, _) = key_pair(tmp.path(), "fleet").unwrap();
    let pem = std::fs::read_to_string(&private).unwrap();
    let out = tmp.path().join("out");
    let built = sovereign(
        &["build", "examples/enterprise", "--partial", "-o", out.to_str().unwrap()],
        &[("SOVEREIGN_BUNDLE_KEY", &pem)],
    );
    assert!(built.status.success());
    let bundle = bundle_dir(&out);
    Some((tmp, bundle))
}

/// `skopeo` reads every bundle as an OCI image layout: the bundle index,
/// each variant's manifest, and the signature.
#[test]
fn skopeo_reads_the_bundles() {
    let Some((_tmp, bundle)) = signed_bundle_for_skopeo() else { return };
    for reference in ["bundle", "variant-soc-snapdragon-8-gen-3", "variant-portable", "signature"] {
        let output = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{reference}", bundle.display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "{reference}: {}", String::from_utf8_lossy(&output.stderr));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(document["schemaVersion"], 2, "{reference}");
    }
}

/// `bundle export` writes the layout as one tar that `skopeo` reads as an
/// OCI archive, the same bytes each time; a damaged blob is refused.
#[test]
fn an_exported_bundle_is_an_oci_archive_skopeo_reads() {
    let Some((tmp, bundle)) = signed_bundle_for_skopeo() else { return };
    let (first, second) = (tmp.path().join("a/bundle.tar"), tmp.path().join("b.tar"));
    for tar in [&first, &second] {
        let exported = sovereign(&["bundle", "export", bundle.to_str().unwrap(), "-o", tar.to_str().unwrap()], &[]);
        assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    }
    assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap(), "the same bytes each time");
    for reference in ["bundle", "signature"] {
        let output = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}:{reference}", first.display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "{reference}: {}", String::from_utf8_lossy(&output.stderr));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(document["schemaVersion"], 2, "{reference}");
    }
    // A flipped byte in a blob: refused, and nothing written.
    let blob = std::fs::read_dir(bundle.join("blobs/sha256")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let third = tmp.path().join("c.tar");
    let refused = sovereign(&["bundle", "export", bundle.to_str().unwrap(), "-o", third.to_str().unwrap()], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not have its digest"));
    assert!(!third.exists());
}
