//! Object schemas: strict validation and the list semantics server-side
//! apply needs.
//!
//! Built-in kinds use the Kubernetes OpenAPI that PyPI `kubernetes-validate`
//! ships (its `vX.Y.Z-local-strict/_definitions.json`, where every object
//! refuses unknown fields, as `fieldValidation=Strict` does). Custom
//! resources use their CRD's `openAPIV3Schema`, made strict the way the API
//! server prunes (an object schema with `properties` and without
//! `x-kubernetes-preserve-unknown-fields` accepts nothing else). The
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type` markers are what structured-merge-diff reads to
//! merge lists by key, as the real server does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::kinds::Kind;

/// The built-in definitions, if they were loaded.
pub struct Schemas {
    defs: Option<Arc<Map<String, Value>>>,
    /// Definition name per `group/version/Kind`.
    by_kind: HashMap<String, String>,
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// A point in a schema: a node, and the definitions its `$ref`s resolve in.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    value: &'a Value,
    defs: Option<&'a Map<String, Value>>,
}

impl<'a> Node<'a> {
    fn resolved(self) -> Node<'a> {
        let mut node = self;
        for _ in 0..32 {
            let Some(reference) = node.value.get("$ref").and_then(Value::as_str) else { break };
            let Some(target) = reference.rsplit('/').next().and_then(|name| node.defs?.get(name)) else { break };
            node = Node { value: target, defs: node.defs };
        }
        node
    }

    pub fn field(self, name: &str) -> Option<Node<'a>> {
        let node = self.resolved();
        let child = node.value.get("properties").and_then(|properties| properties.get(name));
        let child = child.or_else(|| node.value.get("additionalProperties").filter(|value| value.is_object()))?;
        Some(Node { value: child, defs: node.defs }.resolved())
    }

    pub fn items(self) -> Option<Node<'a>> {
        let node = self.resolved();
        Some(Node { value: node.value.get("items")?, defs: node.defs }.resolved())
    }

    pub fn list_type(self) -> ListType {
        let node = self.resolved();
        match node.value.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => ListType::Map(
                node.value
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
            ),
            Some("set") => ListType::Set,
            _ => ListType::Atomic,
        }
    }

    /// A map or struct replaced whole (`x-kubernetes-map-type: atomic`).
    pub fn atomic_map(self) -> bool {
        let node = self.resolved();
        node.value.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
    }
}

/// One reason an object is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `.spec.replicas`
    pub field: String,
    pub message: String,
    /// A field the schema does not know (the API server says 400, not 422).
    pub unknown: bool,
}

impl Schemas {
    pub fn none() -> Schemas {
        Schemas { defs: None, by_kind: HashMap::new(), compiled: Mutex::new(HashMap::new()) }
    }

    /// Reads `DIR/_definitions.json` (a `kubernetes-validate` strict folder).
    pub fn load(dir: &Path) -> Result<Schemas, String> {
        let path = dir.join("_definitions.json");
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut document: Value =
            serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let Some(Value::Object(defs)) = document.get_mut("$defs").map(Value::take) else {
            return Err(format!("{}: no $defs", path.display()));
        };
        let mut by_kind = HashMap::new();
        for (name, def) in &defs {
            for gvk in def.get("x-kubernetes-group-version-kind").and_then(Value::as_array).into_iter().flatten() {
                let part = |key: &str| gvk.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
                by_kind.insert(format!("{}/{}/{}", part("group"), part("version"), part("kind")), name.clone());
            }
        }
        Ok(Schemas { defs: Some(Arc::new(defs)), by_kind, compiled: Mutex::new(HashMap::new()) })
    }

    fn key(kind: &Kind) -> String {
        format!("{}/{}/{}", kind.group, kind.version, kind.kind)
    }

    /// The schema of a kind's objects, if known.
    pub fn node<'a>(&'a self, kind: &'a Kind) -> Option<Node<'a>> {
        if let Some(schema) = &kind.schema {
            return Some(Node { value: schema, defs: None });
        }
        let defs = self.defs.as_deref()?;
        let name = self.by_kind.get(&Self::key(kind))?;
        Some(Node { value: defs.get(name)?, defs: Some(defs) })
    }

    /// Checks an object against its kind's schema; no schema, no check.
    pub fn validate(&self, kind: &Kind, object: &Value) -> Result<Vec<Violation>, String> {
        let Some(validator) = self.validator(kind)? else { return Ok(Vec::new()) };
        // Most objects are valid: the check that collects no errors is the cheaper one.
        if validator.is_valid(object) {
            return Ok(Vec::new());
        }
        Ok(validator
            .iter_errors(object)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                let field: String = pointer.split('/').skip(1).map(|part| format!(".{part}")).collect();
                let (unknown, message) = match error.kind() {
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                        (true, format!("unknown field {}", quoted(unexpected)))
                    }
                    _ => (false, error.to_string()),
                };
                Violation { field, message, unknown }
            })
            .collect())
    }

    fn validator(&self, kind: &Kind) -> Result<Option<Arc<jsonschema::Validator>>, String> {
        let key = Self::key(kind);
        if let Some(validator) = self.compiled.lock().map_err(|_| "schema cache poisoned")?.get(&key) {
            return Ok(Some(Arc::clone(validator)));
        }
        let schema = if let Some(schema) = &kind.schema {
            strict_crd_schema(schema)
        } else {
            let (Some(defs), Some(name)) = (&self.defs, self.by_kind.get(&key)) else { return Ok(None) };
            json!({"$defs": Value::Object(defs.as_ref().clone()), "$ref": format!("#/$defs/{name}")})
        };
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema)
            .map_err(|error| format!("the schema of {key} does not compile: {error}"))?;
        let validator = Arc::new(validator);
        self.compiled.lock().map_err(|_| "schema cache poisoned")?.insert(key, Arc::clone(&validator));
        Ok(Some(validator))
    }

    /// Forgets a custom resource's compiled schema (its CRD changed).
    pub fn forget(&self, kind: &Kind) {
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled.remove(&Self::key(kind));
        }
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|name| format!("\"{name}\"")).collect::<Vec<_>>().join(", ")
}

/// A CRD's OpenAPI v3 schema as the JSON Schema the server enforces:
/// unknown fields refused where it would prune them, `nullable` and
/// int-or-string spelled out.
fn strict_crd_schema(schema: &Value) -> Value {
    let mut schema = schema.clone();
    tighten(&mut schema, true);
    schema
}

fn tighten(schema: &mut Value, root: bool) {
    let Value::Object(map) = schema else { return };
    let preserve = map.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserve {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if root {
        // apiVersion, kind and metadata are the server's, whatever the schema says.
        if let Some(Value::Object(properties)) = map.get_mut("properties") {
            properties.entry("apiVersion").or_insert(json!({"type": "string"}));
            properties.entry("kind").or_insert(json!({"type": "string"}));
            properties.insert("metadata".into(), json!({"type": "object"}));
        }
    }
    if map.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) && !map.contains_key("type") {
        map.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
    }
    if map.get("nullable").and_then(Value::as_bool) == Some(true)
        && let Some(Value::String(kind)) = map.get("type")
    {
        let kind = kind.clone();
        map.insert("type".into(), json!([kind, "null"]));
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            for child in children.values_mut() {
                tighten(child, false);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            tighten(child, false);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(|child| tighten(child, false));
        }
    }
}
