//! How a run reaches its targets: the sites' clusters (each through its
//! kubeconfig context), and the servers that are not Kubernetes objects
//! (a Temporal at its endpoint or through its site's API server, a
//! vectorstore's Qdrant through its site's API server, a site's registry
//! at its address), as the executor's drivers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sovereign::apply::driver::{self, Drivers};
use sovereign::apply::{self, Clusters, Op, Step};
use sovereign::plan::saved;
use sovereign_desired::Target;
use sovereign_temporal_driver::TemporalServer;

use crate::ClusterArgs;

pub(crate) struct Reached {
    pub(crate) drivers: Drivers,
    pub(crate) clusters: Clusters,
}

/// The drivers of the steps: the clusters of the Kubernetes steps, and of
/// the servers reached through one.
pub(crate) async fn reach(
    steps: &[Step],
    basis: &saved::Basis,
    cluster: &ClusterArgs,
    force_conflicts: bool,
    bundles: Arc<sovereign::apply::oci::BundleLayouts>,
) -> Reached {
    let through = |step: &&Step| match step.planned.id.target {
        Target::Temporal => basis
            .endpoints
            .get(&driver::driver_key(&step.planned.id))
            .is_some_and(|e| e.starts_with(crate::plan_command::KUBERNETES_SERVICE)),
        Target::Qdrant => true,
        _ => false,
    };
    let sites = steps
        .iter()
        .filter(|step| {
            step.op != Op::Carried && (matches!(step.planned.id.target, Target::K3s | Target::Helm) || through(step))
        })
        .map(|step| &step.planned.id.site);
    let clusters = connect(sites, &basis.contexts, cluster, force_conflicts).await;
    let mut drivers = apply::kubernetes_drivers(&clusters);
    drivers.extend(temporal_drivers(steps, &basis.endpoints, &clusters, cluster));
    drivers.extend(qdrant_drivers(steps, &clusters));
    drivers.extend(npu_drivers(steps, cluster, &bundles));
    Reached { drivers, clusters }
}

/// The Temporal server of driver `key` (on `site`): at its endpoint, or
/// through the site's cluster.
pub(crate) fn temporal_server(
    key: &str,
    site: &str,
    endpoints: &BTreeMap<String, String>,
    clusters: &Clusters,
    timeout: Duration,
) -> Result<TemporalServer, String> {
    match endpoints.get(key).map(|e| (e, e.strip_prefix(crate::plan_command::KUBERNETES_SERVICE))) {
        Some((_, Some(service))) => through_cluster(service, clusters.get(site)),
        Some((endpoint, None)) => TemporalServer::new(endpoint, timeout).map_err(|e| e.to_string()),
        None => Err(format!("{key}: the spec gives this Temporal no endpoint")),
    }
}

pub(crate) async fn connect<'a>(
    sites: impl IntoIterator<Item = &'a Arc<str>>,
    contexts: &BTreeMap<String, String>,
    cluster: &ClusterArgs,
    force_conflicts: bool,
) -> Clusters {
    let mut clusters = Clusters::new();
    let settings = sovereign_kubernetes::Settings {
        request_timeout: Duration::from_secs_f64(cluster.request_timeout.max(0.1)),
        force_conflicts,
        ..sovereign_kubernetes::Settings::default()
    };
    for site in sites {
        if clusters.contains_key(site) {
            continue;
        }
        let context = cluster.context.clone().or_else(|| contexts.get(&**site).cloned());
        let connected =
            sovereign_kubernetes::Cluster::connect(cluster.kubeconfig.as_deref(), context.as_deref(), settings.clone())
                .await
                .map(Arc::new)
                .map_err(|e| format!("site {site}'s cluster: {e}"));
        clusters.insert(Arc::clone(site), connected);
    }
    clusters
}

/// A driver for each Temporal server the steps change, at its endpoint.
fn temporal_drivers(
    steps: &[Step],
    endpoints: &BTreeMap<String, String>,
    clusters: &Clusters,
    cluster: &ClusterArgs,
) -> Drivers {
    let timeout = Duration::from_secs_f64(cluster.request_timeout.max(0.1));
    let keys: std::collections::BTreeSet<(String, &Arc<str>)> = steps
        .iter()
        .filter(|step| step.planned.id.target == Target::Temporal)
        .map(|step| (driver::driver_key(&step.planned.id), &step.planned.id.site))
        .collect();
    keys.into_iter()
        .map(|(key, site)| {
            let server = temporal_server(&key, site, endpoints, clusters, timeout);
            let driver =
                server.map(|server| Arc::new(apply::temporal::TemporalDriver::new(server)) as Arc<dyn driver::Driver>);
            (key, driver)
        })
        .collect()
}

/// A driver for each vectorstore's Qdrant the steps change (`NAMESPACE/RELEASE`).
fn qdrant_drivers(steps: &[Step], clusters: &Clusters) -> Drivers {
    let mut drivers = Drivers::new();
    for step in steps.iter().filter(|step| step.planned.id.target == Target::Qdrant) {
        let key = driver::driver_key(&step.planned.id);
        if drivers.contains_key(&key) {
            continue;
        }
        let id = &step.planned.id;
        let place = id.namespace.as_deref().and_then(|n| n.split_once('/'));
        let driver = match (clusters.get(&id.site), place) {
            (Some(Ok(cluster)), Some((namespace, release))) => {
                Ok(Arc::new(apply::qdrant::QdrantDriver::new(Arc::clone(cluster), namespace, release))
                    as Arc<dyn driver::Driver>)
            }
            (Some(Err(why)), _) => Err(why.clone()),
            (None, _) => Err(format!("site {} has no cluster to reach its Qdrant through", id.site)),
            (_, None) => Err(format!("{id}: not a collection of a vectorstore's release")),
        };
        drivers.insert(key, driver);
    }
    drivers
}

/// A driver for each site whose device bundles the steps push or delete;
/// credentials from the files Docker and podman keep them in.
fn npu_drivers(steps: &[Step], cluster: &ClusterArgs, bundles: &Arc<sovereign::apply::oci::BundleLayouts>) -> Drivers {
    let timeout = Duration::from_secs_f64(cluster.request_timeout.max(0.1));
    let files = sovereign_oci::auth::auth_files(&|name| std::env::var(name).ok());
    steps
        .iter()
        .filter(|step| step.planned.id.target == Target::Npu)
        .map(|step| driver::driver_key(&step.planned.id))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|key| {
            let driver = apply::oci::NpuDriver::new(Arc::clone(bundles), files.clone(), timeout);
            (key, Ok(Arc::new(driver) as Arc<dyn driver::Driver>))
        })
        .collect()
}

/// A Temporal server behind `NAMESPACE/SERVICE:PORT` of a site's cluster.
fn through_cluster(
    service: &str,
    cluster: Option<&Result<Arc<sovereign_kubernetes::Cluster>, String>>,
) -> Result<sovereign_temporal_driver::TemporalServer, String> {
    let parsed = service.split_once('/').and_then(|(namespace, rest)| {
        let (name, port) = rest.rsplit_once(':')?;
        Some((namespace, name, port.parse::<u16>().ok()?))
    });
    let Some((namespace, name, port)) = parsed else { return Err(format!("a malformed service address {service:?}")) };
    match cluster {
        Some(Ok(cluster)) => {
            Ok(sovereign_temporal_driver::TemporalServer::through_cluster(Arc::clone(cluster), namespace, name, port))
        }
        Some(Err(why)) => Err(why.clone()),
        None => Err(format!("no cluster to reach service {service} through")),
    }
}
