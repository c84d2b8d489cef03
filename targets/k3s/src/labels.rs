//! Inventory labels and the annotation back to the spec: every object
//! sovereign writes can be found again (to prune what a spec no longer
//! declares) and traced to its declaration.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use sovereign_analyze::Analysis;
use sovereign_desired::{DesiredState, Resource, ResourceId, Target};
use sovereign_model::Spec;

use crate::objects::{Metadata, Object};

/// The recommended label for the tool managing an object
/// (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "sovereign";
/// The fabric an object belongs to: a cluster may hold several fabrics.
pub const FABRIC_LABEL: &str = "sovereign.dev/fabric";
/// The declaration an object comes from, as `kind.name` (a label value: no `/` or quotes).
pub const DECLARATION_LABEL: &str = "sovereign.dev/declaration";
/// The same declaration as written in the spec (`serve "chat"`).
pub const DECLARATION_ANNOTATION: &str = "sovereign.dev/declared-as";

/// What every object of one fabric shares.
pub(crate) struct Context {
    pub(crate) fabric: Arc<str>,
    /// Kinds (`group/Kind`) and namespaces, shared by every id that names
    /// them rather than allocated per object.
    words: RefCell<HashMap<(String, &'static str), Arc<str>>>,
    /// Per site index of the analysis: whether this build wants it
    /// (`DesiredState::wants`, asked once per site rather than once per
    /// declaration and batch: a batch skips other sites' work cheaply).
    wanted: sovereign_analyze::view::SiteMask,
}

impl Context {
    pub(crate) fn new(spec: &Spec, analysis: &Analysis, state: &DesiredState) -> Context {
        let fabric = spec.fabric.name.as_ref().map_or_else(|| Arc::from("fabric"), |n| n.qualified.clone());
        let wanted = analysis.sites.wanted(state.only.as_ref());
        Context { fabric, words: RefCell::default(), wanted }
    }

    /// Whether this build wants the site with this index.
    pub(crate) fn wants(&self, site: usize) -> bool {
        self.wanted.has(site)
    }

    /// `group/Kind`, or the namespace `first` when `kind` is empty; the
    /// core group has no prefix (`first == kind`).
    fn intern(&self, first: &str, kind: &str) -> Arc<str> {
        let make = || -> Arc<str> {
            match kind {
                "" => first.into(),
                _ if first == kind => kind.into(),
                _ => format!("{first}/{kind}").into(),
            }
        };
        let Some(word) = kind_word(kind) else { return make() };
        self.words.borrow_mut().entry((first.to_owned(), word)).or_insert_with(make).clone()
    }

    /// An object's `metadata`, with the inventory labels and, when it
    /// comes from a declaration, the annotation that says which.
    pub(crate) fn metadata(&self, name: &str, namespace: Option<&str>, declaration: Option<&Declaration>) -> Metadata {
        let mut metadata =
            Metadata { name: name.to_owned(), namespace: namespace.map(str::to_owned), ..Metadata::default() };
        metadata.labels.insert(MANAGED_BY_LABEL, MANAGED_BY.to_owned());
        metadata.labels.insert(FABRIC_LABEL, self.fabric.to_string());
        if let Some(declaration) = declaration {
            metadata.labels.insert(DECLARATION_LABEL, declaration.label());
            metadata.annotations.insert(DECLARATION_ANNOTATION, declaration.written());
        }
        metadata
    }

    /// A Kubernetes object as a resource of `site`: `rest` holds the
    /// fields after `metadata` (`spec`, `data`).
    pub(crate) fn object(
        &self,
        site: &Arc<str>,
        api_version: &str,
        kind: &str,
        metadata: &Metadata,
        rest: impl Serialize,
        declaration: Option<&Declaration>,
    ) -> Resource {
        let id = ResourceId {
            target: Target::K3s,
            site: site.clone(),
            kind: self.intern(api_version.rsplit_once('/').map_or(kind, |(group, _)| group), kind),
            namespace: metadata.namespace.as_deref().map(|n| self.intern(n, "")),
            name: metadata.name.as_str().into(),
        };
        let object = Object { api_version, kind, metadata, rest };
        Resource::new(id, declaration.map(|d| Arc::from(d.written())), &object)
    }
}

/// A spec declaration an object comes from.
pub(crate) struct Declaration {
    pub(crate) kind: &'static str,
    pub(crate) name: Arc<str>,
}

impl Declaration {
    /// `serve.chat`; a nested name's `/` becomes `.` (label values allow `[-_.A-Za-z0-9]`).
    fn label(&self) -> String {
        label_value(&format!("{}.{}", self.kind, self.name.replace('/', ".")))
    }

    fn written(&self) -> String {
        format!("{} \"{}\"", self.kind, self.name)
    }
}

/// The `sovereign.dev/serve` (or `eval`) label of a declaration's pods:
/// what its Deployment selects and the flow policies name.
pub(crate) fn workload_label(name: &str) -> String {
    label_value(&name.replace('/', "."))
}

/// A label value: at most 63 characters, starting and ending with a letter
/// or digit (the full text is in the annotation).
pub(crate) fn label_value(text: &str) -> String {
    let cut: String = text.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

/// An object's name: the RFC 1123 label of `text`, or when that is longer
/// than 63 characters, its start and a hash of the whole: two long names
/// must not become one object.
pub(crate) fn object_name(text: &str) -> String {
    let full = sovereign_helm::label(text);
    if full == text && full.len() <= 63 {
        return full;
    }
    // Cut, or characters replaced (`a.b` and `a-b` would meet): a hash keeps it unique.
    format!("{}-{:012x}", full[..full.len().min(50)].trim_end_matches('-'), fnv(text) & 0xffff_ffff_ffff)
}

/// FNV-1a: stable across builds and platforms.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The kinds sovereign writes, as static words: an intern key without an
/// allocation (other kinds are not interned).
fn kind_word(kind: &str) -> Option<&'static str> {
    const KINDS: &[&str] = &[
        "",
        "Namespace",
        "NetworkPolicy",
        "ConfigMap",
        "Node",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Secret",
        "HelmChart",
        "ExternalSecret",
        "DaemonSet",
        "ServiceAccount",
    ];
    KINDS.iter().find(|k| **k == kind).copied()
}
