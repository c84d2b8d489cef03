//! `vectorstore` → the Qdrant chart, and its collections.
//!
//! Facts (qdrant/qdrant-helm `charts/qdrant/values.yaml` at chart 1.19.0,
//! ../shared/fixtures/helm-charts/qdrant):
//! - `replicaCount`, `persistence.size` (a volumeClaimTemplate at
//!   `/qdrant/storage`);
//! - `apiKey` takes `{valueFrom: {secretKeyRef: {name, key}}}` (documented in
//!   the comments above `apiKey`); the chart resolves it with `lookup`, so
//!   the Secret must exist before the chart installs;
//! - `updateVolumeFsOwnership: true` (the default) adds a root init
//!   container to chown the volumes, which the restricted profile forbids:
//!   `fsGroup` already gives the volume to the pod's group;
//! - the HTTP API listens on 6333, gRPC on 6334 (`service.ports`).
//!
//! Collections (api.qdrant.tech "Create a collection"):
//! `PUT /collections/{name}` with `{"vectors": {"size", "distance"}}`,
//! `distance` one of `Cosine`, `Euclid`, `Dot`, `Manhattan`.

use std::sync::Arc;

use serde_json::json;
use sovereign_analyze::Analysis;
use sovereign_catalog::Chart;
use sovereign_desired::modules::{Module, namespace_name};
use sovereign_desired::{ApplySecret, Resource, ResourceId, SecretValue, Target};
use sovereign_model::{Distance, Spec};

use crate::{Emitted, Release, gibibytes, label, restricted_container};

pub const QDRANT_HTTP_PORT: u16 = 6333;
/// The key of the API key in its Secret.
pub const API_KEY_KEY: &str = "api-key";

/// The Service of a release (qdrant/qdrant-helm `templates/service.yaml`
/// at chart 1.19: `qdrant.fullname`; its `http` port is 6333).
#[must_use]
pub fn qdrant_service(release: &str) -> String {
    crate::chart_fullname(release, "qdrant")
}

/// The Secret holding a vector store's API key: apply creates it with a
/// random key before the chart installs (the chart reads it then).
#[must_use]
pub fn api_key_secret(release: &str) -> String {
    format!("{release}-api-key")
}

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, fabric: &str, chart: &Chart, emitted: &mut Emitted) {
    let namespace = namespace_name(fabric, Module::Kinetic);
    for store in spec.vectorstores.values() {
        let mut name = None;
        for site in analysis.workload_sites.sites(store.item) {
            let site = &analysis.sites.sites[site.index()];
            if !site.has_cluster || !emitted.wants(site.id.index()) {
                continue;
            }
            // Only for a store this batch builds (a large fabric is built in batches).
            let name: &String = name.get_or_insert_with(|| label(&store.name.qualified));
            let mut values = json!({
                "replicaCount": store.replicas.value,
                "apiKey": { "valueFrom": { "secretKeyRef": { "name": api_key_secret(name), "key": API_KEY_KEY } } },
                "updateVolumeFsOwnership": false,
                "podSecurityContext": {
                    "fsGroup": 3000,
                    "fsGroupChangePolicy": "Always",
                    "runAsNonRoot": true,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containerSecurityContext": {
                    "runAsUser": 1000,
                    "runAsGroup": 2000,
                    "privileged": false,
                    "readOnlyRootFilesystem": true,
                },
            });
            if let Some(object) = values["containerSecurityContext"].as_object_mut()
                && let Some(restricted) = restricted_container().as_object()
            {
                object.extend(restricted.clone());
            }
            if let Some(storage) = &store.storage {
                values["persistence"] = json!({ "size": gibibytes(storage.value) });
            }
            let release = Release {
                site: site.name.clone(),
                chart: chart.clone(),
                name: name.clone(),
                namespace: namespace.clone(),
                module: Module::Kinetic,
                declaration: ("vectorstore", store.name.qualified.clone()),
                values,
                after: Vec::new(),
                database: None,
            };
            emitted.state.at_apply.push(format!(
                "Secret {namespace}/{}: a random Qdrant API key for vectorstore \"{}\", created before its chart installs",
                api_key_secret(name),
                store.name.qualified
            ));
            emitted.state.add_secret(ApplySecret {
                site: site.name.clone(),
                namespace: namespace.as_str().into(),
                name: api_key_secret(name).into(),
                key: API_KEY_KEY.into(),
                value: SecretValue::Random,
            });
            for collection in &store.collections {
                let distance = match collection.distance.value {
                    Distance::Cosine => "Cosine",
                    Distance::Dot => "Dot",
                    Distance::Euclid => "Euclid",
                    Distance::Manhattan => "Manhattan",
                };
                let id = ResourceId {
                    target: Target::Qdrant,
                    site: site.name.clone(),
                    kind: "collection".into(),
                    namespace: Some(Arc::from(format!("{namespace}/{name}"))),
                    name: collection.name.text().into(),
                };
                let body = json!({ "vectors": { "size": collection.dims.value, "distance": distance } });
                let declaration = format!("vectorstore \"{}\"", store.name.qualified);
                let mut resource = Resource::new(id, Some(declaration.into()), &body);
                resource.depends_on.insert(release.helm_chart_id());
                emitted.state.add(resource);
            }
            emitted.releases.push(release);
        }
    }
}
