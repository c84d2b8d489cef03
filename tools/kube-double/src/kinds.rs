//! The kinds the double serves and its discovery documents.
//!
//! Built-in kinds are those of Kubernetes 1.34 that sovereign's objects use
//! or touch, plus the K3s helm controller's HelmChart CRDs that every K3s
//! cluster has. Plural names, scope and subresources are those of
//! `kubectl api-resources` on Kubernetes 1.34 (the API reference,
//! https://kubernetes.io/docs/reference/kubernetes-api/) and of K3s'
//! `helm.cattle.io_helmcharts.yaml` CRD. Custom resources become kinds when
//! their CustomResourceDefinition is created.

use serde_json::{Value, json};

/// A kind the double serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the object ignore `status`.
    pub status: bool,
    /// For a custom resource: its `openAPIV3Schema`.
    pub schema: Option<Value>,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

const BUILT_IN: &[(&str, &str, &str, &str, bool, bool)] = &[
    // group, version, kind, plural, namespaced, status subresource
    ("", "v1", "Namespace", "namespaces", false, true),
    ("", "v1", "Node", "nodes", false, true),
    ("", "v1", "ConfigMap", "configmaps", true, false),
    ("", "v1", "Secret", "secrets", true, false),
    ("", "v1", "Service", "services", true, true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, false),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true),
    ("", "v1", "Pod", "pods", true, true),
    ("", "v1", "Endpoints", "endpoints", true, false),
    ("", "v1", "Event", "events", true, false),
    ("apps", "v1", "Deployment", "deployments", true, true),
    ("apps", "v1", "StatefulSet", "statefulsets", true, true),
    ("apps", "v1", "DaemonSet", "daemonsets", true, true),
    ("apps", "v1", "ReplicaSet", "replicasets", true, true),
    ("batch", "v1", "Job", "jobs", true, true),
    ("batch", "v1", "CronJob", "cronjobs", true, true),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true, true),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false),
    ("coordination.k8s.io", "v1", "Lease", "leases", true, false),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false),
    ("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", false, false),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, false),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, false),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, true),
];

pub fn built_in() -> Vec<Kind> {
    BUILT_IN
        .iter()
        .map(|&(group, version, kind, plural, namespaced, status)| Kind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            status,
            schema: None,
        })
        .collect()
}

/// The kinds a CustomResourceDefinition declares (one per served version),
/// or why it declares none.
pub fn of_crd(crd: &Value) -> Result<Vec<Kind>, String> {
    let spec = crd.get("spec").ok_or("a CustomResourceDefinition needs a spec")?;
    let text = |value: Option<&Value>, what: &str| {
        value.and_then(Value::as_str).map(str::to_owned).ok_or(format!("spec.{what} is required"))
    };
    let group = text(spec.get("group"), "group")?;
    let kind = text(spec.pointer("/names/kind"), "names.kind")?;
    let plural = text(spec.pointer("/names/plural"), "names.plural")?;
    let namespaced = match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope must be Namespaced or Cluster".into()),
    };
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if name != format!("{plural}.{group}") {
        return Err(format!("metadata.name must be spec.names.plural+\".\"+spec.group ({plural}.{group})"));
    }
    let versions = spec.get("versions").and_then(Value::as_array).ok_or("spec.versions is required")?;
    Ok(versions
        .iter()
        .filter(|version| version.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|version| {
            Some(Kind {
                group: group.clone(),
                version: version.get("name")?.as_str()?.to_owned(),
                kind: kind.clone(),
                plural: plural.clone(),
                namespaced,
                status: version.pointer("/subresources/status").is_some(),
                schema: version.pointer("/schema/openAPIV3Schema").cloned(),
            })
        })
        .collect())
}

/// `GET /api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

/// `GET /apis`: every group but the core one, each with its versions.
pub fn group_list(kinds: &[std::sync::Arc<Kind>]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for kind in kinds.iter().filter(|kind| !kind.group.is_empty()) {
        match groups.iter_mut().find(|(group, _)| *group == kind.group) {
            Some((_, versions)) if !versions.contains(&kind.version) => versions.push(kind.version.clone()),
            Some(_) => {}
            None => groups.push((kind.group.clone(), vec![kind.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| json!({"groupVersion": format!("{group}/{version}"), "version": version}))
                .collect();
            json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `GET /apis/GROUP/VERSION`, or `None` for a version the
/// double does not serve.
pub fn resource_list(kinds: &[std::sync::Arc<Kind>], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for kind in kinds.iter().filter(|kind| kind.group == group && kind.version == version) {
        resources.push(json!({
            "name": kind.plural, "singularName": kind.kind.to_lowercase(), "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        }));
        if kind.status {
            resources.push(json!({
                "name": format!("{}/status", kind.plural), "singularName": "", "namespaced": kind.namespaced,
                "kind": kind.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}
