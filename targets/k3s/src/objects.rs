//! The shapes of the Kubernetes objects sovereign writes most, as structs
//! serialized straight to JSON: building a tree of `serde_json` maps per
//! object cost more than everything else in a build of 10,000 serves.
//!
//! Field names and meanings are the Kubernetes API's (k8s.io/api
//! `core/v1/types.go`, `apps/v1/types.go`, `policy/v1/types.go`); only the
//! fields sovereign sets are here. Fields serialize in API order
//! (`apiVersion`, `kind`, `metadata`, `spec`), the order `kubectl` prints.

use std::collections::BTreeMap;

use serde::Serialize;

/// An object: its type, metadata and the rest of its fields (`spec`, `data`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Object<'a, R: Serialize> {
    pub(crate) api_version: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) metadata: &'a Metadata,
    #[serde(flatten)]
    pub(crate) rest: R,
}

/// `metadata` of an object (ObjectMeta).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Metadata {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) labels: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<&'static str, String>,
}

/// `metadata` of a pod template: labels only.
#[derive(Serialize)]
pub(crate) struct TemplateMetadata<'a> {
    pub(crate) labels: &'a BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LabelSelector<'a> {
    pub(crate) match_labels: &'a BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
pub(crate) struct Spec<S: Serialize> {
    pub(crate) spec: S,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentSpec<'a> {
    pub(crate) replicas: usize,
    pub(crate) selector: LabelSelector<'a>,
    pub(crate) template: PodTemplate<'a>,
}

#[derive(Serialize)]
pub(crate) struct PodTemplate<'a> {
    pub(crate) metadata: TemplateMetadata<'a>,
    pub(crate) spec: PodSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) runtime_class_name: Option<&'a str>,
    pub(crate) node_selector: BTreeMap<&'static str, &'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tolerations: Vec<Toleration<'a>>,
    pub(crate) automount_service_account_token: bool,
    pub(crate) security_context: PodSecurityContext,
    pub(crate) containers: Vec<Container<'a>>,
    pub(crate) volumes: Vec<Volume<'a>>,
}

#[derive(Serialize)]
pub(crate) struct Toleration<'a> {
    pub(crate) key: &'a str,
    pub(crate) operator: &'a str,
    pub(crate) effect: &'a str,
}

/// The restricted Pod Security Standard at the pod level: non-root, a
/// fixed uid, `RuntimeDefault` seccomp.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodSecurityContext {
    pub(crate) run_as_non_root: bool,
    pub(crate) run_as_user: u64,
    pub(crate) run_as_group: u64,
    pub(crate) fs_group: u64,
    pub(crate) seccomp_profile: SeccompProfile,
}

#[derive(Serialize)]
pub(crate) struct SeccompProfile {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
}

/// The restricted profile at the container level.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerSecurityContext {
    pub(crate) allow_privilege_escalation: bool,
    pub(crate) capabilities: Capabilities,
    pub(crate) run_as_non_root: bool,
    pub(crate) seccomp_profile: SeccompProfile,
}

impl ContainerSecurityContext {
    pub(crate) fn restricted() -> ContainerSecurityContext {
        ContainerSecurityContext {
            allow_privilege_escalation: false,
            capabilities: Capabilities { drop: ["ALL"] },
            run_as_non_root: true,
            seccomp_profile: SeccompProfile { kind: "RuntimeDefault" },
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Capabilities {
    pub(crate) drop: [&'static str; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Container<'a> {
    pub(crate) name: &'a str,
    pub(crate) image: &'a str,
    pub(crate) command: Vec<&'a str>,
    pub(crate) args: Vec<String>,
    pub(crate) ports: Vec<ContainerPort<'a>>,
    pub(crate) env: Vec<EnvVar<'a>>,
    pub(crate) resources: Resources<'a>,
    pub(crate) security_context: ContainerSecurityContext,
    pub(crate) volume_mounts: Vec<VolumeMount<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) startup_probe: Option<Probe<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) readiness_probe: Option<Probe<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) liveness_probe: Option<Probe<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerPort<'a> {
    pub(crate) name: &'a str,
    pub(crate) container_port: u16,
    pub(crate) protocol: &'a str,
}

#[derive(Serialize)]
pub(crate) struct EnvVar<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
}

#[derive(Serialize)]
pub(crate) struct Resources<'a> {
    pub(crate) limits: BTreeMap<&'a str, usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeMount<'a> {
    pub(crate) name: &'a str,
    pub(crate) mount_path: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Volume<'a> {
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) persistent_volume_claim: Option<ClaimSource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) empty_dir: Option<EmptyDir>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClaimSource<'a> {
    pub(crate) claim_name: &'a str,
    pub(crate) read_only: bool,
}

#[derive(Serialize)]
pub(crate) struct EmptyDir {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) medium: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Probe<'a> {
    pub(crate) http_get: HttpGet<'a>,
    pub(crate) period_seconds: u64,
    pub(crate) failure_threshold: u64,
}

#[derive(Serialize)]
pub(crate) struct HttpGet<'a> {
    pub(crate) path: &'a str,
    pub(crate) port: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceSpec<'a> {
    pub(crate) selector: &'a BTreeMap<&'static str, String>,
    pub(crate) ports: Vec<ServicePort<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServicePort<'a> {
    pub(crate) name: &'a str,
    pub(crate) port: u16,
    pub(crate) target_port: &'a str,
    pub(crate) protocol: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DisruptionBudgetSpec<'a> {
    pub(crate) max_unavailable: u32,
    pub(crate) selector: LabelSelector<'a>,
}
