//! The K3s target's emitter: from the typed model and the analysis to the
//! Kubernetes objects of each site's cluster.
//!
//! So far: the namespaces of the modules that run on each cluster, their
//! default-deny and DNS NetworkPolicies, the MIG layouts the placement
//! decided (a mig-parted config and the node label that selects it), and
//! the vLLM serves (Deployments per node, Services, disruption budgets).
//! Qdrant, Temporal, the collector, TPU serving and the allow rules of the
//! proved data flows are the rest of issue 10; what is not built yet is
//! listed in `DesiredState::unbuilt`.
//!
//! Architecture Invariant: pure and deterministic: no IO, clock,
//! randomness or environment; the same fabric gives the same resources.
//! Every object carries the inventory labels (`labels.rs`).

mod labels;
mod mig;
mod namespaces;
mod objects;
mod serves;

use sovereign_analyze::Analysis;
use sovereign_desired::DesiredState;
use sovereign_ir::Fabric;
use sovereign_model::Spec;

pub use labels::{DECLARATION_ANNOTATION, DECLARATION_LABEL, FABRIC_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
pub use mig::{CONFIG_MAP as MIG_CONFIG_MAP, GPU_OPERATOR_NAMESPACE};
pub use namespaces::{Module, namespace_name};
pub use serves::VLLM_IMAGE;

/// The Kubernetes objects of every site's cluster.
#[must_use]
pub fn emit(spec: &Spec, fabric: &Fabric, analysis: &Analysis) -> DesiredState {
    let mut state = DesiredState::default();
    let context = labels::Context::new(spec);
    namespaces::emit(spec, analysis, &context, &mut state);
    mig::emit(fabric, analysis, &context, &mut state);
    serves::emit(spec, analysis, &context, &mut state);
    state
}
