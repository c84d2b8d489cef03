//! `serve` → vLLM: one Deployment per (serve, node) group, pinned to the
//! node placement chose, asking for exactly the slice or GPUs it was given;
//! a Service per serve; a PodDisruptionBudget when it has several replicas.
//!
//! Facts, with their sources:
//! - resources: whole GPUs are `nvidia.com/gpu`; a MIG slice under the
//!   mixed strategy is `nvidia.com/mig-<profile>`, `+` written `.`
//!   (NVIDIA/k8s-device-plugin README, `internal/rm/rm.go`);
//! - GPU pods on K3s set `runtimeClassName: nvidia` (k3s-io/docs advanced.md,
//!   k3s-io/k3s manifests/runtimes.yaml);
//! - vLLM listens on 8000, answers `GET /health` only once the engine has
//!   loaded, and keeps `/health` public with `--api-key`
//!   (vllm-project/vllm entrypoints/openai/cli_args.py, api_server.py,
//!   serve/middleware/authenticate.py); `--gpu-memory-utilization` is set
//!   explicitly because its default changed (vllm/config/cache.py);
//! - PyTorch shares tensors between processes through `/dev/shm`
//!   (vLLM docs, deployment/docker.md): a memory-backed volume;
//! - TPU slices on GKE: node selectors `cloud.google.com/gke-tpu-accelerator`
//!   (`tpu-v4-podslice`, `tpu-v5-lite-podslice`, `tpu-v5p-slice`,
//!   `tpu-v6e-slice`) and `cloud.google.com/gke-tpu-topology`, the
//!   resource `google.com/tpu` (chips per node), a toleration of the
//!   `google.com/tpu` taint, and `cloud.google.com/gke-spot: "true"` on
//!   Spot pools (cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus,
//!   how-to/tpus); a slice of more chips than one host holds needs one pod
//!   per host (a LeaderWorkerSet), not built yet;
//! - the restricted Pod Security Standard: non-root, no privilege
//!   escalation, every capability dropped, `RuntimeDefault` seccomp
//!   (kubernetes.io/docs/concepts/security/pod-security-standards).

use std::collections::BTreeMap;
use std::sync::Arc;

use sovereign_analyze::Analysis;
use sovereign_analyze::capacity::PlacedServe;
use sovereign_analyze::placement::{Devices, Placement, Shape};
use sovereign_catalog::Catalog;
use sovereign_desired::modules::{SERVE_PORT, serve_service};
use sovereign_desired::{DesiredState, ResourceId, Target};
use sovereign_model::{Dtype, KvCacheDtype};

use crate::labels::{Context, Declaration, label_value, object_name, workload_label};
use crate::namespaces::namespace_id;
use crate::namespaces::{Module, namespace_name};
use crate::objects::{
    ClaimSource, Container, ContainerPort, ContainerSecurityContext, DeploymentSpec, DisruptionBudgetSpec, EmptyDir,
    EnvVar, HttpGet, LabelSelector, PodSecurityContext, PodSpec, PodTemplate, Probe, Resources, SeccompProfile,
    ServicePort, ServiceSpec, Spec, TemplateMetadata, Toleration, Volume, VolumeMount,
};

/// The vLLM image, pinned (Docker Hub `vllm/vllm-openai`, tag `v0.12.0`,
/// the release of vllm-project/vllm `releases/v0.12.0`).
pub const VLLM_IMAGE: &str = "docker.io/vllm/vllm-openai:v0.12.0";
/// vLLM's TPU build of the same release (Docker Hub `vllm/vllm-tpu`):
/// the build says that this tag is assumed, not checked.
pub const VLLM_TPU_IMAGE: &str = "docker.io/vllm/vllm-tpu:v0.12.0";
/// Where weights are mounted, read-only.
const MODELS: &str = "/models";
/// A uid with no meaning in the image: the restricted profile wants non-root.
const UID: u64 = 1000;

pub(crate) fn emit(
    spec: &sovereign_model::Spec,
    analysis: &Analysis,
    catalog: &Catalog,
    context: &Context,
    state: &mut DesiredState,
) {
    for plan in &analysis.serves {
        emit_serve(spec, analysis, catalog, plan, context, state);
    }
}

/// The GKE node label of a TPU generation
/// (cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus).
fn gke_accelerator(tpu: &str) -> Option<&'static str> {
    Some(match tpu {
        "tpu-v4" => "tpu-v4-podslice",
        "tpu-v5e" => "tpu-v5-lite-podslice",
        "tpu-v5p" => "tpu-v5p-slice",
        "tpu-v6e" => "tpu-v6e-slice",
        _ => return None,
    })
}

fn emit_serve(
    spec: &sovereign_model::Spec,
    analysis: &Analysis,
    catalog: &Catalog,
    plan: &PlacedServe,
    context: &Context,
    state: &mut DesiredState,
) {
    // Nothing placed, or nothing on this build's sites.
    if !plan.placements.iter().any(|p| context.wants(p.site.index())) {
        return;
    }
    let serve = &spec.serves[plan.serve];
    let model = &spec.models[serve.model.value];
    let name = serve.name.qualified.clone();
    let unbuilt = |state: &mut DesiredState, why: String| state.unbuilt.push(format!("serve \"{name}\": {why}"));
    let Some(source) = &model.source else {
        unbuilt(
            state,
            format!(
                "model \"{}\" has no `source`: say where its weights are (source=\"pvc://CLAIM/PATH\")",
                model.name.qualified
            ),
        );
        return;
    };
    let claim = source.value.authority().to_owned();
    let path = source.value.path().trim_start_matches('/');
    let model_dir = format!("{MODELS}/{claim}/{path}");
    let declaration = Declaration { kind: "serve", name: name.clone() };
    let namespace = namespace_name(&context.fabric, Module::Kinetic);
    let serve_label = workload_label(&name);
    // Replicas by (site, node), in placement order.
    let mut groups: BTreeMap<(usize, Arc<str>), Vec<&Placement>> = BTreeMap::new();
    for p in &plan.placements {
        groups.entry((p.site.index(), p.node.clone())).or_default().push(p);
    }
    let mut sites: Vec<usize> = Vec::new();
    for ((site_index, node), placements) in &groups {
        let site = &analysis.sites.sites[*site_index];
        if !context.wants(site.id.index()) {
            continue;
        }
        if !sites.contains(site_index) {
            sites.push(*site_index);
        }
        let first = placements[0];
        let memory = plan.memory_on(&first.accelerator);
        // What each replica asks for, and whether it needs the node's MIG layout first.
        let (resource, count, mig_label) = match &first.devices {
            Devices::Mig { profile, .. } => (format!("nvidia.com/mig-{}", profile.replace('+', ".")), 1, true),
            Devices::Gpus { indices } => ("nvidia.com/gpu".to_owned(), indices.len(), false),
            Devices::Tpu { chips, .. } => ("google.com/tpu".to_owned(), *chips as usize, false),
        };
        // A TPU replica runs on a GKE TPU node pool: its selectors.
        let mut node_selector = BTreeMap::from([("kubernetes.io/hostname", &**node)]);
        let mut tolerations = Vec::new();
        let tpu = plan.shape == Shape::TpuSlice;
        if tpu {
            let pool = spec.sites[site.id].pools.iter().find(|p| p.item == first.node_item);
            let chips_per_host = catalog.tpus.get(&*first.accelerator).map_or(0, |t| t.chips_per_host as usize);
            let (Some(pool), Some(accelerator)) = (pool, gke_accelerator(&first.accelerator)) else {
                unbuilt(state, format!("TPU `{}` has no GKE node label sovereign knows", first.accelerator));
                continue;
            };
            if count > chips_per_host {
                unbuilt(
                    state,
                    format!("a {count}-chip TPU slice spans several hosts (one pod per host): not yet supported"),
                );
                continue;
            }
            node_selector = BTreeMap::from([("cloud.google.com/gke-tpu-accelerator", accelerator)]);
            if let Some(topology) = &pool.topology {
                node_selector.insert("cloud.google.com/gke-tpu-topology", &topology.value);
            }
            if pool.spot.value {
                node_selector.insert("cloud.google.com/gke-spot", "true");
            }
            tolerations.push(Toleration { key: "google.com/tpu", operator: "Exists", effect: "NoSchedule" });
            if !state.assumptions.iter().any(|a| a.contains(VLLM_TPU_IMAGE)) {
                state.assumptions.push(format!(
                    "TPU serves run {VLLM_TPU_IMAGE}, vLLM's TPU build of the release the GPU serves run; check the tag exists in your registry mirror"
                ));
            }
        }
        let mut args = vec![
            model_dir.clone(),
            "--served-model-name".into(),
            name.to_string(),
            "--port".into(),
            SERVE_PORT.to_string(),
            "--gpu-memory-utilization".into(),
            serve.gpu_memory_utilization.value.to_string(),
        ];
        if let Some(memory) = memory {
            args.extend(["--max-model-len".into(), memory.max_len.to_string()]);
        }
        if count > 1 {
            args.extend(["--tensor-parallel-size".into(), count.to_string()]);
        }
        match model.dtype.value {
            Dtype::Bf16 => args.extend(["--dtype".into(), "bfloat16".into()]),
            Dtype::Fp16 => args.extend(["--dtype".into(), "float16".into()]),
            Dtype::Fp32 => args.extend(["--dtype".into(), "float32".into()]),
            Dtype::Fp8 => args.extend(["--quantization".into(), "fp8".into()]),
            // int8/int4 checkpoints carry their quantization config; vLLM reads it.
            Dtype::Int8 | Dtype::Int4 => {}
        }
        if serve.kv_cache_dtype.value == KvCacheDtype::Fp8 {
            args.extend(["--kv-cache-dtype".into(), "fp8".into()]);
        }
        // vLLM answers /health once the weights are loaded: give the start
        // 5 minutes plus a minute per 10 GB of weights on each device.
        let weights_gb = memory.map_or(0.0, |m| m.weights / 1e9);
        let startup_seconds = 300 + (weights_gb / 10.0).ceil() as u64 * 60;
        let deployment_name = object_name(&format!("{name}-{node}"));
        let mut selector = BTreeMap::new();
        selector.insert("sovereign.dev/serve", serve_label.clone());
        selector.insert("sovereign.dev/node", label_value(node));
        let mut pod_labels = selector.clone();
        pod_labels.insert("app.kubernetes.io/name", "vllm".to_owned());
        let weights_mount = format!("{MODELS}/{claim}");
        let container = Container {
            name: "vllm",
            image: if tpu { VLLM_TPU_IMAGE } else { VLLM_IMAGE },
            command: vec!["vllm", "serve"],
            args,
            ports: vec![ContainerPort { name: "http", container_port: SERVE_PORT, protocol: "TCP" }],
            env: vec![
                EnvVar { name: "HOME", value: "/cache" },
                EnvVar { name: "HF_HOME", value: "/cache/huggingface" },
                // Never reach a hub: the weights are local.
                EnvVar { name: "HF_HUB_OFFLINE", value: "1" },
            ],
            resources: Resources { limits: BTreeMap::from([(resource.as_str(), count)]) },
            security_context: ContainerSecurityContext::restricted(),
            volume_mounts: vec![
                VolumeMount { name: "weights", mount_path: &weights_mount, read_only: true },
                VolumeMount { name: "cache", mount_path: "/cache", read_only: false },
                VolumeMount { name: "shm", mount_path: "/dev/shm", read_only: false },
            ],
            startup_probe: Some(probe(10, startup_seconds.div_ceil(10))),
            readiness_probe: Some(probe(10, 3)),
            liveness_probe: Some(probe(30, 3)),
        };
        let pod = PodSpec {
            runtime_class_name: (!tpu).then_some("nvidia"),
            node_selector,
            tolerations,
            automount_service_account_token: false,
            security_context: PodSecurityContext {
                run_as_non_root: true,
                run_as_user: UID,
                run_as_group: UID,
                fs_group: UID,
                seccomp_profile: SeccompProfile { kind: "RuntimeDefault" },
            },
            containers: vec![container],
            volumes: vec![
                Volume {
                    name: "weights",
                    persistent_volume_claim: Some(ClaimSource { claim_name: &claim, read_only: true }),
                    empty_dir: None,
                },
                Volume { name: "cache", persistent_volume_claim: None, empty_dir: Some(EmptyDir { medium: None }) },
                Volume {
                    name: "shm",
                    persistent_volume_claim: None,
                    empty_dir: Some(EmptyDir { medium: Some("Memory") }),
                },
            ],
        };
        let metadata = context.metadata(&deployment_name, Some(&namespace), Some(&declaration));
        let spec = DeploymentSpec {
            replicas: placements.len(),
            selector: LabelSelector { match_labels: &selector },
            template: PodTemplate { metadata: TemplateMetadata { labels: &pod_labels }, spec: pod },
        };
        let mut deployment =
            context.object(&site.name, "apps/v1", "Deployment", &metadata, Spec { spec }, Some(&declaration));
        deployment.depends_on.insert(namespace_id(&site.name, &namespace));
        if mig_label {
            // The node's MIG layout must be applied before a slice can be asked for.
            deployment.depends_on.insert(ResourceId {
                target: Target::K3s,
                site: site.name.clone(),
                kind: "Node".into(),
                namespace: None,
                name: node.clone(),
            });
        }
        state.add(deployment);
    }
    let service_name = serve_service(&name);
    let selector = BTreeMap::from([("sovereign.dev/serve", serve_label)]);
    let metadata = context.metadata(&service_name, Some(&namespace), Some(&declaration));
    for site_index in sites {
        let site = &analysis.sites.sites[site_index];
        if !context.wants(site.id.index()) {
            continue;
        }
        let spec = ServiceSpec {
            selector: &selector,
            ports: vec![ServicePort { name: "http", port: SERVE_PORT, target_port: "http", protocol: "TCP" }],
        };
        let mut service = context.object(&site.name, "v1", "Service", &metadata, Spec { spec }, Some(&declaration));
        service.depends_on.insert(namespace_id(&site.name, &namespace));
        state.add(service);
        let here = plan.placements.iter().filter(|p| p.site.index() == site_index).count();
        if here > 1 {
            let spec = DisruptionBudgetSpec { max_unavailable: 1, selector: LabelSelector { match_labels: &selector } };
            let mut budget = context.object(
                &site.name,
                "policy/v1",
                "PodDisruptionBudget",
                &metadata,
                Spec { spec },
                Some(&declaration),
            );
            budget.depends_on.insert(namespace_id(&site.name, &namespace));
            state.add(budget);
        }
    }
}

fn probe(period: u64, failures: u64) -> Probe<'static> {
    Probe { http_get: HttpGet { path: "/health", port: "http" }, period_seconds: period, failure_threshold: failures }
}
