//! Server-side apply's field sets, as structured-merge-diff keeps them.
//!
//! A field set is the set of paths a manager owns. A path element is a
//! field (`f:name`), an item of a list keyed by its map keys
//! (`k:{"name":"vllm"}`), an item of a set-list by its value (`v:"a"`), or
//! nothing else: a list without a list type is atomic and owned whole, as
//! the real server treats it. `managedFields[].fieldsV1` is this set as a
//! tree (https://kubernetes.io/docs/reference/using-api/server-side-apply/).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::schema::{ListType, Node};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Field(String),
    /// The canonical JSON of the item's keys (`{"name":"vllm"}`).
    Key(String),
    /// The canonical JSON of a set item.
    Value(String),
}

pub type Path = Vec<Element>;
pub type FieldSet = BTreeSet<Path>;

/// Metadata the server owns: never part of anyone's field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The fields an object (an applied configuration) sets. `status` is left
/// out when the kind has a status subresource (`with_status` false).
pub fn set_of(object: &Value, schema: Option<Node<'_>>, with_status: bool) -> FieldSet {
    let mut set = FieldSet::new();
    let Value::Object(map) = object else { return set };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "status" if !with_status => {}
            "metadata" => {
                let Value::Object(metadata) = value else { continue };
                for (field, value) in metadata.iter().filter(|(field, _)| !SERVER_METADATA.contains(&field.as_str())) {
                    let node = schema.and_then(|node| node.field("metadata")).and_then(|node| node.field(field));
                    let mut path = vec![Element::Field("metadata".into()), Element::Field(field.clone())];
                    walk(value, node, &mut path, &mut set);
                }
            }
            _ => {
                let mut path = vec![Element::Field(key.clone())];
                walk(value, schema.and_then(|node| node.field(key)), &mut path, &mut set);
            }
        }
    }
    set
}

fn walk(value: &Value, schema: Option<Node<'_>>, path: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() && !schema.is_some_and(Node::atomic_map) => {
            for (key, child) in map {
                path.push(Element::Field(key.clone()));
                walk(child, schema.and_then(|node| node.field(key)), path, set);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match schema.map(Node::list_type) {
            Some(ListType::Map(keys)) if !keys.is_empty() => {
                let items_schema = schema.and_then(Node::items);
                for item in items {
                    path.push(Element::Key(key_of(item, &keys)));
                    set.insert(path.clone());
                    walk(item, items_schema, path, set);
                    path.pop();
                }
            }
            Some(ListType::Set) => {
                for item in items {
                    path.push(Element::Value(item.to_string()));
                    set.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                set.insert(path.clone());
            }
        },
        _ => {
            set.insert(path.clone());
        }
    }
}

/// The canonical key of a list item: its key fields, sorted.
pub fn key_of(item: &Value, keys: &[String]) -> String {
    let mut key = Map::new();
    for name in keys {
        if let Some(value) = item.get(name) {
            key.insert(name.clone(), value.clone());
        }
    }
    Value::Object(key).to_string()
}

/// The value at a path, if the object has it.
pub fn get<'v>(object: &'v Value, path: &[Element], schema: Option<Node<'_>>) -> Option<&'v Value> {
    let mut value = object;
    let mut node = schema;
    for element in path {
        match element {
            Element::Field(name) => {
                node = node.and_then(|node| node.field(name));
                value = value.get(name)?;
            }
            Element::Key(key) => {
                let keys = keys_of(node);
                node = node.and_then(Node::items);
                value = value.as_array()?.iter().find(|item| key_of(item, &keys) == *key)?;
            }
            Element::Value(text) => {
                value = value.as_array()?.iter().find(|item| item.to_string() == *text)?;
            }
        }
    }
    Some(value)
}

fn keys_of(node: Option<Node<'_>>) -> Vec<String> {
    match node.map(Node::list_type) {
        Some(ListType::Map(keys)) => keys,
        _ => Vec::new(),
    }
}

/// Removes the value at a path (an item, for a key or value element), and
/// then any object the removal left empty, up to the top.
pub fn remove(object: &mut Value, path: &[Element], schema: Option<Node<'_>>) {
    if path.is_empty() {
        return;
    }
    remove_in(object, path, schema);
}

/// Returns whether `value` was left empty by the removal.
fn remove_in(value: &mut Value, path: &[Element], node: Option<Node<'_>>) -> bool {
    let (first, rest) = (&path[0], &path[1..]);
    match first {
        Element::Field(name) => {
            let Some(map) = value.as_object_mut() else { return false };
            if rest.is_empty() {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name)
                && remove_in(child, rest, node.and_then(|node| node.field(name)))
            {
                map.remove(name);
            }
            map.is_empty()
        }
        Element::Key(key) => {
            let keys = keys_of(node);
            let Some(items) = value.as_array_mut() else { return false };
            let Some(index) = items.iter().position(|item| key_of(item, &keys) == *key) else { return false };
            if rest.is_empty() {
                items.remove(index);
                return items.is_empty();
            }
            // An item keeps its key fields: removing a field never removes the item.
            remove_in(&mut items[index], rest, node.and_then(Node::items));
            false
        }
        Element::Value(text) => {
            let Some(items) = value.as_array_mut() else { return false };
            items.retain(|item| *item.to_string() != **text);
            items.is_empty()
        }
    }
}

/// Merges an applied configuration into an object: maps field by field,
/// keyed lists item by item, set-lists as a union, the rest replaced.
pub fn merge(into: &mut Value, config: &Value, node: Option<Node<'_>>) {
    match (into, config) {
        (Value::Object(target), Value::Object(source)) if !node.is_some_and(Node::atomic_map) => {
            for (key, value) in source {
                let child = node.and_then(|node| node.field(key));
                match target.get_mut(key) {
                    Some(existing) => merge(existing, value, child),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(source)) => match node.map(Node::list_type) {
            Some(ListType::Map(keys)) if !keys.is_empty() => {
                let items = node.and_then(Node::items);
                for item in source {
                    let key = key_of(item, &keys);
                    match target.iter_mut().find(|existing| key_of(existing, &keys) == key) {
                        Some(existing) => merge(existing, item, items),
                        None => target.push(item.clone()),
                    }
                }
            }
            Some(ListType::Set) => {
                for item in source {
                    if !target.contains(item) {
                        target.push(item.clone());
                    }
                }
            }
            _ => *target = source.clone(),
        },
        (target, source) => *target = source.clone(),
    }
}

/// A field set as `fieldsV1`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut map = &mut root;
        for element in path {
            let entry = map.entry(label(element)).or_insert_with(|| Value::Object(Map::new()));
            map = entry.as_object_mut().expect("fieldsV1 nodes are objects");
        }
        if matches!(path.last(), Some(Element::Key(_))) {
            map.insert(".".into(), Value::Object(Map::new()));
        }
    }
    Value::Object(root)
}

fn label(element: &Element) -> String {
    match element {
        Element::Field(name) => format!("f:{name}"),
        Element::Key(key) => format!("k:{key}"),
        Element::Value(value) => format!("v:{value}"),
    }
}

/// `fieldsV1` read back; an element it cannot read ends that branch.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let mut path = Path::new();
    read_tree(tree, &mut path, &mut set);
    set
}

fn read_tree(tree: &Value, path: &mut Path, set: &mut FieldSet) {
    let Value::Object(map) = tree else { return };
    for (label, child) in map {
        if label == "." {
            set.insert(path.clone());
            continue;
        }
        let element = match label.split_at_checked(2) {
            Some(("f:", name)) => Element::Field(name.to_owned()),
            Some(("k:", key)) => Element::Key(canonical(key)),
            Some(("v:", value)) => Element::Value(canonical(value)),
            _ => continue,
        };
        path.push(element);
        if child.as_object().is_some_and(Map::is_empty) {
            set.insert(path.clone());
        } else {
            read_tree(child, path, set);
        }
        path.pop();
    }
}

fn canonical(json: &str) -> String {
    serde_json::from_str::<Value>(json).map(|value| value.to_string()).unwrap_or_else(|_| json.to_owned())
}

/// `.spec.template.spec.containers[name="vllm"].image`, as the server's
/// conflict messages print a path.
pub fn display(path: &[Element]) -> String {
    let mut text = String::new();
    for element in path {
        match element {
            Element::Field(name) => {
                text.push('.');
                text.push_str(name);
            }
            Element::Key(key) => {
                let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let inner: Vec<String> = fields.iter().map(|(name, value)| format!("{name}={value}")).collect();
                text.push_str(&format!("[{}]", inner.join(",")));
            }
            Element::Value(value) => text.push_str(&format!("[{value}]")),
        }
    }
    text
}
