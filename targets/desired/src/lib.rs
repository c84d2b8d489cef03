//! The desired state: everything the emitters produce, as resources.
//!
//! A [`Resource`] has a stable [`ResourceId`] (target, site, kind,
//! namespace, name), the ids it depends on, its body as compact JSON and
//! the sha256 of that JSON. `sovereign build` writes these; the planner
//! (the plan/apply issue) diffs exactly this set against state.
//!
//! Architecture Invariant: pure and deterministic. A body is serialized
//! once, when its resource is made, from a value whose keys are in a fixed
//! order (serde_json maps without `preserve_order` sort theirs), so the same
//! fabric gives the same bytes and hashes. Keeping the text rather than a
//! tree of maps is what keeps a build of 100,000 objects small: a
//! Deployment is 1.5 KB of JSON and was 25 KB as a `serde_json::Value`.

pub mod modules;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
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
    /// Collections of a Qdrant vector store (`PUT /collections/{name}` bodies).
    Qdrant,
}

impl Target {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Target::K3s => "k3s",
            Target::Helm => "helm",
            Target::Temporal => "temporal",
            Target::Npu => "npu",
            Target::Qdrant => "qdrant",
        }
    }

    /// The target a word names ([`Target::word`]'s inverse).
    #[must_use]
    pub fn from_word(word: &str) -> Option<Target> {
        [Target::K3s, Target::Helm, Target::Temporal, Target::Npu, Target::Qdrant]
            .into_iter()
            .find(|target| target.word() == word)
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
    pub depends_on: Dependencies,
    /// The spec declaration it comes from (`serve "chat"`), for messages
    /// and the annotation that links an object back to the spec.
    pub declaration: Option<Arc<str>>,
    /// The body as compact JSON: what is hashed, written out and (next
    /// issue) sent to the target.
    pub json: Box<str>,
    /// sha256 of `json`, lowercase hex.
    pub hash: String,
    /// A change to something that exists and that sovereign does not own
    /// (the labels of a Node): applied as a patch of exactly the fields in
    /// `body`, never created, never deleted.
    pub patch: bool,
}

impl Resource {
    #[must_use]
    pub fn new(id: ResourceId, declaration: Option<Arc<str>>, body: &impl Serialize) -> Resource {
        thread_local! {
            // Serialized into one reused buffer, then copied out at its
            // exact size: a string grown by doubling leaves freed blocks of
            // every size behind, a third of a large build's memory.
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let json: Box<str> = SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            // Serializing a JSON value or a struct of strings cannot fail,
            // and serde_json writes only UTF-8.
            let _ = serde_json::to_writer(&mut *scratch, body);
            std::str::from_utf8(scratch).map_or_else(|_| Box::from(""), Box::from)
        });
        let hash = hex(&Sha256::digest(json.as_bytes()));
        Resource { id, depends_on: Dependencies::default(), declaration, json, hash, patch: false }
    }

    /// The body as a JSON value (tests, and readers that walk it).
    #[must_use]
    pub fn body(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

/// The ids a resource depends on, sorted and without repeats. A sorted
/// `Vec` rather than a `BTreeSet`: most resources have one or two, and a
/// set's first node holds room for eleven (a kilobyte per resource).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependencies(Vec<ResourceId>);

impl Dependencies {
    pub fn insert(&mut self, id: ResourceId) {
        if let Err(at) = self.0.binary_search(&id) {
            self.0.insert(at, id);
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ResourceId> {
        self.0.iter()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<'a> IntoIterator for &'a Dependencies {
    type Item = &'a ResourceId;
    type IntoIter = std::slice::Iter<'a, ResourceId>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// sha256 of a value's compact JSON, as hex: the hash [`Resource::new`] gives it.
#[must_use]
pub fn content_hash(body: &impl Serialize) -> String {
    hex(&Sha256::digest(serde_json::to_string(body).unwrap_or_default().as_bytes()))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4): how proto-JSON writes
/// bytes, and how bundles carry keys and signatures.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of standard padded base64; `None` for anything else.
#[must_use]
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (at, chunk) in bytes.chunks(4).enumerate() {
        let last = at == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            let value = if i >= 4 - pad { 0 } else { BASE64.iter().position(|&c| c == b)? as u32 };
            n |= value << (18 - 6 * i);
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    // Only the canonical encoding of those bytes.
    (base64(&out) == text).then_some(out)
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

/// Every resource of a build, by id; or of the sites in [`DesiredState::only`].
#[derive(Clone, Debug, Default)]
pub struct DesiredState {
    /// When set, only these sites' resources are built (a large fabric is
    /// built a batch of sites at a time, so that its whole desired state
    /// is never in memory at once). Emitters ask [`DesiredState::wants`]
    /// before building anything for a site; `add` drops the rest.
    // hashbrown's hasher, not SipHash: every emitter asks of every site,
    // once per batch.
    pub only: Option<hashbrown::HashSet<Arc<str>>>,
    pub resources: BTreeMap<ResourceId, Resource>,
    /// Ids an emitter produced twice (the first is kept): an emitter bug,
    /// reported by [`DesiredState::problems`].
    pub conflicts: Vec<ResourceId>,
    /// What a spec declares that the emitters could not build, and why
    /// (`serve "x": … not yet supported`): never a silent omission.
    pub unbuilt: Vec<String>,
    /// What apply must create that a build cannot hold (a Secret whose
    /// value comes from the environment, a generated API key): said, so
    /// that nobody mistakes the build for everything the cluster needs.
    pub at_apply: Vec<String>,
    /// The Secrets behind the `at_apply` notes, for apply to make: never
    /// with a value (it is generated or read when apply runs).
    pub secrets: Vec<ApplySecret>,
    /// Where the output depends on something outside the spec (a chart
    /// version, a GPU Operator setting, a secret store): warnings.
    pub assumptions: Vec<String>,
}

/// A Secret that apply makes, because a build cannot hold its value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApplySecret {
    pub site: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// The key of `data` the workloads read.
    pub key: Arc<str>,
    pub value: SecretValue,
}

/// Where an [`ApplySecret`]'s value comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretValue {
    /// 32 random bytes, hex: made once, never replaced (a password).
    Random,
    /// The applying process's environment variable.
    Env(String),
    /// A file the applying process reads.
    File(String),
}

impl DesiredState {
    /// Adds a resource; an id given twice keeps the first and is recorded
    /// in `conflicts` (an emitter bug, never a user's).
    pub fn add(&mut self, resource: Resource) {
        if !self.wants(&resource.id.site) {
            return;
        }
        if self.resources.contains_key(&resource.id) {
            self.conflicts.push(resource.id);
            return;
        }
        self.resources.insert(resource.id.clone(), resource);
    }

    /// A state that builds only `sites`.
    #[must_use]
    pub fn for_sites(sites: impl IntoIterator<Item = Arc<str>>) -> DesiredState {
        DesiredState { only: Some(sites.into_iter().collect()), ..DesiredState::default() }
    }

    /// Whether resources of `site` belong to this build.
    #[must_use]
    pub fn wants(&self, site: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(site))
    }

    /// Adds every resource and note of `other` (another target's build).
    pub fn merge(&mut self, other: DesiredState) {
        for resource in other.resources.into_values() {
            self.add(resource);
        }
        self.conflicts.extend(other.conflicts);
        self.unbuilt.extend(other.unbuilt);
        self.at_apply.extend(other.at_apply);
        self.secrets.extend(
            other
                .secrets
                .into_iter()
                .filter(|secret| self.only.as_ref().is_none_or(|only| only.contains(&secret.site))),
        );
        self.assumptions.extend(other.assumptions);
    }

    /// Adds a Secret apply makes, if its site belongs to this build.
    pub fn add_secret(&mut self, secret: ApplySecret) {
        if self.wants(&secret.site) && !self.secrets.contains(&secret) {
            self.secrets.push(secret);
        }
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
        // By position in id order: the ready set is then ordered by id, as
        // the ties must be, and no id is compared again after the lookup.
        let ids: Vec<&ResourceId> = self.resources.keys().collect();
        let position = |id: &ResourceId| ids.binary_search(&id).ok();
        let mut pending = vec![0usize; ids.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
        for (at, resource) in self.resources.values().enumerate() {
            for dep in resource.depends_on.iter().filter_map(&position) {
                pending[at] += 1;
                dependents[dep].push(at);
            }
        }
        let mut ready: BTreeSet<usize> = (0..ids.len()).filter(|&at| pending[at] == 0).collect();
        let mut order = Vec::with_capacity(ids.len());
        while let Some(at) = ready.pop_first() {
            order.push(ids[at]);
            for &next in &dependents[at] {
                pending[next] -= 1;
                if pending[next] == 0 {
                    ready.insert(next);
                }
            }
        }
        if order.len() == ids.len() {
            Ok(order)
        } else {
            Err((0..ids.len()).filter(|&at| pending[at] > 0).map(|at| ids[at]).collect())
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
    fn base64_matches_rfc_4648_vectors_and_round_trips() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
            assert_eq!(unbase64(coded).as_deref(), Some(plain.as_bytes()));
        }
        for bad in ["Zg", "Zg=a", "Z===", "Zh==", "Zm9v!A==", "=Zm9"] {
            assert_eq!(unbase64(bad), None, "{bad}");
        }
    }

    #[test]
    fn order_puts_dependencies_first_and_finds_cycles_and_missing_ids() {
        let mut state = DesiredState::default();
        let mut deployment = Resource::new(id("apps/Deployment", "chat"), None, &Value::Null);
        deployment.depends_on.insert(id("Namespace", "kinetic"));
        state.add(deployment);
        state.add(Resource::new(id("Namespace", "kinetic"), None, &Value::Null));
        let order: Vec<String> = state.order().unwrap().iter().map(|i| i.to_string()).collect();
        assert_eq!(order, ["k3s/fra/Namespace/kinetic", "k3s/fra/apps/Deployment/chat"]);
        assert!(state.problems().is_empty());
        state.add(Resource::new(id("Namespace", "kinetic"), None, &Value::Null));
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
