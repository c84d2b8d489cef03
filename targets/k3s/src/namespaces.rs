//! One namespace per module on each cluster that runs something of it,
//! each enforcing the restricted Pod Security Standard and denying all
//! traffic but DNS until the flows the sovereignty analysis proved are
//! allowed by name.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use sovereign_analyze::Analysis;
use sovereign_desired::{DesiredState, ResourceId, Target};
use sovereign_model::{Decl, Spec};

use crate::labels::Context;
pub use sovereign_desired::modules::{Module, namespace_name};

/// The Pod Security Admission labels of the restricted profile
/// (kubernetes.io/docs/concepts/security/pod-security-admission).
const PSA: [(&str, &str); 3] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/audit", "restricted"),
    ("pod-security.kubernetes.io/warn", "restricted"),
];

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    for site in analysis.sites.sites.iter().filter(|s| s.has_cluster && context.wants(s.id.index())) {
        // The modules with work on the site, from its workloads only (asking
        // each site about every workload was quadratic in the fabric).
        let mut here: BTreeSet<Module> = analysis
            .workload_sites
            .on(site.id)
            .iter()
            .filter_map(|&item| match spec.decl(item)? {
                Decl::Serve(_) | Decl::VectorStore(_) => Some(Module::Kinetic),
                Decl::Eval(_) => Some(Module::Alchemist),
                Decl::Temporal(_) => Some(Module::Metabolism),
                _ => None,
            })
            .collect();
        // A collector runs on every cluster.
        if !spec.observes.is_empty() {
            here.insert(Module::Autopilot);
        }
        for module in here {
            emit_namespace(&site.name, &namespace_name(&context.fabric, module), &PSA, None, context, state);
        }
    }
}

/// Nothing in or out of a namespace until a flow is allowed by name (the
/// same body in every namespace: made once).
static DENY: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| json!({ "spec": { "podSelector": {}, "policyTypes": ["Ingress", "Egress"] } }));

/// DNS for every pod. CoreDNS on K3s: pods labelled `k8s-app: kube-dns` in
/// kube-system (k3s-io/k3s manifests/coredns.yaml);
/// `kubernetes.io/metadata.name` is set on every namespace by the API server.
static DNS: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
    json!({ "spec": {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{
            "to": [{
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
                "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
            }],
            "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
        }],
    }})
});

/// A namespace with Pod Security Admission labels `psa` (the restricted
/// profile but for the eBPF agent's), and why when it is not restricted;
/// its default-deny and DNS policies.
pub(crate) fn emit_namespace(
    site: &Arc<str>,
    name: &str,
    psa: &[(&'static str, &str)],
    why: Option<&str>,
    context: &Context,
    state: &mut DesiredState,
) {
    let mut metadata = context.metadata(name, None, None);
    for (key, value) in psa {
        metadata.labels.insert(key, (*value).to_owned());
    }
    if let Some(why) = why {
        metadata.annotations.insert("sovereign.dev/why", why.to_owned());
    }
    let namespace = context.object(site, "v1", "Namespace", &metadata, serde_json::Map::new(), None);
    let namespace_id = namespace.id.clone();
    state.add(namespace);
    for (policy, rest) in [("default-deny", &*DENY), ("allow-dns", &*DNS)] {
        let metadata = context.metadata(policy, Some(name), None);
        let mut resource = context.object(site, "networking.k8s.io/v1", "NetworkPolicy", &metadata, rest, None);
        resource.depends_on.insert(namespace_id.clone());
        state.add(resource);
    }
}

/// The id of a namespace sovereign creates: what everything in it waits for.
pub(crate) fn namespace_id(site: &Arc<str>, namespace: &str) -> ResourceId {
    ResourceId {
        target: Target::K3s,
        site: site.clone(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.into(),
    }
}
