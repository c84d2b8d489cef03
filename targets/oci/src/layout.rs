//! An OCI image layout read for a push: which blobs and manifests it
//! holds, in the order a registry accepts them (a manifest after the
//! blobs it names, an index after its manifests), every blob checked
//! against its digest first.
//!
//! Facts: opencontainers/image-spec `image-layout.md` (`index.json`,
//! `blobs/<alg>/<hex>`), `descriptor.md`, `manifest.md` (`config`,
//! `layers`, `subject`), `image-index.md`; the ref name annotation
//! `org.opencontainers.image.ref.name` (`annotations.md`).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// How deep an index may nest: a layout is data from a file, and a cycle
/// of digests cannot exist but a deep chain could.
const MAX_DEPTH: usize = 8;

/// A layout's files: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A descriptor as the push uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub artifact_type: Option<String>,
}

impl Descriptor {
    fn of(value: &Value) -> Result<Descriptor, String> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let digest = text("digest").ok_or("a descriptor without a digest")?;
        if !is_sha256(&digest) {
            return Err(format!("{digest:?} is not a sha256 digest"));
        }
        Ok(Descriptor {
            media_type: text("mediaType").ok_or_else(|| format!("descriptor {digest} has no mediaType"))?,
            size: value
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("descriptor {digest} has no size"))?,
            artifact_type: text("artifactType"),
            digest,
        })
    }

    pub(crate) fn json(&self) -> Value {
        let mut value = serde_json::json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size });
        if let Some(artifact_type) = &self.artifact_type {
            value["artifactType"] = Value::String(artifact_type.clone());
        }
        value
    }
}

/// What to send, in order.
#[derive(Debug)]
pub struct PushOrder {
    /// Config and layer blobs (not manifests).
    pub blobs: Vec<Descriptor>,
    /// Manifests and indexes, each after what it names.
    pub manifests: Vec<Descriptor>,
    /// The manifests that refer to another (`subject`): a signature.
    pub referrers: Vec<(Descriptor, String)>,
    /// The descriptor `index.json` names `ref_name` (`bundle`): what is tagged.
    pub tagged: Descriptor,
}

impl Layout {
    /// The bytes of the blob `digest`, checked against it.
    pub fn blob(&self, digest: &str) -> Result<&[u8], String> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|_| is_sha256(digest))
            .ok_or_else(|| format!("{digest:?} is not a sha256 digest"))?;
        let bytes =
            self.files.get(&format!("blobs/sha256/{hex}")).ok_or_else(|| format!("the layout has no blob {digest}"))?;
        if sovereign_desired::hex(&Sha256::digest(bytes)) != hex {
            return Err(format!("blob {digest} does not have its digest (the layout was changed)"));
        }
        Ok(bytes)
    }

    /// The push order of everything `index.json` names; the descriptor
    /// named `ref_name` is the one tagged.
    pub fn push_order(&self, ref_name: &str) -> Result<PushOrder, String> {
        let index = self.files.get("index.json").ok_or("the layout has no index.json")?;
        let index: Value = serde_json::from_slice(index).map_err(|e| format!("index.json is not JSON: {e}"))?;
        let top = index.get("manifests").and_then(Value::as_array).ok_or("index.json has no manifests")?;
        let mut order = Building { blobs: Vec::new(), manifests: Vec::new(), referrers: Vec::new(), tagged: None };
        let mut seen = HashSet::new();
        for entry in top {
            let descriptor = Descriptor::of(entry)?;
            if entry.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1"))).and_then(Value::as_str)
                == Some(ref_name)
            {
                order.tagged = Some(descriptor.clone());
            }
            self.visit(&descriptor, 0, &mut seen, &mut order)?;
        }
        let tagged = order.tagged.ok_or_else(|| format!("index.json names no manifest `{ref_name}`"))?;
        if tagged.media_type != INDEX && tagged.media_type != MANIFEST {
            return Err(format!("`{ref_name}` is a {}, not a manifest or an index", tagged.media_type));
        }
        Ok(PushOrder { blobs: order.blobs, manifests: order.manifests, referrers: order.referrers, tagged })
    }

    fn visit(
        &self,
        descriptor: &Descriptor,
        depth: usize,
        seen: &mut HashSet<String>,
        order: &mut Building,
    ) -> Result<(), String> {
        if !seen.insert(descriptor.digest.clone()) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(format!("the layout nests indexes deeper than {MAX_DEPTH}"));
        }
        let bytes = self.blob(&descriptor.digest)?;
        if bytes.len() as u64 != descriptor.size {
            return Err(format!(
                "blob {} is {} bytes, and its descriptor says {}",
                descriptor.digest,
                bytes.len(),
                descriptor.size
            ));
        }
        let is_manifest = descriptor.media_type == MANIFEST;
        if !is_manifest && descriptor.media_type != INDEX {
            order.blobs.push(descriptor.clone());
            return Ok(());
        }
        let body: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest {} is not JSON: {e}", descriptor.digest))?;
        if is_manifest {
            let config = body.get("config").ok_or_else(|| format!("manifest {} has no config", descriptor.digest))?;
            let layers = body.get("layers").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            for blob in std::iter::once(config).chain(layers) {
                let blob = Descriptor::of(blob)?;
                if blob.media_type == MANIFEST || blob.media_type == INDEX {
                    return Err(format!("manifest {} names a manifest as a blob", descriptor.digest));
                }
                self.visit(&blob, depth + 1, seen, order)?;
            }
        } else {
            for child in body.get("manifests").and_then(Value::as_array).map_or(&[][..], Vec::as_slice) {
                self.visit(&Descriptor::of(child)?, depth + 1, seen, order)?;
            }
        }
        order.manifests.push(descriptor.clone());
        if let Some(subject) = body.get("subject") {
            order.referrers.push((descriptor.clone(), Descriptor::of(subject)?.digest));
        }
        Ok(())
    }
}

/// A push order while it is gathered (the tagged descriptor not yet found).
struct Building {
    blobs: Vec<Descriptor>,
    manifests: Vec<Descriptor>,
    referrers: Vec<(Descriptor, String)>,
    tagged: Option<Descriptor>,
}

#[must_use]
pub fn is_sha256(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `sha256:<hex>` of `bytes`.
#[must_use]
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sovereign_desired::hex(&Sha256::digest(bytes)))
}
