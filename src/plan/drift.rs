//! Drift: how a live object differs from what sovereign applied, counting
//! only the fields sovereign owns.
//!
//! With server-side apply, the body sovereign applied is exactly the set of
//! fields its field manager owns. So the live object projected onto that
//! body's shape ([`project`]) is what those fields are now: fields the
//! server defaulted or a controller owns are not in the shape and make no
//! noise. Lists of named objects (containers, env, volumes, ports) are
//! matched by `name`, as the server merges them; other lists positionally,
//! as atomic lists are replaced whole.
//!
//! Architecture Invariant: pure; the live objects are read at the edge.

use serde_json::{Map, Value};

/// The live object's values at the paths of `applied` (a path the live
/// object lacks is left out).
#[must_use]
pub fn project(applied: &Value, live: &Value) -> Value {
    match (applied, live) {
        (Value::Object(shape), Value::Object(found)) => {
            let mut out = Map::new();
            for (key, part) in shape {
                if let Some(value) = found.get(key) {
                    out.insert(key.clone(), project(part, value));
                }
            }
            Value::Object(out)
        }
        (Value::Array(shape), Value::Array(found)) => {
            let named = |items: &[Value]| items.iter().all(|item| item.get("name").is_some_and(Value::is_string));
            if !shape.is_empty() && named(shape) && named(found) {
                // Matched by name, in the applied order; items others added are not ours.
                let items = shape
                    .iter()
                    .filter_map(|item| {
                        let twin = found.iter().find(|other| other.get("name") == item.get("name"))?;
                        Some(project(item, twin))
                    })
                    .collect();
                return Value::Array(items);
            }
            if shape.len() != found.len() {
                return live.clone();
            }
            Value::Array(shape.iter().zip(found).map(|(item, twin)| project(item, twin)).collect())
        }
        _ => live.clone(),
    }
}

/// The paths (`spec.replicas`) where the projection differs from what was
/// applied; empty when nothing drifted.
#[must_use]
pub fn drifted(applied: &Value, projected: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk(applied, projected, &mut String::new(), &mut paths);
    paths
}

fn walk(applied: &Value, projected: &Value, path: &mut String, paths: &mut Vec<String>) {
    match (applied, projected) {
        (Value::Object(a), Value::Object(p)) => {
            for (key, value) in a {
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match p.get(key) {
                    Some(other) => walk(value, other, path, paths),
                    None => paths.push(format!("{path} (removed)")),
                }
                path.truncate(length);
            }
        }
        (Value::Array(a), Value::Array(p)) if a.len() == p.len() => {
            for (index, (value, other)) in a.iter().zip(p).enumerate() {
                let length = path.len();
                let label = value.get("name").and_then(Value::as_str).map_or_else(|| index.to_string(), str::to_owned);
                path.push_str(&format!("[{label}]"));
                walk(value, other, path, paths);
                path.truncate(length);
            }
        }
        (a, p) if a == p => {}
        // A number the server wrote as another JSON number of the same value.
        (Value::Number(a), Value::Number(p)) if a.as_f64() == p.as_f64() => {}
        _ => paths.push(path.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaulted_and_foreign_fields_are_not_drift() {
        let applied =
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "vllm", "image": "a"}]}}}});
        let live = json!({"spec": {"replicas": 1, "revisionHistoryLimit": 10, "template": {"spec": {
            "containers": [{"name": "sidecar", "image": "s"}, {"name": "vllm", "image": "a", "terminationMessagePath": "/dev/termination-log"}]}}},
            "status": {"replicas": 1}});
        let projected = project(&applied, &live);
        assert_eq!(projected, applied);
        assert!(drifted(&applied, &projected).is_empty());
    }

    #[test]
    fn a_changed_or_removed_owned_field_is_drift() {
        let applied = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}});
        let live = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 5}});
        let projected = project(&applied, &live);
        assert_eq!(drifted(&applied, &projected), vec!["metadata.labels.b (removed)", "spec.replicas"]);
    }
}
