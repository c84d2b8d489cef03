//! What a plan means beyond its field diffs: which serve replicas move to
//! which node and GPU or MIG slice, how many replicas serve during the
//! rollout, which data flows open or close, and which nodes' MIG layouts
//! change (the GPU Operator's MIG manager then drains those GPUs).
//!
//! Read from the bodies on both sides (the state's applied bodies and the
//! build's), so that it describes exactly what apply will change.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sovereign_desired::{DesiredState, ResourceId, Target};

use super::{Action, Change};
use crate::state::Record;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Impact {
    pub serves: Vec<ServeChange>,
    pub flows: Vec<FlowChange>,
    pub mig: Vec<MigChange>,
    /// The evaluation gates apply judges before it updates these serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateOnServe>,
}

impl Impact {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.serves.is_empty() && self.flows.is_empty() && self.mig.is_empty() && self.gates.is_empty()
    }
}

/// An eval that gates an update of a serve: apply reads the eval's latest
/// completed run first (`crate::apply::gates`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateOnServe {
    pub serve: String,
    pub eval: String,
    pub on_fail: String,
}

/// A serve whose placement or pods change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServeChange {
    pub site: String,
    /// `serve "chat"`.
    pub serve: String,
    pub before: Vec<Group>,
    pub after: Vec<Group>,
    /// Nodes whose group is rolled: its pods are replaced (a new template).
    pub rolled: Vec<String>,
    /// Replicas placed before and after, and the fewest that serve at any
    /// moment of the rollout: unchanged groups, updated groups less what a
    /// rolling update takes down (Kubernetes' default `maxUnavailable`,
    /// 25% rounded down), and groups to delete (pruned last); new groups
    /// count only once they are ready, so not here.
    pub capacity: Capacity,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Group {
    pub node: String,
    pub replicas: u64,
    /// What each replica asks for: `nvidia.com/gpu: 2`, `nvidia.com/mig-3g.40gb: 1`.
    pub slice: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub before: u64,
    pub after: u64,
    pub during_at_least: u64,
}

/// A NetworkPolicy that lets a flow through, made or removed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowChange {
    pub site: String,
    pub policy: String,
    /// `added`, `removed`, `changed`.
    pub change: &'static str,
    /// Its `sovereign.dev/why`: the flow the sovereignty analysis proved.
    pub why: String,
}

/// A node whose MIG layout changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MigChange {
    pub site: String,
    pub node: String,
    /// `GPU 0: 2g.20gb×1 3g.40gb×1`; `None` where the node has no layout.
    pub before: Option<String>,
    pub after: Option<String>,
}

const SERVE_LABEL: &str = "sovereign.dev/serve";
const WHY: &str = "sovereign.dev/why";
const MIG_CONFIG: &str = "sovereign-mig-parted-config";

impl Impact {
    pub(crate) fn of(desired: &DesiredState, recorded: &BTreeMap<ResourceId, Record>, changes: &[Change]) -> Impact {
        let before =
            |id: &ResourceId| recorded.get(id).and_then(|r| serde_json::from_str::<Value>(r.applied.get()).ok());
        let after = |id: &ResourceId| desired.resources.get(id).map(sovereign_desired::Resource::body);
        let mut impact = Impact::default();
        // The serves with a changed Deployment: all their groups, both sides.
        let mut serves: BTreeMap<(String, String), Vec<&Change>> = BTreeMap::new();
        for change in changes.iter().filter(|c| c.action.changes()) {
            let id = &change.id;
            if id.target != Target::K3s {
                continue;
            }
            match &*id.kind {
                "apps/Deployment" => {
                    let body = after(id).or_else(|| before(id));
                    if body.as_ref().and_then(|b| serve_label(b)).is_some() {
                        let serve = change.declaration.as_deref().unwrap_or(&id.name).to_owned();
                        serves.entry((id.site.to_string(), serve)).or_default().push(change);
                    }
                }
                "networking.k8s.io/NetworkPolicy" => {
                    let (old, new) = (before(id), after(id));
                    let why = |b: &Option<Value>| {
                        b.as_ref()
                            .and_then(|b| b.pointer("/metadata/annotations")?.get(WHY)?.as_str().map(str::to_owned))
                    };
                    let (old_why, new_why) = (why(&old), why(&new));
                    let (change, text) = match (change.action, &old_why, &new_why) {
                        (Action::Create, _, Some(w)) => ("added", w.clone()),
                        (Action::Delete, Some(w), _) => ("removed", w.clone()),
                        (Action::Update | Action::Replace, Some(a), Some(b)) if a != b => ("changed", b.clone()),
                        (Action::Update | Action::Replace, None, Some(w)) => ("added", w.clone()),
                        (Action::Update | Action::Replace, Some(w), None) => ("removed", w.clone()),
                        _ => continue,
                    };
                    impact.flows.push(FlowChange {
                        site: id.site.to_string(),
                        policy: id.name.to_string(),
                        change,
                        why: text,
                    });
                }
                "ConfigMap" if &*id.name == MIG_CONFIG => {
                    let (old, new) = (layouts(before(id).as_ref()), layouts(after(id).as_ref()));
                    let nodes: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
                    for node in nodes {
                        let (a, b) = (old.get(node), new.get(node));
                        if a != b {
                            impact.mig.push(MigChange {
                                site: id.site.to_string(),
                                node: node.clone(),
                                before: a.cloned(),
                                after: b.cloned(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        // One pass over each side for the Deployments of those serves.
        type Groups = BTreeMap<ResourceId, Group>;
        let mut sides: BTreeMap<(String, String), (Groups, Groups)> =
            serves.into_keys().map(|key| (key, (Groups::new(), Groups::new()))).collect();
        let key = |id: &ResourceId, declaration: Option<&str>| {
            (id.target == Target::K3s && &*id.kind == "apps/Deployment")
                .then(|| (id.site.to_string(), declaration.unwrap_or(&id.name).to_owned()))
        };
        for (id, record) in recorded {
            if let Some(entry) = key(id, record.declaration.as_deref()).and_then(|k| sides.get_mut(&k))
                && let Ok(body) = serde_json::from_str::<Value>(record.applied.get())
                && serve_label(&body).is_some()
            {
                entry.0.insert(id.clone(), group(&body));
            }
        }
        for (id, resource) in &desired.resources {
            if let Some(entry) = key(id, resource.declaration.as_deref()).and_then(|k| sides.get_mut(&k)) {
                let body = resource.body();
                if serve_label(&body).is_some() {
                    entry.1.insert(id.clone(), group(&body));
                }
            }
        }
        for ((site, serve), (old, new)) in sides {
            let changed = |id: &ResourceId| {
                recorded.get(id).map(|r| &r.content_sha256) != desired.resources.get(id).map(|r| &r.hash)
            };
            let mut during: u64 = 0;
            let mut rolled = Vec::new();
            for (id, before) in &old {
                during = during.saturating_add(match new.get(id) {
                    Some(after) if changed(id) => {
                        rolled.push(after.node.clone());
                        before.replicas.min(after.replicas).saturating_sub(after.replicas / 4)
                    }
                    _ => before.replicas,
                });
            }
            rolled.sort();
            let capacity = Capacity {
                before: old.values().fold(0, |n, g| n.saturating_add(g.replicas)),
                after: new.values().fold(0, |n, g| n.saturating_add(g.replicas)),
                during_at_least: during,
            };
            let (mut before, mut after): (Vec<Group>, Vec<Group>) =
                (old.into_values().collect(), new.into_values().collect());
            before.sort();
            after.sort();
            impact.serves.push(ServeChange { site, serve, before, after, rolled, capacity });
        }
        impact.gates = gates(desired, recorded, changes);
        impact
    }
}

/// The gates on the serves whose objects the plan changes, once the
/// serve is deployed (its first deployment has no eval run to judge).
fn gates(desired: &DesiredState, recorded: &BTreeMap<ResourceId, Record>, changes: &[Change]) -> Vec<GateOnServe> {
    // As apply gates them: a serve the state records, any of whose objects change.
    use crate::apply::gates::serve_of as serve;
    let deployed = crate::apply::gates::deployed_serves(recorded);
    let updated: std::collections::BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.action.changes() && matches!(c.id.target, Target::K3s | Target::Helm))
        .filter_map(|c| serve(c.declaration.as_deref()))
        .filter(|name| deployed.contains(name))
        .collect();
    let mut gates: Vec<GateOnServe> = desired
        .resources
        .values()
        .filter(|r| r.id.target == Target::Temporal && &*r.id.kind == "schedule")
        .filter_map(|r| crate::apply::gates::Gate::of_schedule(&r.body()))
        .filter(|gate| updated.contains(gate.serve.as_str()))
        .map(|gate| GateOnServe { serve: gate.serve, eval: gate.eval, on_fail: gate.on_fail })
        .collect();
    gates.sort_by(|a, b| (&a.serve, &a.eval).cmp(&(&b.serve, &b.eval)));
    gates
}

fn serve_label(body: &Value) -> Option<&str> {
    body.pointer("/spec/template/metadata/labels")?.get(SERVE_LABEL)?.as_str()
}

/// A serve's Deployment as a placement group.
fn group(body: &Value) -> Group {
    let pod = body.pointer("/spec/template/spec");
    let node = pod
        .and_then(|p| p.pointer("/nodeSelector"))
        .and_then(|s| s.get("kubernetes.io/hostname").or_else(|| s.get("sovereign.dev/node")))
        .or_else(|| body.pointer("/spec/selector/matchLabels").and_then(|m| m.get("sovereign.dev/node")))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let slice = pod
        .and_then(|p| p.pointer("/containers/0/resources/limits"))
        .and_then(Value::as_object)
        .map(|limits| {
            limits
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Group { node, replicas: body.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1), slice }
}

/// The MIG layout of each node in a mig-parted ConfigMap
/// (`data."config.yaml"`: `mig-configs: {sovereign-<node>: [{devices, mig-enabled, mig-devices}]}`,
/// NVIDIA/mig-parted's config format), summarised per GPU.
fn layouts(body: Option<&Value>) -> BTreeMap<String, String> {
    let Some(text) = body.and_then(|b| b.pointer("/data/config.yaml")).and_then(Value::as_str) else {
        return BTreeMap::new();
    };
    let Ok(config) = serde_saphyr::from_str::<Value>(text) else { return BTreeMap::new() };
    let Some(configs) = config.get("mig-configs").and_then(Value::as_object) else { return BTreeMap::new() };
    configs
        .iter()
        .map(|(name, groups)| {
            let node = name.strip_prefix("sovereign-").unwrap_or(name).to_owned();
            let text = groups
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    let devices = g.get("devices").map_or_else(String::new, |d| match d {
                        Value::Array(list) => list.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                        other => other.as_str().map_or_else(|| other.to_string(), str::to_owned),
                    });
                    let slices = if g.get("mig-enabled") == Some(&Value::Bool(true)) {
                        g.get("mig-devices")
                            .and_then(Value::as_object)
                            .map(|m| m.iter().map(|(p, n)| format!("{p}×{n}")).collect::<Vec<_>>().join(" "))
                            .unwrap_or_default()
                    } else {
                        "MIG off".to_owned()
                    };
                    format!("GPU {devices}: {slices}")
                })
                .collect::<Vec<_>>()
                .join("; ");
            (node, text)
        })
        .collect()
}
