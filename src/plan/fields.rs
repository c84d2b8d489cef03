//! Field-level differences between the body state recorded and the body a
//! build wants, which of them a target cannot change in place, and what
//! is redacted before any of it is shown.

use serde::Serialize;
use serde_json::Value;
use sovereign_desired::{ResourceId, Target};

/// A field that differs: `None` where it is absent on that side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// `spec.template.spec.containers[vllm].args`, `metadata.labels["app.kubernetes.io/name"]`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// What the plan writes for a value it must not show.
pub const REDACTED: &str = "(sensitive)";

/// The fields that differ between `before` and `after`, in key order; a
/// list of named objects (containers, ports, env) is matched by name, a
/// list of the same length item by item, any other list is one value. Secret values are [`REDACTED`].
#[must_use]
pub fn diff(id: &ResourceId, before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(&mut String::new(), Some(before), Some(after), &mut out);
    for change in &mut out {
        if redacted(id, &change.path) {
            for side in [&mut change.before, &mut change.after] {
                if side.is_some() {
                    *side = Some(Value::String(REDACTED.to_owned()));
                }
            }
        }
    }
    out
}

fn walk(path: &mut String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let len = path.len();
                push_key(path, key);
                walk(path, a.get(key), b.get(key), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if named(a) && named(b) => {
            let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
            let mut names: Vec<String> = a.iter().filter_map(name).collect();
            names.extend(b.iter().filter_map(name).filter(|n| !a.iter().any(|v| name(v).as_ref() == Some(n))));
            for key in names {
                let find = |list: &'_ [Value]| list.iter().find(|v| name(v).as_deref() == Some(&*key)).cloned();
                let (x, y) = (find(a), find(b));
                let len = path.len();
                path.push('[');
                path.push_str(&key);
                path.push(']');
                walk(path, x.as_ref(), y.as_ref(), out);
                path.truncate(len);
            }
        }
        // A list of the same length: item by item (one changed argument is one line).
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (at, (x, y)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{at}]"));
                walk(path, Some(x), Some(y), out);
                path.truncate(len);
            }
        }
        _ => out.push(FieldChange { path: path.clone(), before: before.cloned(), after: after.cloned() }),
    }
}

/// A list whose every item is an object with a distinct string `name`.
fn named(list: &[Value]) -> bool {
    let mut seen = std::collections::HashSet::new();
    !list.is_empty() && list.iter().all(|v| v.get("name").and_then(Value::as_str).is_some_and(|n| seen.insert(n)))
}

fn push_key(path: &mut String, key: &str) {
    if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') && !key.is_empty() {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).unwrap_or_default());
        path.push(']');
    }
}

/// Whether the value at `path` of `id`'s body must never be shown: what a
/// Secret holds. Builds never put a value there (apply fills `env:`
/// secrets without recording them), so this is a second line of defence.
#[must_use]
pub fn redacted(id: &ResourceId, path: &str) -> bool {
    id.target == Target::K3s
        && &*id.kind == "Secret"
        // The whole body (a body that did not parse is one change at the root).
        && (path.is_empty() || ["data", "stringData"].iter().any(|field| {
            path == *field || path.starts_with(&format!("{field}.")) || path.starts_with(&format!("{field}["))
        }))
}

/// The fields whose change the target refuses in place, so the resource is
/// replaced (deleted, then made again). Kubernetes' rules are from its
/// validation of updates (kubernetes/kubernetes `pkg/apis/apps/validation`
/// `ValidateDeploymentUpdate`, `ValidateStatefulSetUpdate`,
/// `ValidateDaemonSetUpdate`; `pkg/apis/batch/validation`
/// `ValidateJobSpecUpdate`; `pkg/apis/core/validation`
/// `ValidateServiceUpdate`, `ValidatePersistentVolumeClaimUpdate`,
/// `ValidateConfigMapUpdate`); Qdrant cannot change a collection's vector
/// size or distance (`PATCH /collections/{name}` takes neither).
#[must_use]
pub fn immutable_changes(id: &ResourceId, before: &Value, after: &Value) -> Vec<String> {
    let differs = |path: &str| before.pointer(path) != after.pointer(path);
    let field = |path: &str| path.trim_start_matches('/').replace('/', ".");
    let mut fixed: Vec<String> = Vec::new();
    let mut check = |paths: &[&str]| fixed.extend(paths.iter().filter(|p| differs(p)).map(|p| field(p)));
    match (id.target, &*id.kind) {
        (Target::K3s, "apps/Deployment" | "apps/DaemonSet" | "apps/ReplicaSet") => check(&["/spec/selector"]),
        (Target::K3s, "apps/StatefulSet") => {
            // Everything but these is forbidden to change ("updates to
            // statefulset spec for fields other than …").
            const MUTABLE: &[&str] = &[
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ];
            let keys =
                |v: &Value| v.get("spec").and_then(Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>());
            let mut all: Vec<String> = keys(before).unwrap_or_default();
            all.extend(keys(after).unwrap_or_default());
            all.sort();
            all.dedup();
            fixed.extend(
                all.into_iter()
                    .filter(|k| !MUTABLE.contains(&k.as_str()) && differs(&format!("/spec/{k}")))
                    .map(|k| format!("spec.{k}")),
            );
        }
        (Target::K3s, "batch/Job") => check(&["/spec/selector", "/spec/template", "/spec/completionMode"]),
        (Target::K3s, "Service") => check(&["/spec/clusterIP", "/spec/clusterIPs"]),
        (Target::K3s, "PersistentVolumeClaim") => {
            // Only the requested size may change (and grow) in place.
            let without_size = |v: &Value| {
                let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(requests) = spec.pointer_mut("/resources/requests").and_then(Value::as_object_mut) {
                    requests.remove("storage");
                }
                spec
            };
            if without_size(before) != without_size(after) {
                fixed.push("spec".to_owned());
            }
            let size =
                |v: &Value| v.pointer("/spec/resources/requests/storage").and_then(Value::as_str).map(str::to_owned);
            if let (Some(old), Some(new)) = (size(before), size(after))
                && bytes(&new).zip(bytes(&old)).is_some_and(|(new, old)| new < old)
            {
                fixed.push("spec.resources.requests.storage (a claim cannot shrink)".to_owned());
            }
        }
        (Target::K3s, "ConfigMap" | "Secret") if before.get("immutable") == Some(&Value::Bool(true)) => {
            check(&["/data", "/binaryData", "/stringData", "/immutable"]);
        }
        (Target::Qdrant, "collection") => check(&["/vectors"]),
        _ => {}
    }
    fixed
}

/// A Kubernetes quantity of bytes (`10Gi`, `500M`, `1024`), for comparing sizes.
fn bytes(quantity: &str) -> Option<f64> {
    const UNITS: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| quantity.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((quantity, 1.0));
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(target: Target, kind: &str) -> ResourceId {
        ResourceId { target, site: "fra".into(), kind: kind.into(), namespace: Some("ns".into()), name: "x".into() }
    }

    #[test]
    fn differences_are_listed_by_path_and_named_lists_are_matched_by_name() {
        let before = json!({"metadata": {"labels": {"app.kubernetes.io/name": "vllm", "a": "1"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "vllm", "args": ["--x", "1"], "image": "v1"}, {"name": "side", "image": "s"}]}}}});
        let after = json!({"metadata": {"labels": {"app.kubernetes.io/name": "vllm2", "a": "1"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "side", "image": "s"}, {"name": "vllm", "args": ["--x", "2"], "image": "v1"}]}}}, "new": true});
        let changes = diff(&id(Target::K3s, "apps/Deployment"), &before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                r#"metadata.labels["app.kubernetes.io/name"]"#,
                "new",
                "spec.replicas",
                "spec.template.spec.containers[vllm].args[1]"
            ]
        );
        assert_eq!(changes[1].before, None);
        assert_eq!(changes[2].after, Some(json!(3)));
        assert_eq!(changes[3].path, "spec.template.spec.containers[vllm].args[1]");
        assert_eq!(changes[3].after, Some(json!("2")));
        assert!(diff(&id(Target::K3s, "Service"), &before, &before).is_empty());
    }

    #[test]
    fn what_a_secret_holds_is_never_shown() {
        let canary = "canary-7f3a9c";
        let before = json!({"data": {"key": "b2xk"}, "stringData": {"k": canary}, "metadata": {"name": "s"}});
        let after = json!({"data": {"key": canary}, "metadata": {"name": "t"}});
        let changes = diff(&id(Target::K3s, "Secret"), &before, &after);
        let text = serde_json::to_string(&changes).unwrap();
        assert!(!text.contains(canary) && !text.contains("b2xk"), "{text}");
        assert_eq!(changes.len(), 3, "{text}");
        assert!(text.contains("metadata.name"));
    }

    #[test]
    fn fields_a_target_cannot_change_in_place_make_a_replace() {
        let k3s = |kind| id(Target::K3s, kind);
        let d1 = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 1}});
        let d2 = json!({"spec": {"selector": {"matchLabels": {"a": "2"}}, "replicas": 1}});
        assert_eq!(immutable_changes(&k3s("apps/Deployment"), &d1, &d2), ["spec.selector"]);
        let replicas = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 4}});
        assert!(immutable_changes(&k3s("apps/Deployment"), &d1, &replicas).is_empty());
        let s1 = json!({"spec": {"replicas": 1, "serviceName": "pg", "volumeClaimTemplates": [{"size": 1}], "template": {}}});
        let s2 = json!({"spec": {"replicas": 2, "serviceName": "pg", "volumeClaimTemplates": [{"size": 2}], "template": {"x": 1}}});
        assert_eq!(immutable_changes(&k3s("apps/StatefulSet"), &s1, &s2), ["spec.volumeClaimTemplates"]);
        let p1 = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}});
        let grow = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}});
        let shrink = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}});
        assert!(immutable_changes(&k3s("PersistentVolumeClaim"), &p1, &grow).is_empty());
        assert_eq!(immutable_changes(&k3s("PersistentVolumeClaim"), &p1, &shrink).len(), 1);
        let c1 = json!({"immutable": true, "data": {"a": "1"}});
        let c2 = json!({"immutable": true, "data": {"a": "2"}});
        assert_eq!(immutable_changes(&k3s("ConfigMap"), &c1, &c2), ["data"]);
        assert!(
            immutable_changes(&k3s("ConfigMap"), &json!({"data": {"a": "1"}}), &json!({"data": {"a": "2"}})).is_empty()
        );
        let q1 = json!({"vectors": {"size": 768, "distance": "Cosine"}});
        let q2 = json!({"vectors": {"size": 1024, "distance": "Cosine"}});
        assert_eq!(immutable_changes(&id(Target::Qdrant, "collection"), &q1, &q2), ["vectors"]);
    }
}
