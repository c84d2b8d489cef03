//! Property tests of the K3s target on random fabrics (random GPU nodes,
//! serves of random shapes and replica counts, vector stores they use, an
//! optional collector): the build is deterministic, every dependency it
//! names is built, it has no cycle, and every replica placement made has
//! exactly one pod template asking for its slice on its node.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use sovereign_analyze::placement::Devices;
use sovereign_check::{MemoryHost, Stdlib};
use sovereign_desired::Target;

#[derive(Clone, Debug)]
struct Serve {
    mig: Option<&'static str>,
    gpus: u32,
    replicas: u32,
    uses: bool,
}

fn fabric() -> impl Strategy<Value = (Vec<(u32, bool)>, Vec<Serve>, bool)> {
    let nodes = prop::collection::vec((1u32..9, any::<bool>()), 1..5);
    let serve = (
        prop::option::of(prop::sample::select(&["1g.10gb", "2g.20gb", "3g.40gb", "7g.80gb"][..])),
        1u32..3,
        1u32..6,
        any::<bool>(),
    )
        .prop_map(|(mig, gpus, replicas, uses)| Serve { mig, gpus, replicas, uses });
    (nodes, prop::collection::vec(serve, 1..8), any::<bool>())
}

fn spec(nodes: &[(u32, bool)], serves: &[Serve], observe: bool) -> String {
    let mut out = String::from(
        "fabric \"prop\" {\n    residency \"eu\"\n}\n\
         model \"small\" base=\"llama-3.2-1b-instruct\" dtype=\"bf16\" source=\"pvc://weights/small\"\n\
         dataset \"docs\" classification=\"internal\" residency=\"eu\"\n\
         site \"fra\" tier=\"server\" region=\"eu-central\" {\n    cluster kind=\"k3s\" context=\"fra\"\n",
    );
    for (n, (gpus, mig)) in nodes.iter().enumerate() {
        let _ = writeln!(out, "    node \"gpu-{n}\" gpu=\"h100-80gb\" gpus={gpus} mig=#{mig}");
    }
    out.push_str("}\nvectorstore \"kb\" site=\"fra\" {\n    collection \"docs\" dims=768 distance=\"cosine\"\n    storage \"10Gi\"\n}\n");
    for (i, serve) in serves.iter().enumerate() {
        let shape = match serve.mig {
            Some(profile) => format!("mig \"{profile}\""),
            None => format!("gpus {}", serve.gpus),
        };
        let uses = if serve.uses { "\n    uses \"kb\"" } else { "" };
        let _ = writeln!(
            out,
            "serve \"s{i}\" model=\"small\" site=\"fra\" {{\n    {shape}\n    replicas {}\n    max-model-len 4096{uses}\n}}",
            serve.replicas
        );
    }
    if observe {
        out.push_str(
            "observe \"autopilot\" {\n    export \"otlp\" endpoint=\"http://lgtm.observability.svc:4318\"\n}\n",
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn builds_are_sound_and_ask_for_every_placed_slice((nodes, serves, observe) in fabric()) {
        let text = spec(&nodes, &serves, observe);
        let (stdlib, _) = Stdlib::embedded();
        let mut host = MemoryHost::default();
        host.add(Path::new("fabric.kdl"), text.clone());
        let compiled = sovereign_analyze::compile(&stdlib, Path::new("fabric.kdl"), text.clone().into_bytes(), &host);
        // Fabrics that do not fit are errors, and nothing is built from them.
        let (Some(spec), Some(analysis)) = (compiled.spec.as_ref(), compiled.analysis.as_ref()) else { return Ok(()) };
        if compiled.has_errors() {
            return Ok(());
        }
        let state = sovereign_k3s::emit(spec, analysis, &compiled.catalog);
        prop_assert!(state.problems().is_empty(), "{:?}\n{text}", state.problems());
        let again = sovereign_k3s::emit(spec, analysis, &compiled.catalog);
        let hashes = |s: &sovereign_desired::DesiredState| s.resources.iter().map(|(id, r)| (id.clone(), r.hash.clone())).collect::<Vec<_>>();
        prop_assert_eq!(hashes(&state), hashes(&again));
        // (serve, node) → what its Deployment asks for, and its replicas.
        let mut asked: BTreeMap<(String, String), (String, u64, u64)> = BTreeMap::new();
        for resource in state.resources.values().filter(|r| r.id.target == Target::K3s && &*r.id.kind == "apps/Deployment") {
            let body = resource.body();
            let pod = &body["spec"]["template"];
            let serve = pod["metadata"]["labels"]["sovereign.dev/serve"].as_str().unwrap().to_owned();
            let node = pod["spec"]["nodeSelector"]["kubernetes.io/hostname"].as_str().unwrap().to_owned();
            let limits = pod["spec"]["containers"][0]["resources"]["limits"].as_object().unwrap();
            prop_assert_eq!(limits.len(), 1);
            let (resource_name, count) = limits.iter().next().unwrap();
            let replicas = body["spec"]["replicas"].as_u64().unwrap();
            prop_assert!(asked.insert((serve, node), (resource_name.clone(), count.as_u64().unwrap(), replicas)).is_none(), "two templates for one (serve, node)");
        }
        let mut placed: BTreeMap<(String, String), (String, u64, u64)> = BTreeMap::new();
        for plan in &analysis.serves {
            let name = spec.serves[plan.serve].name.qualified.to_string();
            for p in &plan.placements {
                let (resource, count) = match &p.devices {
                    Devices::Mig { profile, .. } => (format!("nvidia.com/mig-{profile}"), 1),
                    Devices::Gpus { indices } => ("nvidia.com/gpu".to_owned(), indices.len() as u64),
                    Devices::Tpu { .. } => continue,
                };
                let entry = placed.entry((name.clone(), p.node.to_string())).or_insert((resource.clone(), count, 0));
                prop_assert_eq!(&entry.0, &resource);
                entry.2 += 1;
            }
        }
        prop_assert_eq!(asked, placed, "{}", text);
    }
}

/// Two observes asking for eBPF: one agent per node (a second would
/// instrument every process twice), and the build says which one runs.
#[test]
fn a_second_ebpf_observe_gets_no_second_agent_and_is_said() {
    let mut text = spec(&[(1, false)], &[Serve { mig: None, gpus: 1, replicas: 1, uses: false }], false);
    for name in ["a", "b"] {
        text.push_str(&format!(
            "observe \"{name}\" {{\n    ebpf #true\n    export \"otlp\" endpoint=\"http://lgtm.observability.svc:4318\"\n}}\n"
        ));
    }
    let (stdlib, _) = Stdlib::embedded();
    let mut host = MemoryHost::default();
    host.add(Path::new("fabric.kdl"), text.clone());
    let compiled = sovereign_analyze::compile(&stdlib, Path::new("fabric.kdl"), text.clone().into_bytes(), &host);
    assert!(!compiled.has_errors(), "{text}");
    let (spec, analysis) = (compiled.spec.as_ref().unwrap(), compiled.analysis.as_ref().unwrap());
    let state = sovereign_k3s::emit(spec, analysis, &compiled.catalog);
    assert!(state.problems().is_empty(), "{:?}", state.problems());
    let agents = state.resources.values().filter(|r| &*r.id.kind == "apps/DaemonSet").count();
    assert_eq!(agents, 1);
    assert!(
        state.assumptions.iter().any(|a| a.contains("observe \"b\" also asks for `ebpf`")),
        "{:?}",
        state.assumptions
    );
}
