//! The Helm target: values for the charts sovereign installs, pinned in
//! the stdlib's chart catalog (`stdlib/catalog/charts.kdl`), and the
//! requests the vector store's driver makes once its chart is up.
//!
//! - `vectorstore` → the Qdrant chart (`qdrant.rs`), and its collections
//!   as `PUT /collections/{name}` bodies (target `qdrant`);
//! - `temporal` → the Temporal chart 1.x with its SQL datastores
//!   (`temporal.rs`); the PostgreSQL it needs is a K3s object;
//! - `observe` → the OpenTelemetry Collector chart on every cluster
//!   (`collector.rs`).
//!
//! A [`Release`] is what the K3s target wraps in a HelmChart object; the
//! values are also resources of their own (target `helm`), written as
//! values files for users who install charts another way (Flux, Argo CD).
//!
//! Architecture Invariant: pure and deterministic, like every emitter.

mod collector;
mod qdrant;
mod temporal;

use std::sync::Arc;

use serde_json::{Value, json};
use sovereign_analyze::Analysis;
use sovereign_catalog::{Catalog, Chart};
use sovereign_desired::modules::Module;
use sovereign_desired::{DesiredState, Resource, ResourceId, Target};
use sovereign_ir::values::SecretSource;
use sovereign_model::{Id, Secret, Spec};

pub use collector::{OTLP_GRPC_PORT, OTLP_HTTP_PORT};
pub use qdrant::{API_KEY_KEY, QDRANT_HTTP_PORT, api_key_secret, qdrant_service};
pub use temporal::{POSTGRES_PORT, TEMPORAL_GRPC_PORT, TEMPORAL_HTTP_PORT, frontend_service, postgres_name};

/// Where K3s' helm controller expects HelmChart objects
/// (docs.k3s.io/add-ons/helm: "conventionally in kube-system").
pub const HELM_CHART_NAMESPACE: &str = "kube-system";

/// One chart installed on one site's cluster.
#[derive(Clone, Debug)]
pub struct Release {
    pub site: Arc<str>,
    pub chart: Chart,
    /// The release (and HelmChart) name, an RFC 1123 label.
    pub name: String,
    /// Where the chart's objects go (`targetNamespace`).
    pub namespace: String,
    pub module: Module,
    /// The declaration it comes from: kind and name (`vectorstore`, `kb`).
    pub declaration: (&'static str, Arc<str>),
    pub values: Value,
    /// Objects the release needs first (the PostgreSQL of a Temporal).
    pub after: Vec<ResourceId>,
    /// A database the chart no longer ships, which the K3s target runs.
    pub database: Option<Database>,
}

/// A PostgreSQL for a release: its name (StatefulSet, Service and the
/// password Secret) and its volume's size in bytes.
#[derive(Clone, Debug)]
pub struct Database {
    pub name: String,
    pub size: u64,
}

impl Release {
    /// The id of the HelmChart object that installs it.
    #[must_use]
    pub fn helm_chart_id(&self) -> ResourceId {
        helm_chart_id(&self.site, &self.name)
    }

    /// The id of its values, a resource of the Helm target.
    #[must_use]
    pub fn values_id(&self) -> ResourceId {
        ResourceId {
            target: Target::Helm,
            site: self.site.clone(),
            kind: format!("values/{}", self.chart.name).into(),
            namespace: Some(self.namespace.as_str().into()),
            name: self.name.as_str().into(),
        }
    }

    fn values_resource(&self) -> Resource {
        let declaration = format!("{} \"{}\"", self.declaration.0, self.declaration.1);
        Resource::new(self.values_id(), Some(declaration.into()), &self.values)
    }
}

/// What the Helm target builds.
#[derive(Debug, Default)]
pub struct Emitted {
    pub releases: Vec<Release>,
    /// The values (target `helm`) and the vector stores' collections
    /// (target `qdrant`), with what could not be built and what apply must create.
    pub state: DesiredState,
    /// The sites `state` wants, by site index.
    wanted: sovereign_analyze::view::SiteMask,
}

impl Emitted {
    /// Whether this build wants the site with this index.
    fn wants(&self, site: usize) -> bool {
        self.wanted.has(site)
    }
}

/// The releases of every declaration that installs a chart.
#[must_use]
pub fn emit(spec: &Spec, analysis: &Analysis, catalog: &Catalog) -> Emitted {
    emit_for(spec, analysis, catalog, DesiredState::default())
}

/// The releases of the sites `state` wants (`DesiredState::only`), with
/// their values and collections added to it.
#[must_use]
pub fn emit_for(spec: &Spec, analysis: &Analysis, catalog: &Catalog, state: DesiredState) -> Emitted {
    let fabric = spec.fabric.name.as_ref().map_or_else(|| Arc::from("fabric"), |n| n.qualified.clone());
    let wanted = analysis.sites.wanted(state.only.as_ref());
    let mut emitted = Emitted { releases: Vec::new(), state, wanted };
    let chart = |name: &str, emitted: &mut Emitted| -> Option<Chart> {
        let chart = catalog.charts.get(name).cloned();
        if chart.is_none() {
            emitted
                .state
                .unbuilt
                .push(format!("the `{name}` chart is not in the chart catalog (stdlib/catalog/charts.kdl)"));
        }
        chart
    };
    if !spec.vectorstores.is_empty()
        && let Some(chart) = chart("qdrant", &mut emitted)
    {
        qdrant::emit(spec, analysis, &fabric, &chart, &mut emitted);
    }
    if !spec.temporals.is_empty()
        && let Some(chart) = chart("temporal", &mut emitted)
    {
        temporal::emit(spec, analysis, &fabric, &chart, &mut emitted);
    }
    if !spec.observes.is_empty()
        && let Some(chart) = chart("opentelemetry-collector", &mut emitted)
    {
        collector::emit(spec, analysis, &fabric, &chart, &mut emitted);
    }
    for release in &emitted.releases {
        emitted.state.add(release.values_resource());
    }
    emitted
}

/// Whether sovereign installs a server for `temporal` (with `endpoint=` it
/// uses that one; otherwise only PostgreSQL persistence on a cluster is
/// built so far): what the Temporal target's requests wait for.
#[must_use]
pub fn installs_temporal(analysis: &Analysis, temporal: &sovereign_model::Temporal) -> bool {
    temporal.endpoint.is_none()
        && temporal
            .persistence
            .as_ref()
            .is_some_and(|p| p.engine.value == sovereign_model::PersistenceEngine::Postgresql)
        && analysis.sites.sites[temporal.site.value.index()].has_cluster
}

/// A Kubernetes Secret a workload reads: its name and key in the
/// workload's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// Where a declared secret is found in a cluster. Sovereign never holds a
/// value: a `vault:` secret arrives through an ExternalSecret of this
/// name, an `env:` or `file:` one is created by apply, a `k8s:` one exists.
#[must_use]
pub fn secret_ref(spec: &Spec, secret: Id<Secret>) -> SecretRef {
    let secret = &spec.secrets[secret];
    match &secret.from.value {
        SecretSource::Kubernetes { name, .. } => SecretRef { name: name.clone(), key: SECRET_KEY.into() },
        _ => SecretRef { name: label(&format!("sovereign-{}", secret.name.qualified)), key: SECRET_KEY.into() },
    }
}

/// The key under which sovereign's Secrets hold their one value.
pub const SECRET_KEY: &str = "value";

pub use sovereign_desired::modules::dns_label as label;

/// A chart's `fullname` helper, as the Temporal and Qdrant charts write it
/// (temporalio/helm-charts and qdrant/qdrant-helm `templates/_helpers.tpl`,
/// no `fullnameOverride` or `nameOverride` set here): the release name when
/// it contains the chart's name, else `RELEASE-CHART`, cut to 63
/// characters without a trailing `-`.
#[must_use]
pub fn chart_fullname(release: &str, chart: &str) -> String {
    let full = if release.contains(chart) { release.to_owned() } else { format!("{release}-{chart}") };
    let cut: String = full.chars().take(63).collect();
    cut.trim_end_matches('-').to_owned()
}

/// The release of an `observe`'s collector: its HelmChart, and the
/// `app.kubernetes.io/instance` its pods carry.
#[must_use]
pub fn collector_release(observe: &str) -> String {
    label(&format!("{observe}-collector"))
}

/// The id of the HelmChart that installs release `name` on `site`.
#[must_use]
pub fn helm_chart_id(site: &Arc<str>, name: &str) -> ResourceId {
    ResourceId {
        target: Target::K3s,
        site: site.clone(),
        kind: "helm.cattle.io/HelmChart".into(),
        namespace: Some(HELM_CHART_NAMESPACE.into()),
        name: name.into(),
    }
}

/// The restricted Pod Security Standard, as the charts take it
/// (kubernetes.io/docs/concepts/security/pod-security-standards).
fn restricted_container() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] },
        "runAsNonRoot": true,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

fn restricted_pod(uid: u64) -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// A size in bytes as a Kubernetes quantity in whole GiB, rounded up (at least 1).
pub fn gibibytes(bytes: u64) -> String {
    format!("{}Gi", bytes.div_ceil(1 << 30).max(1))
}
