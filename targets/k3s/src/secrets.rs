//! Secrets: never a value. A workload reads a Secret by name and key
//! (`sovereign_helm::secret_ref`); where that Secret comes from depends on
//! the declared source:
//! - `vault:PATH[#FIELD]` → an ExternalSecret (External Secrets Operator,
//!   `external-secrets.io/v1`, the served and stored version of its CRDs
//!   at chart 2.9.0) that makes the Secret in-cluster, so GitOps users get
//!   the value without sovereign ever holding it. It reads through a
//!   ClusterSecretStore named `vault`, which the cluster must have;
//! - `env:` and `file:` → the Secret is created by apply, from the
//!   applying process's environment or file: listed, never written;
//! - `k8s:NAMESPACE/NAME` → it exists already.
//!
//! ExternalSecret fields: external-secrets/external-secrets
//! `apis/externalsecrets/v1/externalsecret_types.go` (`secretStoreRef`,
//! `target.name`, `target.creationPolicy`, `data[].secretKey`,
//! `data[].remoteRef.key`/`.property`, `refreshInterval`).

use std::collections::BTreeSet;

use serde_json::json;
use sovereign_analyze::Analysis;
use sovereign_desired::modules::{Module, namespace_name};
use sovereign_desired::{ApplySecret, DesiredState, SecretValue};
use sovereign_ir::values::SecretSource;
use sovereign_model::Spec;

use crate::labels::{Context, Declaration};
use crate::namespaces::namespace_id;
use crate::objects::Spec as Rest;

/// The ClusterSecretStore every ExternalSecret reads through.
pub const SECRET_STORE: &str = "vault";

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    // Only the collector reads secrets so far (export tokens): they live in its namespace.
    let used: BTreeSet<_> = spec
        .observes
        .values()
        .flat_map(|o| o.exports.iter().filter_map(|e| e.token.as_ref().map(|t| t.value)))
        .collect();
    if used.is_empty() {
        return;
    }
    let namespace = namespace_name(&context.fabric, Module::Autopilot);
    let mut store_needed = false;
    for &id in &used {
        let secret = &spec.secrets[id];
        let reference = sovereign_helm::secret_ref(spec, id);
        let declaration = Declaration { kind: "secret", name: secret.name.qualified.clone() };
        match &secret.from.value {
            SecretSource::Vault(path) => {
                store_needed = true;
                let (key, property) = path.split_once('#').map_or((path.as_str(), None), |(k, p)| (k, Some(p)));
                let mut remote = json!({ "key": key });
                if let Some(property) = property {
                    remote["property"] = json!(property);
                }
                for site in analysis.sites.sites.iter().filter(|s| s.has_cluster) {
                    if !context.wants(site.id.index()) {
                        continue;
                    }
                    let metadata = context.metadata(&reference.name, Some(&namespace), Some(&declaration));
                    let rest = json!({
                        "refreshInterval": "1h",
                        "secretStoreRef": { "kind": "ClusterSecretStore", "name": SECRET_STORE },
                        "target": { "name": reference.name, "creationPolicy": "Owner" },
                        "data": [{ "secretKey": reference.key, "remoteRef": remote }],
                    });
                    let mut resource = context.object(
                        &site.name,
                        "external-secrets.io/v1",
                        "ExternalSecret",
                        &metadata,
                        Rest { spec: rest },
                        Some(&declaration),
                    );
                    resource.depends_on.insert(namespace_id(&site.name, &namespace));
                    state.add(resource);
                }
            }
            SecretSource::Env(source) | SecretSource::File(source) => {
                state.at_apply.push(format!(
                    "Secret {namespace}/{} (key `{}`): secret \"{}\", read from its source by apply on every cluster",
                    reference.name, reference.key, secret.name.qualified
                ));
                let value = match &secret.from.value {
                    SecretSource::Env(_) => SecretValue::Env(source.clone()),
                    _ => SecretValue::File(source.clone()),
                };
                for site in analysis.sites.sites.iter().filter(|s| s.has_cluster) {
                    state.add_secret(ApplySecret {
                        site: site.name.clone(),
                        namespace: namespace.as_str().into(),
                        name: reference.name.as_str().into(),
                        key: reference.key.as_str().into(),
                        value: value.clone(),
                    });
                }
            }
            SecretSource::Kubernetes { namespace: there, name } => {
                if *there != namespace {
                    state.unbuilt.push(format!(
                        "secret \"{}\": the Secret {there}/{name} is in another namespace than the collector that reads it ({namespace}); pods read Secrets of their own namespace only",
                        secret.name.qualified
                    ));
                }
            }
        }
    }
    if store_needed {
        state.assumptions.push(format!(
            "ExternalSecrets read through a ClusterSecretStore named `{SECRET_STORE}`, which each cluster must have (External Secrets Operator, external-secrets.io/v1)"
        ));
    }
}
