//! The plan: the desired set of a build diffed against the state, as one
//! [`Change`] per resource, in the order apply takes them.
//!
//! - not in state: `create`; in state with the same content hash: `no-op`;
//!   otherwise `update`, or `replace` when a field the target will not
//!   change in place differs ([`fields::immutable_changes`]);
//! - in state and no longer desired: `delete`, after everything else and
//!   in reverse dependency order, except that what holds data (a volume
//!   claim, a vector collection, a Temporal namespace's histories) is kept
//!   unless the plan was made with `prune_data`, and the plan says so.
//!
//! Architecture Invariant: pure. The plan of the same build and state is
//! the same value, the same text and the same JSON; no clock, no IO.
//! Bodies never hold a secret's value, and the field diff redacts what a
//! Secret holds anyway ([`fields::redacted`]).

pub mod drift;
pub mod fields;
pub mod impact;
pub mod render;
pub mod saved;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sovereign_desired::{DesiredState, ResourceId, Target};

use crate::state::StateDocument;

/// What apply does to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    /// Deleted and made again: a field it cannot change in place differs.
    Replace,
    Delete,
    /// In state and no longer desired, but it holds data: left in place.
    Keep,
    NoOp,
}

impl Action {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::NoOp => "no-op",
        }
    }

    /// Whether apply changes anything for it.
    #[must_use]
    pub fn changes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Replace | Action::Delete)
    }
}

/// One resource's line of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub id: ResourceId,
    pub action: Action,
    pub declaration: Option<Arc<str>>,
    /// A change to an object sovereign does not own (a Node's labels):
    /// created and updated as a patch of its fields; deleting it removes
    /// those fields, never the object.
    pub patch: bool,
    /// The fields that differ (update and replace), secrets redacted.
    pub fields: Vec<fields::FieldChange>,
    /// Why it is replaced: the fields that cannot change in place.
    pub replace_because: Vec<String>,
    /// What is lost when it is deleted or replaced (its data), if anything.
    pub data_loss: Option<&'static str>,
    /// The content hash before (from state) and after (from the build).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A plan: every change, in apply order, and what they mean together.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub fabric: String,
    pub changes: Vec<Change>,
    pub impact: impact::Impact,
}

/// How the plan is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Delete data-holding resources that are no longer desired (and what
    /// they need). A replace of one is planned either way, marked with the
    /// data it loses; apply refuses it without this flag.
    pub prune_data: bool,
}

impl Plan {
    /// Counts per action, in [`Action`] order.
    #[must_use]
    pub fn counts(&self) -> BTreeMap<Action, usize> {
        let mut counts = BTreeMap::new();
        for change in &self.changes {
            *counts.entry(change.action).or_insert(0) += 1;
        }
        counts
    }

    /// Whether apply would change anything.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.changes())
    }
}

/// What a resource loses when it is deleted; `None` for what holds no data
/// of its own (everything else can be made again from the spec).
#[must_use]
pub fn holds_data(id: &ResourceId) -> Option<&'static str> {
    match (id.target, &*id.kind) {
        (Target::K3s, "PersistentVolumeClaim") => Some("the volume's data"),
        (Target::Qdrant, "collection") => Some("the collection's vectors"),
        (Target::Temporal, "namespace") => Some("the namespace's workflow histories"),
        _ => None,
    }
}

/// The plan of `desired` against `state` (none: nothing applied yet).
#[must_use]
pub fn plan(fabric: &str, desired: &DesiredState, state: Option<&StateDocument>, options: Options) -> Plan {
    let empty = BTreeMap::new();
    let recorded = state.map_or(&empty, |s| &s.resources);
    let order = match desired.order() {
        Ok(order) => order,
        // A build with a cycle is refused before it is planned
        // (`DesiredState::problems`); plan it in id order all the same.
        Err(_) => desired.resources.keys().collect(),
    };
    let mut changes = Vec::with_capacity(order.len() + 16);
    for id in order {
        let resource = &desired.resources[id];
        let Some(record) = recorded.get(id) else {
            changes.push(Change {
                id: id.clone(),
                action: Action::Create,
                declaration: resource.declaration.clone(),
                patch: resource.patch,
                fields: Vec::new(),
                replace_because: Vec::new(),
                data_loss: None,
                before: None,
                after: Some(resource.hash.clone()),
            });
            continue;
        };
        // An object left unready by the last run is applied (and waited for) again.
        if record.content_sha256 == resource.hash && !record.unready {
            changes.push(Change {
                id: id.clone(),
                action: Action::NoOp,
                declaration: resource.declaration.clone(),
                patch: resource.patch,
                fields: Vec::new(),
                replace_because: Vec::new(),
                data_loss: None,
                before: Some(record.content_sha256.clone()),
                after: Some(resource.hash.clone()),
            });
            continue;
        }
        // Only a changed resource's bodies are parsed.
        let before: Value = serde_json::from_str(record.applied.get()).unwrap_or(Value::Null);
        let after = resource.body();
        let replace_because = fields::immutable_changes(id, &before, &after);
        let action = if replace_because.is_empty() { Action::Update } else { Action::Replace };
        let data_loss = (action == Action::Replace).then(|| holds_data(id)).flatten();
        changes.push(Change {
            id: id.clone(),
            action,
            declaration: resource.declaration.clone(),
            patch: resource.patch,
            fields: fields::diff(id, &before, &after),
            replace_because,
            data_loss,
            before: Some(record.content_sha256.clone()),
            after: Some(resource.hash.clone()),
        });
    }
    for id in deletion_order(recorded, desired) {
        let record = &recorded[id];
        let data = holds_data(id);
        let action = if data.is_some() && !options.prune_data { Action::Keep } else { Action::Delete };
        changes.push(Change {
            id: id.clone(),
            action,
            declaration: record.declaration.clone(),
            patch: record.patch,
            fields: Vec::new(),
            replace_because: Vec::new(),
            data_loss: data,
            before: Some(record.content_sha256.clone()),
            after: None,
        });
    }
    keep_what_kept_data_needs(&mut changes, recorded);
    let impact = impact::Impact::of(desired, recorded, &changes);
    Plan { fabric: fabric.to_owned(), changes, impact }
}

/// A kept resource keeps what it depends on among the deleted: deleting
/// the Namespace of a kept claim would delete the claim with it.
fn keep_what_kept_data_needs(changes: &mut [Change], recorded: &BTreeMap<ResourceId, crate::state::Record>) {
    let mut kept: Vec<ResourceId> = changes.iter().filter(|c| c.action == Action::Keep).map(|c| c.id.clone()).collect();
    let mut seen: BTreeSet<ResourceId> = kept.iter().cloned().collect();
    while let Some(id) = kept.pop() {
        for dep in recorded.get(&id).map(|r| r.depends_on.as_slice()).unwrap_or_default() {
            if let Some(change) = changes.iter_mut().find(|c| &c.id == dep && c.action == Action::Delete)
                && seen.insert(dep.clone())
            {
                change.action = Action::Keep;
                kept.push(dep.clone());
            }
        }
    }
}

/// The recorded resources no longer desired, each before what it depends
/// on (the reverse of the order they were made in); ties by id.
fn deletion_order<'a>(
    recorded: &'a BTreeMap<ResourceId, crate::state::Record>,
    desired: &DesiredState,
) -> Vec<&'a ResourceId> {
    let gone: Vec<&ResourceId> = recorded.keys().filter(|id| !desired.resources.contains_key(*id)).collect();
    let position: HashMap<&ResourceId, usize> = gone.iter().enumerate().map(|(at, id)| (*id, at)).collect();
    // An edge from each resource to what it depends on: a resource is
    // deleted once nothing left depends on it.
    let mut dependents = vec![0usize; gone.len()];
    let mut depends: Vec<Vec<usize>> = vec![Vec::new(); gone.len()];
    for (at, id) in gone.iter().enumerate() {
        for dep in &recorded[*id].depends_on {
            if let Some(&to) = position.get(dep) {
                dependents[to] += 1;
                depends[at].push(to);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..gone.len()).filter(|&at| dependents[at] == 0).collect();
    let mut order = Vec::with_capacity(gone.len());
    while let Some(at) = ready.pop_first() {
        order.push(gone[at]);
        for &to in &depends[at] {
            dependents[to] -= 1;
            if dependents[to] == 0 {
                ready.insert(to);
            }
        }
    }
    // A cycle in a state written by hand: the rest by id.
    if order.len() < gone.len() {
        let placed: BTreeSet<&ResourceId> = order.iter().copied().collect();
        order.extend(gone.iter().filter(|id| !placed.contains(*id)));
    }
    order
}

#[cfg(test)]
mod tests;
