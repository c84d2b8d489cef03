//! `--refresh`: the state as the clusters have it now. Each recorded
//! Kubernetes object is read back: one deleted outside sovereign leaves the
//! state (the plan creates it again); one whose owned fields drifted is
//! recorded as it is live ([`crate::plan::drift`]), so the plan shows the
//! drift as an update back to the spec. Live objects that carry the
//! fabric's inventory label and that neither the state nor the spec knows
//! (left by a lost state, or by a run before the journal) are added, so
//! that the plan prunes them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt as _;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sovereign_desired::{DesiredState, ResourceId, Target};
use sovereign_kubernetes::readiness::kind_of;

use super::Clusters;
use crate::plan::drift;
use crate::plan::saved::sha256;
use crate::state::{Live, Record, StateDocument};

/// What a refresh found.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Resources whose owned fields changed outside sovereign, and where.
    pub drifted: Vec<(ResourceId, Vec<String>)>,
    /// Resources deleted outside sovereign.
    pub gone: Vec<ResourceId>,
    /// Labelled objects no state or spec knows, now in the state to be pruned.
    pub orphans: Vec<ResourceId>,
    /// Why a site could not be refreshed.
    pub unreachable: Vec<String>,
}

/// Requests in flight at once while reading back.
const READS: usize = 16;

/// A desired resource, as refresh needs it: a build's or a saved plan's.
#[derive(Clone, Copy)]
pub struct Wanted<'a> {
    pub id: &'a ResourceId,
    pub body: &'a str,
    pub patch: bool,
}

/// A build's resources as [`Wanted`].
#[must_use]
pub fn wanted(desired: &DesiredState) -> Vec<Wanted<'_>> {
    desired.resources.values().map(|r| Wanted { id: &r.id, body: &r.json, patch: r.patch }).collect()
}

pub async fn refresh(state: &mut StateDocument, desired: &[Wanted<'_>], clusters: &Clusters) -> Refreshed {
    let mut found = Refreshed::default();
    let recorded: Vec<(ResourceId, Value)> = state
        .resources
        .iter()
        .filter(|(id, _)| id.target == Target::K3s)
        .filter_map(|(id, record)| Some((id.clone(), serde_json::from_str(record.applied.get()).ok()?)))
        .collect();
    let reads = futures::stream::iter(recorded.into_iter().map(|(id, applied)| async move {
        let cluster = match clusters.get(&id.site) {
            Some(Ok(cluster)) => Arc::clone(cluster),
            Some(Err(why)) => return (id, applied, Err(why.clone())),
            None => {
                let why = format!("site {} has no cluster", id.site);
                return (id, applied, Err(why));
            }
        };
        let live = cluster.get(&applied).await.map_err(|e| format!("site {}: {e}", id.site));
        (id, applied, live)
    }))
    .buffer_unordered(READS)
    .collect::<Vec<_>>()
    .await;
    let mut unreachable = BTreeSet::new();
    for (id, applied, live) in reads {
        match live {
            Err(why) => {
                unreachable.insert(why);
            }
            Ok(None) => {
                state.resources.remove(&id);
                found.gone.push(id);
            }
            Ok(Some(live)) => {
                let projected = drift::project(&applied, &live.object);
                let paths = drift::drifted(&applied, &projected);
                let Some(record) = state.resources.get_mut(&id) else { continue };
                record.live = Some(Live { uid: Some(live.uid), resource_version: Some(live.resource_version) });
                if paths.is_empty() {
                    continue;
                }
                let text = projected.to_string();
                if let Ok(body) = RawValue::from_string(text.clone()) {
                    record.content_sha256 = sha256(&text);
                    record.applied = body;
                }
                found.drifted.push((id, paths));
            }
        }
    }
    orphans(state, desired, clusters, &mut found, &mut unreachable).await;
    found.unreachable = unreachable.into_iter().collect();
    found.drifted.sort();
    found.gone.sort();
    found.orphans.sort();
    found
}

/// Adds the labelled live objects of the kinds the fabric uses that no
/// state record or desired resource names.
async fn orphans(
    state: &mut StateDocument,
    desired: &[Wanted<'_>],
    clusters: &Clusters,
    found: &mut Refreshed,
    unreachable: &mut BTreeSet<String>,
) {
    let mut kinds: BTreeSet<(String, String)> = BTreeSet::new();
    let bodies = desired
        .iter()
        .filter(|wanted| wanted.id.target == Target::K3s && !wanted.patch)
        .filter_map(|wanted| serde_json::from_str::<Value>(wanted.body).ok());
    let recorded = state
        .resources
        .iter()
        .filter(|(id, record)| id.target == Target::K3s && !record.patch)
        .filter_map(|(_, record)| serde_json::from_str::<Value>(record.applied.get()).ok());
    for body in bodies.chain(recorded) {
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        kinds.insert((text("apiVersion"), text("kind")));
    }
    let selector = format!("sovereign.dev/fabric={}", state.fabric);
    let known: HashMap<&ResourceId, ()> = desired.iter().map(|wanted| (wanted.id, ())).collect();
    let mut sites: Vec<(&Arc<str>, &Arc<sovereign_kubernetes::Cluster>)> =
        clusters.iter().filter_map(|(site, cluster)| Some((site, cluster.as_ref().ok()?))).collect();
    sites.sort_by_key(|(site, _)| Arc::clone(site));
    let mut additions = Vec::new();
    for (site, cluster) in sites {
        for (api_version, kind) in &kinds {
            let items = match cluster.list(api_version, kind, None, &selector).await {
                Ok(items) => items,
                Err(e) => {
                    unreachable.insert(format!("site {site}: listing {kind}: {e}"));
                    continue;
                }
            };
            for item in items {
                let text = |pointer: &str| item.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
                let Some(name) = text("/metadata/name") else { continue };
                let namespace = text("/metadata/namespace");
                let id = ResourceId {
                    target: Target::K3s,
                    site: Arc::clone(site),
                    kind: kind_of(&item).into(),
                    namespace: namespace.as_deref().map(Into::into),
                    name: name.as_str().into(),
                };
                if state.resources.contains_key(&id) || known.contains_key(&id) {
                    continue;
                }
                let mut identity = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
                if let Some(namespace) = &namespace {
                    identity["metadata"]["namespace"] = json!(namespace);
                }
                additions.push((id, identity, text("/metadata/uid"), text("/metadata/resourceVersion")));
            }
        }
    }
    let namespaces: BTreeSet<ResourceId> =
        additions.iter().filter(|(id, ..)| &*id.kind == "Namespace").map(|(id, ..)| id.clone()).collect();
    for (id, identity, uid, resource_version) in additions {
        let text = identity.to_string();
        let Ok(applied) = RawValue::from_string(text.clone()) else { continue };
        // An orphan in an orphaned namespace goes before it.
        let depends_on = namespaces
            .iter()
            .filter(|namespace| id.namespace.as_deref() == Some(&*namespace.name) && namespace.site == id.site)
            .cloned()
            .collect();
        let record = Record {
            declaration: None,
            patch: false,
            depends_on,
            content_sha256: sha256(&text),
            applied,
            live: Some(Live { uid, resource_version }),
            applied_at: crate::clock::rfc3339(crate::clock::now()),
            unready: false,
            gate_override: None,
        };
        state.resources.insert(id.clone(), record);
        found.orphans.push(id);
    }
}
