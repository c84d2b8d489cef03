//! The registry driver against a real registry (Debian's `docker-registry`,
//! CNCF distribution 2.8): a layout is pushed and read back with `skopeo`,
//! pushed again without sending anything, its signature found through the
//! referrers tag, a changed layout refused before any request, basic auth
//! answered, and a push cut short by a stopped registry completed by the
//! next one.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sovereign_oci::{Credentials, Layout, Location, OciError, Registry, digest_of};

#[path = "support/registry.rs"]
mod support;
use support::TestRegistry;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Built {
    layout: Layout,
    index: String,
}

fn blob(files: &mut BTreeMap<String, Vec<u8>>, media_type: &str, bytes: Vec<u8>) -> Value {
    let digest = digest_of(&bytes);
    let descriptor = json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() });
    files.insert(format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")), bytes);
    descriptor
}

/// A bundle-shaped layout: an index of one manifest (a config and a
/// layer), and a signature manifest whose subject is the index.
fn layout(payload: &str) -> Built {
    let mut files = BTreeMap::new();
    let config = blob(&mut files, "application/vnd.test.config.v1+json", br#"{"test":true}"#.to_vec());
    let layer = blob(&mut files, "application/vnd.test.layer.v1+json", payload.as_bytes().to_vec());
    let manifest = json!({ "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/vnd.test.v1+json", "config": config, "layers": [layer] });
    let manifest = blob(&mut files, MANIFEST, serde_json::to_vec(&manifest).unwrap());
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest] });
    let index = blob(&mut files, INDEX, serde_json::to_vec(&index).unwrap());
    let empty = blob(&mut files, "application/vnd.oci.empty.v1+json", b"{}".to_vec());
    let signature =
        blob(&mut files, "application/vnd.test.signature.v1+json", format!("signed {payload}").into_bytes());
    let signed = json!({ "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/vnd.test.signature.v1+json", "config": empty, "layers": [signature], "subject": index });
    let signed = blob(&mut files, MANIFEST, serde_json::to_vec(&signed).unwrap());
    let mut named = index.clone();
    named["annotations"] = json!({ "org.opencontainers.image.ref.name": "bundle" });
    let mut signature_named = signed.clone();
    signature_named["annotations"] = json!({ "org.opencontainers.image.ref.name": "signature" });
    let top = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [named, signature_named] });
    files.insert("index.json".into(), serde_json::to_vec(&top).unwrap());
    files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    Built { index: index["digest"].as_str().unwrap().to_owned(), layout: Layout { files } }
}

fn registry(host: &str, credentials: Option<Credentials>) -> Registry {
    let location = Location::parse(&format!("oci://{host}/bundles")).unwrap();
    Registry::new(location, credentials, Duration::from_secs(10)).unwrap().with_attempts(3)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn skopeo_raw(reference: &str, creds: Option<&str>) -> Option<Vec<u8>> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--creds", creds]);
    }
    let output = command.arg(format!("docker://{reference}")).output().ok()?;
    assert!(output.status.success(), "skopeo: {}", String::from_utf8_lossy(&output.stderr));
    Some(output.stdout)
}

#[test]
fn a_layout_is_pushed_once_read_back_and_its_signature_found() {
    let Some(test) = TestRegistry::start(None) else { return };
    let built = layout("weights-a");
    let registry = registry(&test.host(), None);
    let repository = "bundles/fleet/edge";
    let rt = runtime();
    let first = rt.block_on(registry.push(repository, &built.layout, "bundle", "2026.12.1")).unwrap();
    assert_eq!((first.blobs_sent, first.manifests_sent, first.blobs_present), (4, 3, 0), "{first:?}");
    assert_eq!(rt.block_on(registry.tagged(repository, "2026.12.1", INDEX)).unwrap().as_deref(), Some(&*built.index));

    // skopeo reads the index back byte for byte (the digest is of these bytes).
    let host = test.host();
    if let Some(raw) = skopeo_raw(&format!("{host}/{repository}:2026.12.1"), None) {
        assert_eq!(digest_of(&raw), built.index);
    }

    // Pushed again: everything is looked for, nothing is sent.
    let uploads = test.requests("POST", "/blobs/uploads/");
    let puts = test.requests("PUT", "/manifests/");
    let again = rt.block_on(registry.push(repository, &built.layout, "bundle", "2026.12.1")).unwrap();
    assert_eq!((again.blobs_sent, again.manifests_sent, again.bytes_sent), (0, 0, 0), "{again:?}");
    assert_eq!((again.blobs_present, again.manifests_present), (4, 3));
    assert_eq!(test.requests("POST", "/blobs/uploads/"), uploads, "a blob was sent again");
    assert_eq!(test.requests("PUT", "/manifests/"), puts, "a manifest was sent again");

    // distribution 2.8 has no referrers API: the signature is listed under
    // the referrers tag of the index, with its artifact type.
    let tag = built.index.replacen(':', "-", 1);
    let referrers: Value =
        serde_json::from_slice(&skopeo_raw(&format!("{host}/{repository}:{tag}"), None).unwrap_or_default())
            .unwrap_or(Value::Null);
    if referrers != Value::Null {
        let listed = referrers["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{referrers}");
        assert_eq!(listed[0]["artifactType"], "application/vnd.test.signature.v1+json");
    }

    // A new version moves the tag; the old index is deleted by digest.
    let next = layout("weights-b");
    let moved = rt.block_on(registry.push(repository, &next.layout, "bundle", "2026.12.1")).unwrap();
    assert_eq!(moved.blobs_present, 2, "the config and empty blobs are shared: {moved:?}");
    assert_eq!(rt.block_on(registry.tagged(repository, "2026.12.1", INDEX)).unwrap().as_deref(), Some(&*next.index));
    assert_eq!(rt.block_on(registry.delete(repository, &built.index)).unwrap(), sovereign_oci::Deleted::Deleted);
    assert_eq!(rt.block_on(registry.delete(repository, &built.index)).unwrap(), sovereign_oci::Deleted::AlreadyGone);
}

#[test]
fn a_changed_layout_is_refused_before_anything_is_sent() {
    let Some(test) = TestRegistry::start(None) else { return };
    let mut built = layout("weights");
    let (path, bytes) = built.layout.files.iter_mut().find(|(p, _)| p.starts_with("blobs/")).unwrap();
    let path = path.clone();
    bytes[0] ^= 1;
    let error =
        runtime().block_on(registry(&test.host(), None).push("b/x", &built.layout, "bundle", "v1")).unwrap_err();
    assert!(matches!(&error, OciError::Layout(why) if why.contains("does not have its digest")), "{error} ({path})");
    assert_eq!(test.requests("POST", "/v2/") + test.requests("PUT", "/v2/") + test.requests("HEAD", "/v2/"), 0);
    for bad_tag in ["", "-x", "a:b"] {
        let error =
            runtime().block_on(registry(&test.host(), None).push("b/x", &layout("w").layout, "bundle", bad_tag));
        assert!(matches!(error, Err(OciError::Layout(_))), "{bad_tag:?}");
    }
}

#[test]
fn basic_auth_is_answered_and_a_wrong_password_is_named_not_shown() {
    let password = "CANARY-registry-password-5f1e";
    let Some(test) = TestRegistry::start(Some(("fleet", password))) else { return };
    let built = layout("weights");
    let rt = runtime();
    let none = rt.block_on(registry(&test.host(), None).push("b/x", &built.layout, "bundle", "v1")).unwrap_err();
    assert!(
        matches!(&none, OciError::Unauthorized(why) if why.contains("no credentials file has an `auth` for it")),
        "{none}"
    );
    let wrong = Credentials::new("fleet".into(), "not-it".into());
    let refused =
        rt.block_on(registry(&test.host(), Some(wrong)).push("b/x", &built.layout, "bundle", "v1")).unwrap_err();
    assert!(matches!(&refused, OciError::Unauthorized(why) if why.contains("user fleet")), "{refused}");
    let right = Credentials::new("fleet".into(), password.into());
    let pushed = rt.block_on(registry(&test.host(), Some(right)).push("b/x", &built.layout, "bundle", "v1")).unwrap();
    assert_eq!(pushed.manifests_sent, 3);
    assert!(!format!("{none} {refused} {pushed:?}").contains(password));
    if let Some(raw) = skopeo_raw(&format!("{}/b/x:v1", test.host()), Some(&format!("fleet:{password}"))) {
        assert_eq!(digest_of(&raw), built.index);
    }
}

#[test]
fn a_push_cut_short_by_a_stopped_registry_is_completed_by_the_next() {
    let Some(mut test) = TestRegistry::start(None) else { return };
    let built = layout("weights");
    let rt = runtime();
    // The registry stops before the push: nothing answers.
    test.stop();
    let error = rt.block_on(registry(&test.host(), None).push("b/x", &built.layout, "bundle", "v1")).unwrap_err();
    assert!(matches!(error, OciError::Unreachable(_)), "{error}");
    // Half a push: the variant's blobs and manifest landed, then the registry stopped.
    test.resume();
    let mut half = built.layout.clone();
    let inner = {
        let index: Value = serde_json::from_slice(&half.files["index.json"]).unwrap();
        let bundle = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
        let bundle: Value = serde_json::from_slice(&half.files[&format!("blobs/sha256/{bundle}")]).unwrap();
        let mut variant = bundle["manifests"][0].clone();
        variant["annotations"] = json!({ "org.opencontainers.image.ref.name": "bundle" });
        variant
    };
    half.files.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [inner] })).unwrap(),
    );
    rt.block_on(registry(&test.host(), None).push("b/x", &half, "bundle", "partial")).unwrap();
    test.stop();
    test.resume();
    let completed = rt.block_on(registry(&test.host(), None).push("b/x", &built.layout, "bundle", "v1")).unwrap();
    assert_eq!((completed.blobs_present, completed.blobs_sent), (2, 2), "{completed:?}");
    assert_eq!((completed.manifests_present, completed.manifests_sent), (1, 2), "{completed:?}");
    assert_eq!(
        rt.block_on(registry(&test.host(), None).tagged("b/x", "v1", INDEX)).unwrap().as_deref(),
        Some(&*built.index)
    );
}
