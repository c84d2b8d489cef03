//! `observe … ebpf #true` → the OpenTelemetry eBPF Instrumentation agent
//! (OBI, open-telemetry/opentelemetry-ebpf-instrumentation; image
//! `docker.io/otel/ebpf-instrument`, pinned to the v0.9.0 release) on
//! every node of every cluster: traces and RED metrics of the vLLM serves
//! from the kernel, with no change to their images.
//!
//! Why it needs privileges (opentelemetry.io/docs/zero-code/obi, "Requirements"
//! and the Kubernetes setup pages): it loads eBPF programs into the kernel
//! (`CAP_BPF`, `CAP_PERFMON`, often `CAP_SYS_ADMIN`), reads other
//! processes' executables and memory maps (`CAP_SYS_PTRACE`, the host's
//! PID namespace) and the host's cgroups. That is what the restricted (and
//! baseline) Pod Security Standards forbid, so it runs alone in its own
//! namespace, `<fabric>-ebpf`, the one that enforces `privileged`, and
//! says why in an annotation. It reads pod metadata from the API server
//! (a ClusterRole of get/list/watch) and sends OTLP to the collector.

use std::collections::BTreeMap;

use serde_json::json;
use sovereign_analyze::Analysis;
use sovereign_desired::DesiredState;
use sovereign_desired::modules::{Module, SERVE_PORT, namespace_name};
use sovereign_model::Spec;

use crate::labels::{Context, Declaration};
use crate::namespaces::emit_namespace;
use crate::namespaces::namespace_id;
use crate::objects::Spec as Rest;

pub const OBI_IMAGE: &str = "docker.io/otel/ebpf-instrument:v0.9.0";

/// The Pod Security Admission labels of the agent's namespace.
const PRIVILEGED: [(&str, &str); 3] = [
    ("pod-security.kubernetes.io/enforce", "privileged"),
    ("pod-security.kubernetes.io/audit", "privileged"),
    ("pod-security.kubernetes.io/warn", "privileged"),
];

const WHY: &str = "the eBPF agent loads kernel programs and reads every process on its node (privileged, host PID namespace, host cgroups): the one sovereign workload the restricted profile cannot hold, so it runs alone here";

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    let mut asking = spec.observes.values().filter(|o| o.ebpf.value);
    let Some(observe) = asking.next() else { return };
    // One agent per node: a second would instrument every process twice.
    let agents = analysis.sites.sites.iter().any(|s| s.has_cluster);
    for other in asking.filter(|_| agents) {
        state.assumptions.push(format!(
            "observe \"{}\" also asks for `ebpf`: one eBPF agent runs per node, sending to observe \"{}\"'s collector",
            other.name.qualified, observe.name.qualified
        ));
    }
    let namespace = namespace_name(&context.fabric, Module::Ebpf);
    let collector_ns = namespace_name(&context.fabric, Module::Autopilot);
    let release = sovereign_helm::collector_release(&observe.name.qualified);
    // The chart's Service: `<release>-opentelemetry-collector` (its fullname helper).
    let collector =
        format!("http://{release}-opentelemetry-collector.{collector_ns}.svc:{}", sovereign_helm::OTLP_HTTP_PORT);
    let declaration = Declaration { kind: "observe", name: observe.name.qualified.clone() };
    let role = sovereign_helm::label(&format!("sovereign-{}-ebpf", context.fabric));
    for site in analysis.sites.sites.iter().filter(|s| s.has_cluster) {
        if !context.wants(site.id.index()) {
            continue;
        }
        let site_name = &site.name;
        emit_namespace(site_name, &namespace, &PRIVILEGED, Some(WHY), context, state);
        let ns_id = namespace_id(site_name, &namespace);
        let account = context.metadata("ebpf-instrument", Some(&namespace), Some(&declaration));
        let mut service_account =
            context.object(site_name, "v1", "ServiceAccount", &account, serde_json::Map::new(), Some(&declaration));
        service_account.depends_on.insert(ns_id.clone());
        let account_id = service_account.id.clone();
        state.add(service_account);
        let metadata = context.metadata(&role, None, Some(&declaration));
        let rules = json!({ "rules": [
            { "apiGroups": [""], "resources": ["pods", "services", "nodes"], "verbs": ["get", "list", "watch"] },
            { "apiGroups": ["apps"], "resources": ["replicasets", "deployments", "daemonsets", "statefulsets"], "verbs": ["get", "list", "watch"] },
        ]});
        let cluster_role = context.object(
            site_name,
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            &metadata,
            rules,
            Some(&declaration),
        );
        let role_id = cluster_role.id.clone();
        state.add(cluster_role);
        let binding = json!({
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
            "subjects": [{ "kind": "ServiceAccount", "name": "ebpf-instrument", "namespace": namespace }],
        });
        let mut binding = context.object(
            site_name,
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            &metadata,
            binding,
            Some(&declaration),
        );
        binding.depends_on.insert(role_id);
        binding.depends_on.insert(account_id.clone());
        state.add(binding);
        let selector = BTreeMap::from([("app.kubernetes.io/name", "ebpf-instrument")]);
        let spec = json!({
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": { "labels": selector },
                "spec": {
                    "serviceAccountName": "ebpf-instrument",
                    "hostPID": true,
                    // Every node, tainted GPU and TPU nodes above all: that is where vLLM runs.
                    "tolerations": [{ "operator": "Exists" }],
                    "containers": [{
                        "name": "ebpf-instrument",
                        "image": OBI_IMAGE,
                        "securityContext": { "privileged": true, "runAsUser": 0 },
                        "env": [
                            // The vLLM serves' port: what the agent instruments.
                            { "name": "OTEL_EBPF_OPEN_PORT", "value": SERVE_PORT.to_string() },
                            { "name": "OTEL_EBPF_KUBE_METADATA_ENABLE", "value": "true" },
                            { "name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": collector },
                            { "name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf" },
                        ],
                        "volumeMounts": [{ "name": "cgroup", "mountPath": "/sys/fs/cgroup", "readOnly": true }],
                    }],
                    "volumes": [{ "name": "cgroup", "hostPath": { "path": "/sys/fs/cgroup" } }],
                },
            },
        });
        let metadata = context.metadata("ebpf-instrument", Some(&namespace), Some(&declaration));
        let mut daemon_set =
            context.object(site_name, "apps/v1", "DaemonSet", &metadata, Rest { spec }, Some(&declaration));
        daemon_set.depends_on.insert(ns_id.clone());
        daemon_set.depends_on.insert(account_id);
        state.add(daemon_set);
        // Its traffic: OTLP to the collector, pod metadata from the API server.
        let collector_pods = json!({
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": collector_ns } },
            "podSelector": { "matchLabels": { "app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": release } },
        });
        let agent_pods = json!({
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } },
            "podSelector": { "matchLabels": selector },
        });
        let port = json!([{ "protocol": "TCP", "port": sovereign_helm::OTLP_HTTP_PORT }]);
        let policies = [
            (
                &namespace,
                "egress-ebpf-instrument",
                json!({ "podSelector": { "matchLabels": selector }, "policyTypes": ["Egress"], "egress": [
                    { "to": [collector_pods], "ports": port },
                    { "to": crate::flows::any_address(), "ports": [{ "protocol": "TCP", "port": 443 }, { "protocol": "TCP", "port": 6443 }] },
                ]}),
                "OTLP to the collector; pod metadata from the API server, whose address a NetworkPolicy cannot name: 443 and 6443 are open to any address, for the agent's pods only",
            ),
            (
                &collector_ns,
                "ingress-ebpf-instrument",
                json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": release } }, "policyTypes": ["Ingress"], "ingress": [
                    { "from": [agent_pods], "ports": port },
                ]}),
                "OTLP from the eBPF agent, which stays on its cluster",
            ),
        ];
        for (policy_namespace, name, rest, why) in policies {
            let mut metadata = context.metadata(name, Some(policy_namespace), None);
            metadata.annotations.insert("sovereign.dev/why", why.to_owned());
            let mut policy = context.object(
                site_name,
                "networking.k8s.io/v1",
                "NetworkPolicy",
                &metadata,
                Rest { spec: rest },
                None,
            );
            policy.depends_on.insert(namespace_id(site_name, policy_namespace));
            state.add(policy);
        }
    }
}
