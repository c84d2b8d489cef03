//! The typed model read from a checked spec: what an emitter sees.

use std::path::Path;

use sovereign_check::{MemoryHost, Stdlib};
use sovereign_model::{
    ClusterKind, CollectorMode, Decl, Distance, KvCacheDtype, OnFail, SecretSource, Spec, StateBackend, Tier,
};

fn spec() -> Spec {
    let text = include_str!("every-kind.kdl");
    let (stdlib, _) = Stdlib::embedded();
    let mut host = MemoryHost::default();
    host.add("fabric.kdl", text);
    let checked = sovereign_check::check(Path::new("fabric.kdl"), text.into(), &host, &stdlib);
    checked.spec.expect("every-kind.kdl checks clean, so it has a model")
}

#[test]
fn sites_and_hardware_are_typed() {
    let spec = spec();
    let names: Vec<(&str, Tier)> = spec.sites.values().map(|s| (&*s.name.qualified, s.tier.value)).collect();
    assert_eq!(names, [("cloud", Tier::Cloud), ("bench", Tier::Server), ("field", Tier::Device)]);
    let bench = spec.sites.values().find(|s| s.name.text() == "bench").unwrap();
    assert_eq!(bench.cluster.as_ref().map(|c| c.kind.value), Some(ClusterKind::K3s));
    let cpu = &bench.nodes[1];
    assert_eq!((cpu.gpus.value, cpu.gpus.defaulted, cpu.mig.value), (0, true, false));
    let field = spec.sites.values().find(|s| s.name.text() == "field").unwrap();
    assert_eq!(field.registry.as_ref().map(|r| r.value.host()), Some("registry.bench.svc"));
    assert_eq!(&*field.fleets[0].name.qualified, "field/tablets");
    assert_eq!(
        spec.fabric.state.as_ref().map(|s| (s.backend.value, s.backend.defaulted)),
        Some((StateBackend::Local, true))
    );
}

#[test]
fn workloads_reference_by_typed_id() {
    let spec = spec();
    let (_, chat) = spec.serves.iter().next().unwrap();
    assert_eq!(chat.mig.as_ref().map(|m| m.value.to_string()).as_deref(), Some("3g.40gb"));
    assert_eq!((chat.replicas.value, chat.replicas.defaulted), (1, true));
    assert_eq!(chat.gpu_memory_utilization.value, 0.92);
    assert_eq!(chat.kv_cache_dtype.value, KvCacheDtype::Auto);
    assert_eq!(&*spec.models[chat.model.value].base.value, "llama-3.1-8b-instruct");
    let store = &spec.vectorstores[chat.uses[0].value];
    assert_eq!(store.collections[0].distance.value, Distance::Cosine);
    assert_eq!(store.replicas.value, 1);

    let (_, eval) = spec.evals.iter().next().unwrap();
    assert_eq!(eval.on_fail.value, OnFail::Block);
    let namespace = eval.runs_on.namespace.as_ref().expect("the relative reference resolved").value;
    assert_eq!(namespace.parent, eval.runs_on.temporal.value);
    assert_eq!(&*spec.namespace(namespace).name.qualified, "metabolism/evals");
    assert_eq!(spec.namespace(namespace).retention.value, 3 * 86_400_000);
    assert!(eval.schedule.as_ref().unwrap().value.can_fire());

    let (_, edge) = spec.edges.iter().next().unwrap();
    assert_eq!(&*spec.fleet(edge.fleet.value).name.qualified, "field/tablets");
    let fallback = edge.fallback.as_ref().unwrap();
    assert_eq!(fallback.when.value.to_string(), "confidence < 0.6");
    assert_eq!(spec.serves[fallback.serve.value].name.text(), "chat");

    let (_, observe) = spec.observes.iter().next().unwrap();
    assert_eq!(observe.collector.as_ref().map(|c| c.mode.value), Some(CollectorMode::DaemonSet));
    assert!(observe.ebpf.value && !observe.ebpf.defaulted);
    assert_eq!(observe.exports[0].endpoint.as_ref().map(|e| e.value.host()), Some("otel.bench.svc"));

    let (_, secret) = spec.secrets.iter().next().unwrap();
    assert_eq!(secret.from.value, SecretSource::Env("LOGFIRE_TOKEN".into()));
    assert_eq!(spec.decl(chat.item), Some(Decl::Serve(sovereign_model::Id::from_index(0))));
}

/// `Spec::depends_on` lists by hand the kinds that hold `depends-on`: held
/// here to the schema, so that a kind which gains `depends-on` there and
/// not in the list (its edges silently dropped from the graph) fails.
#[test]
fn every_kind_whose_schema_allows_depends_on_has_its_edges_in_the_model() {
    let (stdlib, _) = Stdlib::embedded();
    fn nested(def: &sovereign_check::schema::NodeDef, out: &mut Vec<String>) {
        for child in &def.children {
            if child.node.child("depends-on").is_some() {
                out.push(child.node.path.to_string());
            }
            nested(&child.node, out);
        }
    }
    let mut inner = Vec::new();
    stdlib.schema.kinds.iter().for_each(|kind| nested(kind, &mut inner));
    assert!(
        inner.is_empty(),
        "`depends-on` below a declaration ({inner:?}): `Spec::depends_on` reads top-level kinds only"
    );
    let kinds: Vec<&str> =
        stdlib.schema.kinds.iter().filter(|kind| kind.child("depends-on").is_some()).map(|kind| &*kind.name).collect();
    assert!(kinds.len() >= 8, "{kinds:?}");
    let base = include_str!("every-kind.kdl");
    for kind in kinds {
        // The kind's declaration in every-kind.kdl, made to depend on the secret.
        let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
        let at = lines
            .iter()
            .position(|line| line.starts_with(&format!("{kind} \"")))
            .unwrap_or_else(|| panic!("every-kind.kdl declares no {kind}"));
        if lines[at].ends_with('{') {
            lines.insert(at + 1, "    depends-on \"secret:logfire-token\"".into());
        } else {
            lines[at].push_str(" {\n    depends-on \"secret:logfire-token\"\n}");
        }
        let text = lines.join("\n");
        let mut host = MemoryHost::default();
        host.add("fabric.kdl", &text);
        let checked = sovereign_check::check(Path::new("fabric.kdl"), text.clone().into(), &host, &stdlib);
        let spec =
            checked.spec.as_ref().unwrap_or_else(|| panic!("{kind} with depends-on does not check clean:\n{text}"));
        let secret = spec.secrets.values().next().unwrap().item;
        // Each edge's declaration, by the kind the IR read it as.
        let found: Vec<&str> = spec
            .depends_on()
            .iter()
            .filter(|(_, to)| to.value == secret)
            .map(|(from, _)| &*checked.fabric.items[from.0 as usize].kind)
            .collect();
        assert_eq!(found, [kind], "the depends-on of {kind} is not among Spec::depends_on's edges");
    }
}
