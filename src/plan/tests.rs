use serde_json::json;
use sovereign_desired::Resource;

use super::*;
use crate::state::{Live, Record};

fn id(kind: &str, namespace: Option<&str>, name: &str) -> ResourceId {
    ResourceId {
        target: Target::K3s,
        site: "fra".into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
    }
}

fn resource(id: ResourceId, declaration: Option<&str>, body: &Value, deps: &[ResourceId]) -> Resource {
    let mut resource = Resource::new(id, declaration.map(Into::into), body);
    for dep in deps {
        resource.depends_on.insert(dep.clone());
    }
    resource
}

/// The state after applying exactly `desired`.
fn applied(desired: &DesiredState) -> StateDocument {
    let mut state = StateDocument::new("lab");
    state.serial = 1;
    for (id, r) in &desired.resources {
        state.resources.insert(
            id.clone(),
            Record {
                declaration: r.declaration.clone(),
                patch: r.patch,
                depends_on: r.depends_on.iter().cloned().collect(),
                content_sha256: r.hash.clone(),
                applied: serde_json::value::RawValue::from_string(r.json.to_string()).unwrap(),
                live: Some(Live { uid: Some(format!("uid-{}", id.name)), resource_version: Some("1".into()) }),
                applied_at: "2026-12-02T00:00:00Z".into(),
                unready: false,
                gate_override: None,
            },
        );
    }
    state
}

fn deployment(node: &str, replicas: u64, slice: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("chat-{node}"), "namespace": "kinetic"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"sovereign.dev/serve": "chat", "sovereign.dev/node": node}},
            "template": {"metadata": {"labels": {"sovereign.dev/serve": "chat", "sovereign.dev/node": node}},
                "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [{"name": "vllm", "image": image, "resources": {"limits": {slice: 1}}}]}}}})
}

fn policy(name: &str, why: &str) -> Value {
    json!({"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "kinetic", "annotations": {"sovereign.dev/why": why}}})
}

fn mig(layout: &str) -> Value {
    let config = format!(
        "mig-configs:\n  sovereign-gpu-01:\n  - devices:\n    - 0\n    mig-devices:\n      \"{layout}\": 2\n    mig-enabled: true\nversion: v1\n"
    );
    json!({"kind": "ConfigMap", "metadata": {"name": "sovereign-mig-parted-config", "namespace": "gpu-operator"}, "data": {"config.yaml": config}})
}

fn fabric(replicas: u64, second_node: bool, layout: &str, flow: bool) -> DesiredState {
    let ns = id("Namespace", None, "kinetic");
    let mut desired = DesiredState::default();
    desired.add(resource(ns.clone(), None, &json!({"kind": "Namespace", "metadata": {"name": "kinetic"}}), &[]));
    desired.add(resource(
        id("ConfigMap", Some("gpu-operator"), "sovereign-mig-parted-config"),
        None,
        &mig(layout),
        &[],
    ));
    let serve = Some("serve \"chat\"");
    desired.add(resource(
        id("apps/Deployment", Some("kinetic"), "chat-gpu-01"),
        serve,
        &deployment("gpu-01", replicas, "nvidia.com/mig-3g.40gb", "vllm:1"),
        std::slice::from_ref(&ns),
    ));
    if second_node {
        desired.add(resource(
            id("apps/Deployment", Some("kinetic"), "chat-gpu-02"),
            serve,
            &deployment("gpu-02", 1, "nvidia.com/gpu", "vllm:1"),
            std::slice::from_ref(&ns),
        ));
    }
    if flow {
        desired.add(resource(
            id("networking.k8s.io/NetworkPolicy", Some("kinetic"), "to-store"),
            None,
            &policy("to-store", "serve \"chat\" reads store \"docs\""),
            std::slice::from_ref(&ns),
        ));
    }
    desired.add(resource(
        id("PersistentVolumeClaim", Some("kinetic"), "weights"),
        None,
        &json!({"kind": "PersistentVolumeClaim"}),
        &[ns],
    ));
    desired
}

#[test]
fn nothing_applied_creates_everything_in_dependency_order() {
    let desired = fabric(2, false, "3g.40gb", true);
    let plan = plan("lab", &desired, None, Options::default());
    assert!(plan.changes.iter().all(|c| c.action == Action::Create));
    let position = |name: &str| plan.changes.iter().position(|c| &*c.id.name == name).unwrap();
    assert!(position("kinetic") < position("chat-gpu-01"));
    assert!(position("kinetic") < position("weights"));
    assert_eq!(render::summary(&plan), "5 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged");
}

#[test]
fn a_plan_against_what_was_applied_has_no_changes() {
    let desired = fabric(2, true, "3g.40gb", true);
    let plan = plan("lab", &desired, Some(&applied(&desired)), Options::default());
    assert!(!plan.has_changes(), "{}", render::human(&plan));
    assert!(plan.impact.is_empty());
    assert_eq!(
        render::human(&plan),
        "Plan for fabric \"lab\": 0 to create, 0 to update, 0 to replace, 0 to delete, 6 unchanged.\n"
    );
}

#[test]
fn an_edit_shows_exactly_its_changes_and_what_they_mean() {
    let before = fabric(2, true, "3g.40gb", true);
    let state = applied(&before);
    // Fewer replicas on gpu-01, gpu-02's group removed, another MIG layout, the flow gone,
    // and the claim no longer declared.
    let mut after = fabric(1, false, "2g.20gb", false);
    after.resources.retain(|id, _| &*id.name != "weights");
    let plan = plan("lab", &after, Some(&state), Options::default());
    let actions: Vec<(String, Action)> =
        plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| (c.id.name.to_string(), c.action)).collect();
    assert_eq!(
        actions,
        [
            ("sovereign-mig-parted-config".to_owned(), Action::Update),
            ("chat-gpu-01".to_owned(), Action::Update),
            // Deletes, ties in id order (`PersistentVolumeClaim` sorts before `apps/…`).
            ("weights".to_owned(), Action::Keep),
            ("chat-gpu-02".to_owned(), Action::Delete),
            ("to-store".to_owned(), Action::Delete),
        ]
    );
    let deployment = plan.changes.iter().find(|c| &*c.id.name == "chat-gpu-01").unwrap();
    assert_eq!(deployment.fields.len(), 1);
    assert_eq!(deployment.fields[0].path, "spec.replicas");
    let serve = &plan.impact.serves[0];
    assert_eq!((serve.capacity.before, serve.capacity.after), (3, 1));
    // gpu-01 goes 2 → 1 (rolling: 1 - 0 unavailable), gpu-02's 1 serves until it is pruned.
    assert_eq!(serve.capacity.during_at_least, 2);
    assert_eq!(plan.impact.flows.len(), 1);
    assert_eq!(plan.impact.flows[0].change, "removed");
    assert_eq!(plan.impact.mig.len(), 1);
    assert_eq!(plan.impact.mig[0].before.as_deref(), Some("GPU 0: 3g.40gb×2"));
    assert_eq!(plan.impact.mig[0].after.as_deref(), Some("GPU 0: 2g.20gb×2"));
    let text = render::human(&plan);
    for line in [
        "1 kept because it holds data",
        "spec.replicas: 2 → 1",
        "gpu-02: removed: its 1 replicas (nvidia.com/gpu: 1) stop",
        "flow removed on fra (to-store): serve \"chat\" reads store \"docs\"",
        "GPU 0: 3g.40gb×2 → GPU 0: 2g.20gb×2",
        "plan with --prune-data to delete it",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // With --prune-data the claim is deleted, and the delete comes before the namespace would be.
    let pruned = super::plan("lab", &after, Some(&state), Options { prune_data: true });
    let weights = pruned.changes.iter().find(|c| &*c.id.name == "weights").unwrap();
    assert_eq!(weights.action, Action::Delete);
    assert!(render::human(&pruned).contains("the volume's data are lost"));
}

#[test]
fn a_kept_claim_keeps_its_namespace() {
    let state = applied(&fabric(2, true, "3g.40gb", true));
    let plan = plan("lab", &DesiredState::default(), Some(&state), Options::default());
    let action = |name: &str| plan.changes.iter().find(|c| &*c.id.name == name).unwrap().action;
    assert_eq!(action("weights"), Action::Keep);
    assert_eq!(action("kinetic"), Action::Keep, "deleting the namespace would delete the claim");
    assert_eq!(action("chat-gpu-01"), Action::Delete);
}

#[test]
fn deletes_come_after_everything_else_and_before_what_they_depend_on() {
    let before = fabric(2, true, "3g.40gb", true);
    let state = applied(&before);
    let plan = plan("lab", &DesiredState::default(), Some(&state), Options { prune_data: true });
    let names: Vec<&str> = plan.changes.iter().map(|c| &*c.id.name).collect();
    let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(position("chat-gpu-01") < position("kinetic"), "{names:?}");
    assert!(position("weights") < position("kinetic"), "{names:?}");
    assert!(plan.changes.iter().all(|c| c.action == Action::Delete));
}

#[test]
fn the_plan_is_the_same_bytes_every_time() {
    let before = fabric(2, true, "3g.40gb", true);
    let state = applied(&before);
    let after = fabric(3, false, "1g.10gb", false);
    let basis = saved::Basis::new(Default::default(), Some(&state), false);
    let a = saved::to_json(&plan("lab", &after, Some(&state), Options::default()), &basis, Some(&after), None);
    let b = saved::to_json(&plan("lab", &after, Some(&state), Options::default()), &basis, Some(&after), None);
    assert_eq!(a, b);
    assert_eq!(
        render::human(&plan("lab", &after, Some(&state), Options::default())),
        render::human(&plan("lab", &after, Some(&state), Options::default()))
    );
}
