//! The desired state: everything the emitters produce, as resources.
//!
//! A [`Resource`] has a stable [`ResourceId`] (target, site, kind,
//! namespace, name), the ids it depends on, its body and the sha256 of its
//! body's canonical JSON. `sovereign build` writes these; the planner
//! (the plan/apply issue) diffs exactly this set against state.
//!
//! Architecture Invariant: pure and deterministic. Bodies are JSON values
//! whose objects keep their keys sorted (serde_json without
//! `preserve_order`), so the same fabric gives the same bytes and hashes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The system a resource is applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Kubernetes objects on a site's cluster (K3s or another distribution).
    K3s,
    /// Values of a Helm chart, installed through a K3s HelmChart object.
    Helm,
    /// Namespaces and schedules on a Temporal server.
    Temporal,
    /// Device bundles pushed to a fleet's registry.
    Npu,
}

impl Target {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Target::K3s => "k3s",
            Target::Helm => "helm",
            Target::Temporal => "temporal",
            Target::Npu => "npu",
        }
    }
}

/// A resource's identity, stable across builds: what the planner matches
/// against state. For Kubernetes objects, `kind` is `group/Kind`
/// (`networking.k8s.io/NetworkPolicy`, or `Namespace` for the core group).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    pub target: Target,
    /// The site whose cluster (or server, or registry) receives it.
    pub site: Arc<str>,
    pub kind: Arc<str>,
    pub namespace: Option<Arc<str>>,
    pub name: Arc<str>,
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/", self.target.word(), self.site, self.kind)?;
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        f.write_str(&self.name)
    }
}

/// One emitted thing.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: ResourceId,
    /// What must exist before it.
    pub depends_on: BTreeSet<ResourceId>,
    /// The spec declaration it comes from (`serve "chat"`), for messages
    /// and the annotation that links an object back to the spec.
    pub declaration: Option<Arc<str>>,
    pub body: Value,
    /// sha256 of the body's canonical JSON, lowercase hex.
    pub hash: String,
    /// A change to something that exists and that sovereign does not own
    /// (the labels of a Node): applied as a patch of exactly the fields in
    /// `body`, never created, never deleted.
    pub patch: bool,
}

impl Resource {
    #[must_use]
    pub fn new(id: ResourceId, declaration: Option<Arc<str>>, body: Value) -> Resource {
        let hash = content_hash(&body);
        Resource { id, depends_on: BTreeSet::new(), declaration, body, hash, patch: false }
    }
}

/// sha256 of a value's canonical JSON (sorted keys, no spaces), as hex.
#[must_use]
pub fn content_hash(body: &Value) -> String {
    // Hashed as it is serialized: no copy of the JSON is made.
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    let _ = serde_json::to_writer(&mut hashing, body);
    hex(&hashing.0.finalize())
}

/// Lowercase hex (sha2 0.11's digests do not format as hex themselves).
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Every resource of a build, by id.
#[derive(Clone, Debug, Default)]
pub struct DesiredState {
    pub resources: BTreeMap<ResourceId, Resource>,
    /// Ids an emitter produced twice (the first is kept): an emitter bug,
    /// reported by [`DesiredState::problems`].
    pub conflicts: Vec<ResourceId>,
    /// What a spec declares that the emitters could not build, and why
    /// (`serve "x": … not yet supported`): never a silent omission.
    pub unbuilt: Vec<String>,
}

impl DesiredState {
    /// Adds a resource; an id given twice keeps the first and is recorded
    /// in `conflicts` (an emitter bug, never a user's).
    pub fn add(&mut self, resource: Resource) {
        if self.resources.contains_key(&resource.id) {
            self.conflicts.push(resource.id);
            return;
        }
        self.resources.insert(resource.id.clone(), resource);
    }

    /// What is wrong with the set: dependencies on ids it does not hold,
    /// and cycles. Empty for every build (the tests hold emitters to it).
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self.conflicts.iter().map(|id| format!("{id} is built twice")).collect();
        for resource in self.resources.values() {
            for dep in &resource.depends_on {
                if !self.resources.contains_key(dep) {
                    problems.push(format!("{} depends on {dep}, which is not built", resource.id));
                }
            }
        }
        if let Err(stuck) = self.order() {
            problems.push(format!(
                "dependency cycle through {}",
                stuck.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        problems
    }

    /// The resources in an order where each comes after what it depends on
    /// (ties by id); or the ids left in a cycle.
    pub fn order(&self) -> Result<Vec<&ResourceId>, Vec<&ResourceId>> {
        let mut pending: BTreeMap<&ResourceId, usize> = BTreeMap::new();
        let mut dependents: BTreeMap<&ResourceId, Vec<&ResourceId>> = BTreeMap::new();
        for resource in self.resources.values() {
            let deps = resource.depends_on.iter().filter(|d| self.resources.contains_key(*d));
            pending.insert(&resource.id, deps.clone().count());
            for dep in deps {
                dependents.entry(dep).or_default().push(&resource.id);
            }
        }
        let mut ready: BTreeSet<&ResourceId> = pending.iter().filter(|(_, n)| **n == 0).map(|(id, _)| *id).collect();
        let mut order = Vec::with_capacity(self.resources.len());
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for &next in dependents.get(id).into_iter().flatten() {
                if let Some(n) = pending.get_mut(next) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(next);
                    }
                }
            }
        }
        if order.len() == self.resources.len() {
            Ok(order)
        } else {
            let placed: BTreeSet<&ResourceId> = order.into_iter().collect();
            Err(self.resources.keys().filter(|id| !placed.contains(id)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str) -> ResourceId {
        ResourceId { target: Target::K3s, site: "fra".into(), kind: kind.into(), namespace: None, name: name.into() }
    }

    #[test]
    fn hashes_are_of_canonical_json_and_stable() {
        let a = serde_json::json!({"b": 1, "a": [1, 2]});
        let b: Value = serde_json::from_str(r#"{ "a": [1,2], "b": 1 }"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        // sha256 of {"a":[1,2],"b":1}
        assert_eq!(content_hash(&a), hex(&Sha256::digest(br#"{"a":[1,2],"b":1}"#)));
        assert_ne!(content_hash(&a), content_hash(&serde_json::json!({"a": [2, 1], "b": 1})));
    }

    #[test]
    fn order_puts_dependencies_first_and_finds_cycles_and_missing_ids() {
        let mut state = DesiredState::default();
        let mut deployment = Resource::new(id("apps/Deployment", "chat"), None, Value::Null);
        deployment.depends_on.insert(id("Namespace", "kinetic"));
        state.add(deployment);
        state.add(Resource::new(id("Namespace", "kinetic"), None, Value::Null));
        let order: Vec<String> = state.order().unwrap().iter().map(|i| i.to_string()).collect();
        assert_eq!(order, ["k3s/fra/Namespace/kinetic", "k3s/fra/apps/Deployment/chat"]);
        assert!(state.problems().is_empty());
        state.add(Resource::new(id("Namespace", "kinetic"), None, Value::Null));
        assert_eq!(state.problems(), ["k3s/fra/Namespace/kinetic is built twice"]);
        state.conflicts.clear();
        let mut namespace = state.resources[&id("Namespace", "kinetic")].clone();
        namespace.depends_on.insert(id("apps/Deployment", "chat"));
        namespace.depends_on.insert(id("ConfigMap", "missing"));
        state.resources.insert(namespace.id.clone(), namespace);
        let problems = state.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
