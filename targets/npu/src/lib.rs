//! The NPU target: one device bundle per (edge, fleet), an OCI image
//! layout a device agent (or `skopeo`, or a registry push) reads, and its
//! verification (`sovereign bundle verify`).
//!
//! The format is the proposal of `../shared/reference/device-bundles.md`
//! §6, cut to what the spec and the analysis know today:
//! - `oci-layout` and `index.json` (OCI image-spec v1.1 `image-layout.md`);
//!   `index.json` names the bundle (`org.opencontainers.image.ref.name:
//!   bundle`), each variant (`variant-<id>`) and the signature (`signature`);
//! - the bundle: an image index with `artifactType
//!   application/vnd.sovereign.npu-bundle.v1+json`, one manifest per
//!   variant: the fleet's SoC, and a portable one (any CPU) a device falls
//!   back to; the selection keys are repeated as annotations;
//! - each variant: a config `bundle.json` (the model, its dtype and format,
//!   the fit the analysis computed, the requirements) and the handshake
//!   layer (the fallback serve, `when`, `timeout`, `redact`, and the data
//!   classifications the sovereignty analysis lets leave the device), the
//!   same blob in every variant;
//! - the signature: a manifest whose `subject` is the bundle index (a
//!   referrer, kept in `index.json` as §6.7 suggests for image layouts) and
//!   whose layer holds an ed25519 signature over the index's digest
//!   (`sha256:<hex>`, the ASCII text).
//!
//! Weights: a model's `source` is a volume of a cluster (`pvc://`), not a
//! file the build can read, so bundles carry no weights yet; `bundle.json`
//! says where they are.
//!
//! Deterministic: no timestamps, JSON with sorted keys, blobs named by
//! their digest; the same spec and key give the same bytes. ed25519
//! signatures are deterministic too (RFC 8032).
//!
//! Architecture Invariant: pure. The key arrives as bytes read by the CLI;
//! `verify` reads through a closure.

mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ed25519_dalek::Signer as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sovereign_analyze::Analysis;
use sovereign_desired::{DesiredState, Resource, ResourceId, Target, hex};
use sovereign_model::{Edge, Id, Secret, Spec};

pub use verify::{Verified, verify};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const BUNDLE_TYPE: &str = "application/vnd.sovereign.npu-bundle.v1+json";
pub const VARIANT_TYPE: &str = "application/vnd.sovereign.npu-bundle.variant.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.sovereign.npu-bundle.config.v1+json";
pub const HANDSHAKE_TYPE: &str = "application/vnd.sovereign.handshake.v1+json";
pub const SIGNATURE_TYPE: &str = "application/vnd.sovereign.signature.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An ed25519 signing key, parsed by [`signing_key`] from what a secret holds.
pub struct SigningKey(ed25519_dalek::SigningKey);

/// Reads a PKCS#8 PEM ed25519 private key (`openssl genpkey -algorithm
/// ed25519`). The error never quotes the text: it is a secret.
pub fn signing_key(pem: &str) -> Result<SigningKey, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
        .map(SigningKey)
        .map_err(|_| "not an ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`)".to_owned())
}

/// One device bundle: the files of its OCI image layout.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub site: Arc<str>,
    pub fleet: String,
    pub edge: Arc<str>,
    /// Path (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) to bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// `sha256:<hex>` of the bundle's image index.
    pub digest: String,
    pub signed: bool,
}

/// A blob and its descriptor.
struct Blob {
    media_type: &'static str,
    bytes: Vec<u8>,
}

impl Blob {
    fn json(media_type: &'static str, value: &Value) -> Blob {
        // JSON values serialize; keys are sorted (no `preserve_order`).
        Blob { media_type, bytes: serde_json::to_vec(value).unwrap_or_default() }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex(&Sha256::digest(&self.bytes)))
    }

    fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len() })
    }
}

/// The bundles of every edge; `keys` holds, for each secret an edge names
/// as its signing key, the key or why it could not be read (the CLI reads
/// them; an edge whose key is missing gets no bundle, and says why).
#[must_use]
pub fn emit(
    spec: &Spec,
    analysis: &Analysis,
    keys: &BTreeMap<Id<Secret>, Result<SigningKey, String>>,
) -> (Vec<Bundle>, DesiredState) {
    let mut state = DesiredState::default();
    let bundles = emit_into(spec, analysis, keys, &mut state);
    (bundles, state)
}

/// The bundles of the sites `state` wants, their resources added to it.
pub fn emit_into(
    spec: &Spec,
    analysis: &Analysis,
    keys: &BTreeMap<Id<Secret>, Result<SigningKey, String>>,
    state: &mut DesiredState,
) -> Vec<Bundle> {
    let mut bundles = Vec::new();
    let mut unsigned = Vec::new();
    for fit in &analysis.devices {
        let edge = &spec.edges[fit.edge];
        if !state.wants(&spec.sites[edge.fleet.value.parent].name.qualified) {
            continue;
        }
        let key = match &edge.signing_key {
            None => None,
            Some(secret) => match keys.get(&secret.value) {
                Some(Ok(key)) => Some(key),
                Some(Err(why)) => {
                    state.unbuilt.push(format!(
                        "edge \"{}\": its signing key (secret \"{}\"): {why}",
                        edge.name.qualified, spec.secrets[secret.value].name.qualified
                    ));
                    continue;
                }
                None => {
                    state.unbuilt.push(format!("edge \"{}\": its signing key was not read", edge.name.qualified));
                    continue;
                }
            },
        };
        if key.is_none() {
            unsigned.push(edge.name.qualified.to_string());
        }
        let bundle = bundle(spec, analysis, fit, edge, key);
        let id = ResourceId {
            target: Target::Npu,
            site: bundle.site.clone(),
            kind: "bundle".into(),
            namespace: Some(bundle.fleet.as_str().into()),
            name: bundle.edge.clone(),
        };
        let mut body = json!({ "digest": bundle.digest, "signed": bundle.signed });
        if let Some(push) = push(spec, edge, &bundle) {
            body["push"] = push;
        }
        state.add(Resource::new(id, Some(format!("edge \"{}\"", edge.name.qualified).into()), &body));
        bundles.push(bundle);
    }
    for edge in unsigned {
        state.assumptions.push(format!(
            "the bundles of edge \"{edge}\" are unsigned: devices refuse unsigned bundles; name a key with `signing-key=`"
        ));
    }
    bundles
}

/// Where the bundle goes when its site has a `registry`: the repository
/// `<registry path>/<fleet>/<edge>`, tagged with the edge's `version`, or
/// `bundle-` and 12 hex digits of the digest (so that each content has its
/// own tag and an older one stays pullable). `None` without a registry, or
/// with one the checker refused.
fn push(spec: &Spec, edge: &Edge, bundle: &Bundle) -> Option<Value> {
    let site = &spec.sites[edge.fleet.value.parent];
    let uri = site.registry.as_ref()?;
    let location = sovereign_model::registry::Location::parse(uri.value.as_str()).ok()?;
    let repository = location.bundle_repository(spec.fleet(edge.fleet.value).name.text(), edge.name.text());
    sovereign_model::registry::check_repository(&repository).ok()?;
    let tag = match &edge.version {
        Some(version) => version.value.to_string(),
        None => format!("bundle-{}", bundle.digest.trim_start_matches("sha256:").get(..12).unwrap_or_default()),
    };
    Some(json!({ "registry": uri.value.as_str(), "repository": repository, "tag": tag }))
}

fn bundle(
    spec: &Spec,
    analysis: &Analysis,
    fit: &sovereign_analyze::devices::DeviceFit,
    edge: &Edge,
    key: Option<&SigningKey>,
) -> Bundle {
    let model = &spec.models[edge.model.value];
    let fleet = spec.fleet(edge.fleet.value);
    let site = spec.sites[edge.fleet.value.parent].name.qualified.clone();
    let handshake = Blob::json(HANDSHAKE_TYPE, &handshake(spec, analysis, edge));
    let mut blobs: Vec<Blob> = Vec::new();
    let mut variants = Vec::new();
    for (id, accel, soc) in [
        (format!("soc-{}", sovereign_helm::label(&fit.soc)), "npu", Some(fit.soc.as_str())),
        ("portable".to_owned(), "cpu", None),
    ] {
        let config = Blob::json(
            CONFIG_TYPE,
            &json!({
                "schema": "sovereign.dev/npu-bundle/v1",
                "bundle": { "name": &*edge.name.qualified, "fleet": fit.fleet },
                "model": {
                    "name": &*model.name.qualified,
                    "base": fit.base,
                    "dtype": fit.dtype,
                    "format": fit.format,
                    "weights": model.source.as_ref().map_or_else(
                        || json!({ "included": false }),
                        |s| json!({ "included": false, "source": s.value.as_str() })
                    ),
                },
                "variant": { "id": id, "accelerator": accel, "soc": soc },
                "fit": {
                    "weights_bytes": fit.weights,
                    "device_memory_bytes": fit.memory,
                    "devices": fit.devices,
                    "supported": fit.supported,
                    "fits": fit.fits(),
                },
                "requires": { "soc": soc, "min_memory_bytes": fit.weights.ceil() as u64, "fleet_memory_bytes": fleet.memory.value },
                "handshake_ref": handshake.digest(),
            }),
        );
        let mut layer = handshake.descriptor();
        layer["annotations"] = json!({ "org.opencontainers.image.title": "handshake.json" });
        let mut annotations = json!({ "sovereign.dev/variant": id, "sovereign.dev/accel": accel });
        if let Some(soc) = soc {
            annotations["sovereign.dev/soc"] = json!(soc);
        }
        let manifest = Blob::json(
            OCI_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": VARIANT_TYPE,
                "config": config.descriptor(),
                "layers": [layer],
                "annotations": annotations,
            }),
        );
        let mut descriptor = manifest.descriptor();
        descriptor["artifactType"] = json!(VARIANT_TYPE);
        descriptor["annotations"] = annotations;
        variants.push((id, descriptor));
        blobs.push(config);
        blobs.push(manifest);
    }
    let index = Blob::json(
        OCI_INDEX,
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": BUNDLE_TYPE,
            "manifests": variants.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
            "annotations": { "sovereign.dev/bundle.name": &*edge.name.qualified, "sovereign.dev/fleet": fit.fleet },
        }),
    );
    let digest = index.digest();
    let mut top = Vec::new();
    let mut named = index.descriptor();
    named["artifactType"] = json!(BUNDLE_TYPE);
    named["annotations"] = json!({ REF_NAME: "bundle" });
    top.push(named);
    for (id, descriptor) in &variants {
        let mut named = descriptor.clone();
        named["annotations"][REF_NAME] = json!(format!("variant-{id}"));
        top.push(named);
    }
    if let Some(SigningKey(key)) = key {
        let signature = key.sign(digest.as_bytes());
        let body = Blob::json(
            SIGNATURE_TYPE,
            &json!({
                "algorithm": "ed25519",
                "signed": digest,
                "public_key": sovereign_desired::base64(key.verifying_key().as_bytes()),
                "signature": sovereign_desired::base64(&signature.to_bytes()),
            }),
        );
        let empty = Blob { media_type: OCI_EMPTY, bytes: b"{}".to_vec() };
        let manifest = Blob::json(
            OCI_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SIGNATURE_TYPE,
                "config": empty.descriptor(),
                "layers": [body.descriptor()],
                "subject": index.descriptor(),
            }),
        );
        let mut named = manifest.descriptor();
        named["artifactType"] = json!(SIGNATURE_TYPE);
        named["annotations"] = json!({ REF_NAME: "signature" });
        top.push(named);
        blobs.extend([body, empty, manifest]);
    }
    blobs.push(handshake);
    blobs.push(index);
    let mut files = BTreeMap::new();
    for blob in blobs {
        files.insert(format!("blobs/sha256/{}", blob.digest().trim_start_matches("sha256:")), blob.bytes);
    }
    files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let layout_index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": top });
    files.insert("index.json".into(), serde_json::to_vec(&layout_index).unwrap_or_default());
    Bundle { site, fleet: fit.fleet.clone(), edge: edge.name.qualified.clone(), files, digest, signed: key.is_some() }
}

/// The handshake policy: where a device falls back, when, and which data
/// classifications may leave it (those of the flows the sovereignty
/// analysis allowed from this edge to its fallback).
fn handshake(spec: &Spec, analysis: &Analysis, edge: &Edge) -> Value {
    let Some(fallback) = &edge.fallback else {
        return json!({ "schema": "sovereign.dev/handshake/v1", "local_only": true, "allowed_to_leave": [] });
    };
    let serve = &spec.serves[fallback.serve.value];
    // Per dataset the device reads: its class, and what it is when it
    // arrives (a redacting hop makes restricted data internal).
    let leaving: BTreeSet<(&str, &str, &str, bool)> = analysis
        .flows
        .flows
        .iter()
        .filter(|f| f.from == edge.item && f.to == serve.item)
        .map(|f| {
            let dataset = &spec.datasets[f.dataset];
            (&*dataset.name.qualified, dataset.classification.value.word(), f.class.word(), f.redacted)
        })
        .collect();
    let leaving: Vec<Value> = leaving
        .into_iter()
        .map(|(dataset, class, arrives, redacted)| {
            json!({ "dataset": dataset, "classification": class, "arrives_as": arrives, "redacted": redacted })
        })
        .collect();
    json!({
        "schema": "sovereign.dev/handshake/v1",
        "local_first": true,
        "fallback": {
            "serve": &*serve.name.qualified,
            "when": fallback.when.value.to_string(),
            "timeout_ms": fallback.timeout.as_ref().map(|t| t.value),
            "redact": fallback.redact.value,
        },
        "allowed_to_leave": leaving,
    })
}
