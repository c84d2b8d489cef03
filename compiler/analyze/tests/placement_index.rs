//! The free-capacity index changes how fast placement finds its choice,
//! never which it is: on random fabrics (small sites that are scanned,
//! large ones that are indexed, `site=` and `tier=` serves, MIG and whole
//! GPUs, several replicas), placement equals a scan of every candidate GPU.

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use sovereign_analyze::capacity;
use sovereign_analyze::view::Sites;
use sovereign_check::{EmptyHost, Stdlib};

const PROFILES: &[&str] = &["1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"];

#[derive(Clone, Debug)]
struct Serve {
    site: Option<usize>,
    tier: bool,
    shape: Result<usize, u32>,
    replicas: u32,
}

fn spec(sites: &[(u32, u32, bool)], serves: &[Serve]) -> String {
    let mut out = String::from("fabric \"p\" { residency \"eu\"; }\nmodel \"m\" base=\"llama-3.2-1b-instruct\"\n");
    for (s, &(nodes, gpus, cloud)) in sites.iter().enumerate() {
        let tier = if cloud { "tier=\"cloud\" provider=\"gke\"" } else { "tier=\"server\"" };
        let _ =
            writeln!(out, "site \"s{s}\" {tier} region=\"eu-central\" {{\n    cluster kind=\"k8s\" context=\"s{s}\"");
        for n in 0..nodes {
            let _ = writeln!(out, "    node \"n{n}\" gpu=\"h100-80gb\" gpus={gpus} mig=#{}", n % 3 != 2);
        }
        out.push_str("}\n");
    }
    for (i, serve) in serves.iter().enumerate() {
        let place = match (serve.site, serve.tier) {
            (Some(s), _) => format!(" site=\"s{}\"", s % sites.len()),
            (None, true) => " tier=\"cloud\"".to_owned(),
            (None, false) => String::new(),
        };
        let shape = match serve.shape {
            Ok(p) => format!("mig \"{}\"", PROFILES[p % PROFILES.len()]),
            Err(n) => format!("gpus {n}"),
        };
        let _ = writeln!(
            out,
            "serve \"x{i}\" model=\"m\"{place} {{\n    {shape}\n    replicas {}\n    max-model-len 4096\n}}",
            serve.replicas
        );
    }
    out
}

fn fabric() -> impl Strategy<Value = (Vec<(u32, u32, bool)>, Vec<Serve>)> {
    // Up to 12 nodes of 8 GPUs: sites above 64 GPUs are indexed.
    let site = (1u32..13, prop::sample::select(&[1u32, 2, 4, 8][..]), any::<bool>());
    let serve = (
        prop::option::of(0usize..4),
        any::<bool>(),
        prop_oneof![(0usize..5).prop_map(Ok), prop::sample::select(&[1u32, 2, 4][..]).prop_map(Err)],
        1u32..12,
    )
        .prop_map(|(site, tier, shape, replicas)| Serve { site, tier, shape, replicas });
    (prop::collection::vec(site, 1..4), prop::collection::vec(serve, 1..24))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn the_index_chooses_what_a_scan_chooses((sites, serves) in fabric()) {
        let text = spec(&sites, &serves);
        let (stdlib, _) = Stdlib::embedded();
        let schema = &stdlib.schema;
        let checked = sovereign_check::check(Path::new("p.kdl"), text.into_bytes(), &EmptyHost, &stdlib);
        let errors: Vec<&str> = checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.message.as_str()).collect();
        prop_assert!(errors.is_empty(), "{errors:?}");
        let model = checked.spec.as_ref().expect("a spec that checks clean has a model");
        let view = Sites::read(model, &schema.catalog);
        let (indexed, _) = capacity::place_serves(model, &schema.catalog, &view, &mut Vec::new());
        let (scanned, _) = capacity::place_serves_by_scan(model, &schema.catalog, &view, &mut Vec::new());
        for (a, b) in indexed.iter().zip(&scanned) {
            prop_assert_eq!(&a.placements, &b.placements, "serve {}", a.name);
        }
    }
}
