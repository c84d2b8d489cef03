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
    let layout = read("oci-layout").and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if layout.as_ref().and_then(|l| l["imageLayoutVersion"].as_str()) != Some("1.0.0") {
        problems.push("oci-layout is missing or not `{\"imageLayoutVersion\":\"1.0.0\"}`".to_owned());
    }
    let Some(top) = read("index.json").and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
        return Err(vec!["index.json is missing or not JSON".to_owned()]);
    };
    let mut checked = std::collections::BTreeSet::new();
    let descriptors = top["manifests"].as_array().cloned().unwrap_or_default();
    for descriptor in &descriptors {
        walk(read, descriptor, &mut checked, &mut problems);
    }
    let named = |name: &str| descriptors.iter().find(|d| d["annotations"][REF_NAME] == name);
    let Some(bundle) = named("bundle").and_then(|d| d["digest"].as_str()).map(str::to_owned) else {
        problems.push("index.json names no `bundle`".to_owned());
        return Err(problems);
    };
    match named("signature").and_then(|d| blob(read, d).ok()).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
        None => problems.push("the bundle is not signed (index.json names no readable `signature`)".to_owned()),
        Some(manifest) => {
            if manifest["artifactType"] != SIGNATURE_TYPE || manifest["subject"]["digest"] != bundle.as_str() {
                problems.push(format!("the signature manifest is not a signature of {bundle}"));
            }
            let body = manifest["layers"].get(0).and_then(|l| blob(read, l).ok());
            match body.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                None => problems.push("the signature's layer is missing or not JSON".to_owned()),
                Some(body) => {
                    let bytes = body["signature"].as_str().and_then(sovereign_desired::unbase64);
                    let signature = bytes
                        .and_then(|b| <[u8; 64]>::try_from(b).ok())
                        .map(|b| ed25519_dalek::Signature::from_bytes(&b));
                    if body["signed"] != bundle.as_str() {
                        problems.push(format!("the signature covers {}, not the bundle {bundle}", body["signed"]));
                    } else if body["algorithm"] != "ed25519" {
                        problems.push("the signature is not ed25519".to_owned());
                    } else {
                        match signature {
                            None => problems.push("the signature is not 64 bytes of base64".to_owned()),
                            Some(signature) => {
                                if key.verify(bundle.as_bytes(), &signature).is_err() {
                                    problems.push("the signature does not verify with this key".to_owned());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() { Ok(Verified { digest: bundle, blobs: checked.len() }) } else { Err(problems) }
}

/// Checks a descriptor's blob and, for an index or a manifest, everything it names.
fn walk(
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
    descriptor: &Value,
    checked: &mut std::collections::BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let digest = descriptor["digest"].as_str().unwrap_or_default().to_owned();
    if !checked.insert(digest.clone()) {
        return;
    }
    let bytes = match blob(read, descriptor) {
        Ok(bytes) => bytes,
        Err(problem) => {
            problems.push(problem);
            return;
        }
    };
    let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
    if media_type != OCI_INDEX && media_type != OCI_MANIFEST {
        return;
    }
    let Ok(document) = serde_json::from_slice::<Value>(&bytes) else {
        problems.push(format!("{digest}: not JSON"));
        return;
    };
    let mut children: Vec<&Value> = Vec::new();
    children.extend(document["manifests"].as_array().into_iter().flatten());
    children.extend(document.get("config"));
    children.extend(document["layers"].as_array().into_iter().flatten());
    for child in children {
        walk(read, child, checked, problems);
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
