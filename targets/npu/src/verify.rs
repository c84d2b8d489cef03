//! `sovereign bundle verify`: every blob a bundle's `index.json` reaches
//! has the digest and size its descriptor says, and the signature over
//! the bundle index's digest verifies with the given public key.

use ed25519_dalek::Verifier as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sovereign_desired::hex;

use crate::{OCI_INDEX, OCI_MANIFEST, REF_NAME, SIGNATURE_TYPE};

/// What a verification checked.
#[derive(Debug)]
pub struct Verified {
    /// `sha256:<hex>` of the bundle index the signature covers.
    pub digest: String,
    pub blobs: usize,
}

/// Verifies a bundle read through `read` (a path in the layout to its
/// bytes) against `public_key`, a PEM (SPKI) ed25519 public key.
/// Every problem is listed; none means the bundle is intact and signed by
/// that key.
pub fn verify(read: &dyn Fn(&str) -> Option<Vec<u8>>, public_key: &str) -> Result<Verified, Vec<String>> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let mut problems = Vec::new();
    let key = ed25519_dalek::VerifyingKey::from_public_key_pem(public_key.trim())
        .map_err(|_| vec!["the key is not an ed25519 public key in PEM (`openssl pkey -pubout`)".to_owned()])?;
    let layout =
        read("oci-layout").filter(|b| b.len() <= MAX_DOCUMENT).and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if layout.as_ref().and_then(|l| l["imageLayoutVersion"].as_str()) != Some("1.0.0") {
        problems.push("oci-layout is missing or not `{\"imageLayoutVersion\":\"1.0.0\"}`".to_owned());
    }
    let Some(top) =
        read("index.json").filter(|b| b.len() <= MAX_DOCUMENT).and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return Err(vec!["index.json is missing, larger than 4 MiB or not JSON".to_owned()]);
    };
    let descriptors = top["manifests"].as_array().cloned().unwrap_or_default();
    let named = |name: &str| descriptors.iter().find(|d| d["annotations"][REF_NAME] == name);
    // The bundle: an image index, and everything it names.
    let Some(bundle) = named("bundle") else {
        problems.push("index.json names no `bundle`".to_owned());
        return Err(problems);
    };
    if bundle["mediaType"] != OCI_INDEX {
        problems.push("the `bundle` is not an image index".to_owned());
        return Err(problems);
    }
    let digest = bundle["digest"].as_str().unwrap_or_default().to_owned();
    let mut checked = std::collections::BTreeSet::new();
    let index = document(read, bundle, OCI_INDEX, &mut checked, &mut problems);
    let variants: Vec<Value> = index.as_ref().and_then(|i| i["manifests"].as_array().cloned()).unwrap_or_default();
    for variant in &variants {
        if let Some(manifest) = document(read, variant, OCI_MANIFEST, &mut checked, &mut problems) {
            check_children(read, &manifest, &mut checked, &mut problems);
        }
    }
    // Everything else `index.json` names must be what the signed bundle
    // holds, or its signature: an entry added beside the bundle is not signed.
    let same =
        |a: &Value, b: &Value| a["digest"] == b["digest"] && a["size"] == b["size"] && a["mediaType"] == b["mediaType"];
    for descriptor in &descriptors {
        let name = descriptor["annotations"][REF_NAME].as_str().unwrap_or("(no name)");
        if name == "bundle" || name == "signature" {
            continue;
        }
        if !variants.iter().any(|v| same(v, descriptor)) {
            problems.push(format!("index.json names `{name}`, which the signed bundle does not hold"));
        }
    }
    let signature = named("signature").and_then(|d| document(read, d, OCI_MANIFEST, &mut checked, &mut problems));
    if let Some(manifest) = &signature {
        check_children(read, manifest, &mut checked, &mut problems);
    }
    match signature {
        None => problems.push("the bundle is not signed (index.json names no readable `signature`)".to_owned()),
        Some(manifest) => {
            if manifest["artifactType"] != SIGNATURE_TYPE || !same(&manifest["subject"], bundle) {
                problems.push(format!("the signature manifest is not a signature of {digest}"));
            }
            let body = manifest["layers"].get(0).and_then(|l| blob(read, l).ok());
            match body.filter(|b| b.len() <= MAX_DOCUMENT).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                None => problems.push("the signature's layer is missing or not JSON".to_owned()),
                Some(body) => check_signature(&body, &digest, &key, &mut problems),
            }
        }
    }
    if problems.is_empty() { Ok(Verified { digest, blobs: checked.len() }) } else { Err(problems) }
}

/// Checks a manifest's config and layers: there, with the digest and size named.
fn check_children(
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
    manifest: &Value,
    checked: &mut std::collections::BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let children = manifest.get("config").into_iter().chain(manifest["layers"].as_array().into_iter().flatten());
    for child in children {
        if checked.insert(child["digest"].as_str().unwrap_or_default().to_owned())
            && let Err(problem) = blob(read, child)
        {
            problems.push(problem);
        }
    }
}

/// The largest index or manifest read (they are small; a crafted one must
/// not exhaust memory).
const MAX_DOCUMENT: usize = 4 << 20;

/// A descriptor's blob parsed as the index or manifest `media_type` says,
/// when both the descriptor and the document say that type.
fn document(
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
    descriptor: &Value,
    media_type: &str,
    checked: &mut std::collections::BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Option<Value> {
    let digest = descriptor["digest"].as_str().unwrap_or_default().to_owned();
    checked.insert(digest.clone());
    if descriptor["mediaType"] != media_type {
        problems.push(format!("{digest}: the descriptor says {}, not {media_type}", descriptor["mediaType"]));
        return None;
    }
    let bytes = match blob(read, descriptor) {
        Ok(bytes) if bytes.len() <= MAX_DOCUMENT => bytes,
        Ok(_) => {
            problems.push(format!("{digest}: larger than an index or manifest may be"));
            return None;
        }
        Err(problem) => {
            problems.push(problem);
            return None;
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(document) if document["mediaType"] == media_type => Some(document),
        _ => {
            problems.push(format!("{digest}: not a JSON {media_type}"));
            None
        }
    }
}

fn check_signature(body: &Value, digest: &str, key: &ed25519_dalek::VerifyingKey, problems: &mut Vec<String>) {
    let bytes = body["signature"].as_str().and_then(sovereign_desired::unbase64);
    let signature = bytes.and_then(|b| <[u8; 64]>::try_from(b).ok()).map(|b| ed25519_dalek::Signature::from_bytes(&b));
    if body["signed"] != digest {
        problems.push(format!("the signature covers {}, not the bundle {digest}", body["signed"]));
    } else if body["algorithm"] != "ed25519" {
        problems.push("the signature is not ed25519".to_owned());
    } else {
        match signature {
            None => problems.push("the signature is not 64 bytes of base64".to_owned()),
            Some(signature) if key.verify(digest.as_bytes(), &signature).is_err() => {
                problems.push("the signature does not verify with this key".to_owned());
            }
            Some(_) => {}
        }
    }
}

/// A descriptor's blob, if it is there with the digest and size it claims.
fn blob(read: &dyn Fn(&str) -> Option<Vec<u8>>, descriptor: &Value) -> Result<Vec<u8>, String> {
    let digest = descriptor["digest"].as_str().unwrap_or_default();
    let Some(hex_digest) =
        digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Err(format!("`{digest}` is not a sha256 digest"));
    };
    let bytes = read(&format!("blobs/sha256/{hex_digest}")).ok_or_else(|| format!("{digest}: the blob is missing"))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != hex_digest {
        return Err(format!("{digest}: the blob's content has digest sha256:{actual}"));
    }
    if descriptor["size"].as_u64() != Some(bytes.len() as u64) {
        return Err(format!("{digest}: {} bytes, the descriptor says {}", bytes.len(), descriptor["size"]));
    }
    Ok(bytes)
}
