//! Inventory labels and the annotation back to the spec: every object
//! sovereign writes can be found again (to prune what a spec no longer
//! declares) and traced to its declaration.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sovereign_desired::{Resource, ResourceId, Target};
use sovereign_model::Spec;

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
}

impl Context {
    pub(crate) fn new(spec: &Spec) -> Context {
        let fabric = spec.fabric.name.as_ref().map_or_else(|| Arc::from("fabric"), |n| n.qualified.clone());
        Context { fabric }
    }

    /// An object's `metadata`, with the inventory labels and, when it
    /// comes from a declaration, the annotation that says which.
    pub(crate) fn metadata(
        &self,
        name: &str,
        namespace: Option<&str>,
        declaration: Option<&Declaration>,
    ) -> Map<String, Value> {
        let mut labels = Map::new();
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        labels.insert(FABRIC_LABEL.into(), Value::from(&*self.fabric));
        let mut metadata = Map::new();
        metadata.insert("name".into(), name.into());
        if let Some(namespace) = namespace {
            metadata.insert("namespace".into(), namespace.into());
        }
        if let Some(declaration) = declaration {
            labels.insert(DECLARATION_LABEL.into(), declaration.label().into());
            metadata.insert("annotations".into(), json!({ DECLARATION_ANNOTATION: declaration.written() }));
        }
        metadata.insert("labels".into(), Value::Object(labels));
        metadata
    }

    /// A Kubernetes object as a resource of `site`.
    pub(crate) fn object(
        &self,
        site: &Arc<str>,
        api_version: &str,
        kind: &str,
        metadata: Map<String, Value>,
        rest: Map<String, Value>,
        declaration: Option<&Declaration>,
    ) -> Resource {
        let name = metadata.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let namespace = metadata.get("namespace").and_then(Value::as_str).map(Arc::from);
        let group = api_version.rsplit_once('/').map(|(group, _)| group);
        let id = ResourceId {
            target: Target::K3s,
            site: site.clone(),
            kind: match group {
                Some(group) => format!("{group}/{kind}").into(),
                None => kind.into(),
            },
            namespace,
            name: name.into(),
        };
        let mut body = Map::new();
        body.insert("apiVersion".into(), api_version.into());
        body.insert("kind".into(), kind.into());
        body.insert("metadata".into(), Value::Object(metadata));
        body.extend(rest);
        Resource::new(id, declaration.map(|d| Arc::from(d.written())), Value::Object(body))
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

/// A label value: at most 63 characters, starting and ending with a letter
/// or digit (the full text is in the annotation).
pub(crate) fn label_value(text: &str) -> String {
    let cut: String = text.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}
