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

mod ebpf;
mod flows;
mod labels;
mod ledger;
mod mig;
mod namespaces;
mod objects;
mod releases;
mod secrets;
mod serves;

use sovereign_analyze::Analysis;
use sovereign_catalog::Catalog;
use sovereign_desired::DesiredState;
use sovereign_model::Spec;

pub use ebpf::OBI_IMAGE;
pub use labels::{DECLARATION_ANNOTATION, DECLARATION_LABEL, FABRIC_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
pub use mig::{CONFIG_MAP as MIG_CONFIG_MAP, GPU_OPERATOR_NAMESPACE};
pub use namespaces::{Module, namespace_name};
pub use releases::POSTGRES_IMAGE;
pub use secrets::SECRET_STORE;
pub use serves::{VLLM_IMAGE, VLLM_TPU_IMAGE};

/// The Kubernetes objects of every site's cluster, with the Helm
/// target's values and collections that its HelmCharts install.
#[must_use]
pub fn emit(spec: &Spec, analysis: &Analysis, catalog: &Catalog) -> DesiredState {
    emit_for(spec, analysis, catalog, DesiredState::default())
}

/// The same for the sites `state` wants (`DesiredState::only`), added to it.
#[must_use]
pub fn emit_for(spec: &Spec, analysis: &Analysis, catalog: &Catalog, mut state: DesiredState) -> DesiredState {
    let context = labels::Context::new(spec, analysis, &state);
    let only = state.only.take();
    let mut helm = sovereign_helm::emit_for(
        spec,
        analysis,
        catalog,
        DesiredState { only: only.clone(), ..DesiredState::default() },
    );
    state.only = only;
    namespaces::emit(spec, analysis, &context, &mut state);
    mig::emit(spec, analysis, &context, &mut state);
    serves::emit(spec, analysis, catalog, &context, &mut state);
    releases::emit(&helm.releases, &helm.state, &context, &mut state);
    secrets::emit(spec, analysis, &context, &mut state);
    ledger::emit(spec, analysis, &context, &mut state);
    flows::emit(spec, analysis, &context, &mut state);
    ebpf::emit(spec, analysis, &context, &mut state);
    let charts: std::collections::BTreeSet<_> =
        helm.releases.iter().map(|r| (&r.chart.name, &r.chart.version, &r.chart.repo)).collect();
    for (name, version, repo) in charts {
        state.assumptions.push(format!(
            "the {name} chart's values are written for its version {version} (from {repo}); a newer chart may rename their keys"
        ));
    }
    helm.state.only = None;
    state.merge(helm.state);
    state
}
