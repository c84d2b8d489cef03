//! Property tests of the analysis on random fabrics, each result checked by
//! a verifier written independently of the placement code (it re-derives
//! the MIG rules from the catalog tables):
//! - placement never over-commits a GPU, never overlaps MIG slices, never
//!   uses an illegal start, a profile more often than allowed, or more than
//!   7 compute slices; whole GPUs are never also partitioned;
//! - a serve that did not fully fit really has no room left anywhere it may go;
//! - waves respect every edge and are as few as the graph allows;
//! - the same spec gives the same analysis.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use sovereign_analyze::placement::{Devices, Shape};
use sovereign_analyze::{Analysis, analyze};
use sovereign_catalog::Catalog;
use sovereign_check::{EmptyHost, Schema, Stdlib};

#[derive(Clone, Debug)]
struct Node {
    gpu: &'static str,
    gpus: u32,
    mig: bool,
}

#[derive(Clone, Debug)]
enum ServeShape {
    Mig(&'static str),
    Gpus(u32),
}

#[derive(Clone, Debug)]
struct Serve {
    site: Option<usize>,
    shape: ServeShape,
    replicas: u32,
    depends_on: Option<usize>,
}

const GPUS: &[&str] = &["h100-80gb", "h200", "a100-40gb", "a100-80gb", "l40s"];
const PROFILES: &[&str] =
    &["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb", "1g.18gb", "3g.71gb", "1g.5gb", "3g.20gb"];

fn node() -> impl Strategy<Value = Node> {
    // MIG only where the GPU has it (the checker refuses it on an L40S).
    (prop::sample::select(GPUS), 0u32..5, any::<bool>()).prop_map(|(gpu, gpus, mig)| Node {
        gpu,
        gpus,
        mig: mig && gpu != "l40s",
    })
}

fn serve(sites: usize) -> impl Strategy<Value = Serve> {
    let shape = prop_oneof![
        prop::sample::select(PROFILES).prop_map(ServeShape::Mig),
        prop::sample::select(&[1u32, 2, 4][..]).prop_map(ServeShape::Gpus)
    ];
    // Tensor-parallel degrees that divide the model's 32 heads.
    (prop::option::of(0..sites), shape, 1u32..6, prop::option::of(0usize..8))
        .prop_map(|(site, shape, replicas, depends_on)| Serve { site, shape, replicas, depends_on })
}

fn fabric() -> impl Strategy<Value = (Vec<Vec<Node>>, Vec<Serve>)> {
    prop::collection::vec(prop::collection::vec(node(), 0..4), 1..4).prop_flat_map(|sites| {
        let n = sites.len();
        (Just(sites), prop::collection::vec(serve(n), 0..8))
    })
}

/// The spec text of a random fabric. Small models (Llama 3.2 1B, 4K
/// context) fit every slice, so what is exercised is the geometry.
fn spec(sites: &[Vec<Node>], serves: &[Serve]) -> String {
    let mut out = String::from("fabric \"p\" { residency \"eu\"; }\nmodel \"m\" base=\"llama-3.2-1b-instruct\"\n");
    for (s, nodes) in sites.iter().enumerate() {
        let _ = writeln!(
            out,
            "site \"s{s}\" tier=\"server\" region=\"eu-central\" {{\n    cluster kind=\"k3s\" context=\"s{s}\""
        );
        for (n, node) in nodes.iter().enumerate() {
            let _ = writeln!(out, "    node \"n{n}\" gpu=\"{}\" gpus={} mig=#{}", node.gpu, node.gpus, node.mig);
        }
        out.push_str("}\n");
    }
    out.push_str("vectorstore \"v\" tier=\"server\"\n");
    for (i, serve) in serves.iter().enumerate() {
        let site = serve.site.map(|s| format!(" site=\"s{s}\"")).unwrap_or_default();
        let _ = writeln!(
            out,
            "serve \"x{i}\" model=\"m\"{site} {{\n    replicas {}\n    max-model-len 4096\n    uses \"v\"",
            serve.replicas
        );
        match serve.shape {
            ServeShape::Mig(profile) => {
                let _ = writeln!(out, "    mig \"{profile}\"");
            }
            ServeShape::Gpus(n) => {
                let _ = writeln!(out, "    gpus {n}");
            }
        }
        // Only earlier serves: explicit ordering never makes a cycle here.
        if let Some(d) = serve.depends_on.filter(|&d| d < i) {
            let _ = writeln!(out, "    depends-on \"serve:x{d}\"");
        }
        out.push_str("}\n");
    }
    out
}

fn run(text: &str) -> (Analysis, Schema) {
    let (stdlib, _) = Stdlib::embedded();
    let checked = sovereign_check::check(Path::new("p.kdl"), text.as_bytes().to_vec(), &EmptyHost, &stdlib);
    let errors: Vec<String> = checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
    assert!(errors.is_empty(), "the generated spec must check clean: {errors:?}\n{text}");
    let spec = checked.spec.as_ref().expect("a spec that checks clean has a model");
    (analyze(spec, &stdlib.schema), stdlib.schema)
}

/// Memory slices an instance of `profile` occupies from `start`, re-derived from the catalog table.
fn slices(catalog: &Catalog, model: &str, profile: &str, start: u32) -> Result<Vec<u32>, String> {
    let p = catalog.gpus[model].mig.iter().find(|p| p.name == profile).ok_or(format!("{model} has no {profile}"))?;
    if !p.starts.contains(&start) {
        return Err(format!("{profile} may not start at {start} on {model} (legal: {:?})", p.starts));
    }
    Ok((start..start + p.size).collect())
}

/// Site, node, GPU index.
type GpuKey = (usize, String, u32);
/// Held whole; MIG instances as (profile, start).
type GpuUse = (bool, Vec<(String, u32)>);

fn verify_placement(analysis: &Analysis, catalog: &Catalog, serves: &[Serve]) -> Result<(), String> {
    let mut taken: BTreeMap<GpuKey, GpuUse> = BTreeMap::new();
    for plan in &analysis.serves {
        if plan.placements.len() > plan.replicas as usize {
            return Err(format!("{} placed more replicas than asked", plan.name));
        }
        for p in &plan.placements {
            match (&p.devices, &plan.shape) {
                (Devices::Mig { gpu, profile, start, .. }, Shape::Mig(asked)) => {
                    if profile != asked {
                        return Err(format!("{} got {profile}, asked {asked}", plan.name));
                    }
                    let entry = taken.entry((p.site.index(), p.node.to_string(), *gpu)).or_default();
                    if entry.0 {
                        return Err(format!("{}/{gpu} is whole and partitioned", p.node));
                    }
                    entry.1.push((profile.clone(), *start));
                }
                (Devices::Gpus { indices }, Shape::Gpus(n)) => {
                    if indices.len() != *n as usize {
                        return Err(format!("{} got {} GPUs, asked {n}", plan.name, indices.len()));
                    }
                    for gpu in indices {
                        let entry = taken.entry((p.site.index(), p.node.to_string(), *gpu)).or_default();
                        if entry.0 || !entry.1.is_empty() {
                            return Err(format!("{}/{gpu} is given twice", p.node));
                        }
                        entry.0 = true;
                    }
                }
                other => return Err(format!("{}: shape and devices disagree: {other:?}", plan.name)),
            }
        }
    }
    let sites = &analysis.sites.sites;
    for ((site, node_name, gpu), (_, instances)) in &taken {
        let node = sites[*site].nodes.iter().find(|n| &n.name == node_name).ok_or("no such node")?;
        let model = node.gpu.as_deref().ok_or("node without GPUs")?;
        if *gpu >= node.gpus {
            return Err(format!("{node_name} has no GPU {gpu}"));
        }
        if instances.is_empty() {
            continue;
        }
        if !node.mig {
            return Err(format!("{node_name} does not allow MIG"));
        }
        let mut used = [false; 8];
        let mut compute = 0;
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for (profile, start) in instances {
            for s in slices(catalog, model, profile, *start)? {
                if std::mem::replace(&mut used[s as usize], true) {
                    return Err(format!("{node_name}/{gpu}: slice {s} is used twice"));
                }
            }
            let p = catalog.gpus[model].mig.iter().find(|p| &p.name == profile).ok_or("profile")?;
            compute += profile.split('g').next().and_then(|c| c.parse::<u32>().ok()).ok_or("compute")?;
            *counts.entry(&p.name).or_default() += 1;
            if counts[p.name.as_str()] > p.instances {
                return Err(format!("{node_name}/{gpu}: more {profile} than the card allows"));
            }
        }
        if compute > 7 {
            return Err(format!("{node_name}/{gpu}: {compute} compute slices"));
        }
    }
    // A serve that did not fit: no GPU it may use has room for one more replica.
    for plan in analysis.serves.iter().filter(|p| p.placements.len() < p.replicas as usize) {
        let Shape::Mig(profile) = &plan.shape else { continue };
        for (site_index, site) in sites.iter().enumerate() {
            // The generator names serve i `x{i}`; its site, if it asked for one, is `s{site}`.
            let asked = plan.name.strip_prefix('x').and_then(|i| i.parse::<usize>().ok()).and_then(|i| serves[i].site);
            if asked.is_some_and(|s| format!("s{s}") != *site.name) {
                continue;
            }
            for node in site.nodes.iter().filter(|n| n.mig) {
                let Some(model) = node.gpu.as_deref() else { continue };
                let Some(p) = catalog.gpus[model].mig.iter().find(|p| &p.name == profile) else { continue };
                for gpu in 0..node.gpus {
                    let (whole, instances) =
                        taken.get(&(site_index, node.name.clone(), gpu)).cloned().unwrap_or_default();
                    if whole {
                        continue;
                    }
                    let mut used = [false; 8];
                    let mut compute = 0;
                    for (q, start) in &instances {
                        for s in slices(catalog, model, q, *start)? {
                            used[s as usize] = true;
                        }
                        compute += q.split('g').next().and_then(|c| c.parse::<u32>().ok()).unwrap_or(0);
                    }
                    let same = instances.iter().filter(|(q, _)| q == profile).count() as u32;
                    let free_start = p.starts.iter().any(|&s| (s..s + p.size).all(|i| !used[i as usize]));
                    if free_start && same < p.instances && compute + p.compute <= 7 {
                        return Err(format!(
                            "{} did not fit, but {}/{gpu} has room for a {profile}",
                            plan.name, node.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn verify_waves(analysis: &Analysis) -> Result<(), String> {
    let graph = &analysis.graph;
    if graph.waves.is_empty() {
        return if graph.resources.is_empty() { Ok(()) } else { Err("no waves for an acyclic graph".into()) };
    }
    let mut wave = vec![usize::MAX; graph.resources.len()];
    for (w, members) in graph.waves.iter().enumerate() {
        for &r in members {
            if wave[r.index()] != usize::MAX {
                return Err(format!("{} is in two waves", graph.resource(r).id));
            }
            wave[r.index()] = w;
        }
    }
    if wave.contains(&usize::MAX) {
        return Err("a resource is in no wave".into());
    }
    for e in &graph.edges {
        let (from, to) = (e.from.index(), e.to.index());
        if wave[from] <= wave[to] {
            return Err(format!(
                "{} (wave {}) needs {} (wave {})",
                graph.resources[from].id, wave[from], graph.resources[to].id, wave[to]
            ));
        }
    }
    // Fewest waves: everything after the first waits for something in the wave just before.
    for (r, &w) in wave.iter().enumerate() {
        if w > 0 && !graph.edges.iter().any(|e| e.from.index() == r && wave[e.to.index()] == w - 1) {
            return Err(format!("{} could be in an earlier wave", graph.resources[r].id));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn placement_and_waves_hold((sites, serves) in fabric()) {
        let text = spec(&sites, &serves);
        let (analysis, schema) = run(&text);
        if let Err(problem) = verify_placement(&analysis, &schema.catalog, &serves) {
            prop_assert!(false, "{problem}\n{text}");
        }
        if let Err(problem) = verify_waves(&analysis) {
            prop_assert!(false, "{problem}\n{text}");
        }
        // Same spec, same analysis.
        let (again, _) = run(&text);
        prop_assert_eq!(format!("{:?}", analysis.serves), format!("{:?}", again.serves));
        prop_assert_eq!(format!("{:?}", analysis.graph), format!("{:?}", again.graph));
        prop_assert_eq!(format!("{:?}", analysis.diagnostics), format!("{:?}", again.diagnostics));
    }
}

#[test]
fn the_issue_geometry() {
    // On an H100, two 3g.40gb fit at slices 0 and 4; a 4g.40gb fits beside a 3g.40gb; three 3g.40gb do not.
    let base = "fabric \"p\" { residency \"eu\"; }\nmodel \"m\" base=\"llama-3.2-1b-instruct\"\nsite \"s\" tier=\"server\" region=\"eu-central\" {\n    cluster kind=\"k3s\" context=\"s\"\n    node \"n\" gpu=\"h100-80gb\" gpus=1 mig=#true\n}\n";
    let serve = |name: &str, profile: &str, replicas: u32| {
        format!(
            "serve \"{name}\" model=\"m\" {{\n    mig \"{profile}\"\n    replicas {replicas}\n    max-model-len 4096\n}}\n"
        )
    };
    let starts = |analysis: &Analysis| {
        let mut s: Vec<(String, u32)> =
            analysis.inventory.gpus[0].instances.iter().map(|i| (i.profile.clone(), i.start)).collect();
        s.sort_by_key(|(_, start)| *start);
        s
    };
    let (two, _) = run(&format!("{base}{}", serve("a", "3g.40gb", 2)));
    assert_eq!(starts(&two), vec![("3g.40gb".into(), 0), ("3g.40gb".into(), 4)]);
    assert!(two.diagnostics.is_empty());
    let (mixed, _) = run(&format!("{base}{}{}", serve("a", "3g.40gb", 1), serve("b", "4g.40gb", 1)));
    assert_eq!(starts(&mixed), vec![("4g.40gb".into(), 0), ("3g.40gb".into(), 4)]);
    assert!(mixed.diagnostics.is_empty());
    let (three, _) = run(&format!("{base}{}", serve("a", "3g.40gb", 3)));
    assert_eq!(three.serves[0].placements.len(), 2);
    assert_eq!(three.diagnostics.len(), 1);
    assert_eq!(three.diagnostics[0].code.id, "SOV4001");
}

#[test]
fn replicas_spread_and_serves_pack() {
    // Two nodes with one H100 each: a 2-replica serve takes one slice on each
    // node; a second serve then fills the remaining halves instead of idling.
    let text = "fabric \"p\" { residency \"eu\"; }\nmodel \"m\" base=\"llama-3.2-1b-instruct\"\nsite \"s\" tier=\"server\" region=\"eu-central\" {\n    cluster kind=\"k3s\" context=\"s\"\n    node \"a\" gpu=\"h100-80gb\" gpus=1 mig=#true\n    node \"b\" gpu=\"h100-80gb\" gpus=1 mig=#true\n}\nserve \"x\" model=\"m\" { mig \"3g.40gb\"; replicas 2; max-model-len 4096; }\nserve \"y\" model=\"m\" { mig \"2g.20gb\"; replicas 1; max-model-len 4096; }\n";
    let (analysis, _) = run(text);
    let nodes: Vec<&str> = analysis.serves[0].placements.iter().map(|p| &*p.node).collect();
    assert_eq!(nodes, vec!["a", "b"], "replicas of one serve spread over nodes");
    // y goes beside x on a partly used GPU, not onto an empty one (there is none left empty anyway),
    // and lands in the other half of node a's GPU.
    assert_eq!(&*analysis.serves[1].placements[0].node, "a");
}
