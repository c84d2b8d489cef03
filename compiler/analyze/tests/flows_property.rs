//! A property test of the data flows: random fabrics of sites, datasets,
//! edges with fallbacks, evals and vector stores, whose flows and
//! sovereignty diagnostics are compared with a verifier written apart from
//! `flows.rs`: it restates the rules on the generator's own description of
//! the fabric (which workload is where, what reads what) and follows every
//! dataset itself.
//!
//! The rules, at each hop into place T (from `docs/diagnostics/SOV500x.md`):
//! T's jurisdiction must be the dataset's residency (SOV5003); restricted
//! data may not leave its site unredacted (SOV5001); confidential data only
//! reaches the server tier unredacted (SOV5002); restricted and
//! confidential data are never read in the cloud tier; a redacting hop
//! turns them into internal data.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use sovereign_check::{EmptyHost, Stdlib};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Public,
    Internal,
    Confidential,
    Restricted,
}

const CLASSES: [(Class, &str); 4] = [
    (Class::Public, "public"),
    (Class::Internal, "internal"),
    (Class::Confidential, "confidential"),
    (Class::Restricted, "restricted"),
];

#[derive(Clone, Debug)]
struct SiteSpec {
    cloud: bool,
    /// `eu-central` (eu) or `us-east` (us).
    us: bool,
}

#[derive(Clone, Debug)]
struct DatasetSpec {
    class: usize,
    /// Its own residency: None (the fabric's, eu), Some(false) eu, Some(true) us.
    residency: Option<bool>,
    /// The site of its ledger, if it lives in one.
    ledger: Option<usize>,
}

#[derive(Clone, Debug)]
struct EdgeSpec {
    reads: Vec<usize>,
    fallback: Option<(usize, bool)>,
}

#[derive(Clone, Debug)]
struct Fabric {
    sites: Vec<SiteSpec>,
    datasets: Vec<DatasetSpec>,
    /// The site of each serve.
    serves: Vec<usize>,
    /// The site of each store, and the serves that use it.
    stores: Vec<(usize, Vec<usize>)>,
    edges: Vec<EdgeSpec>,
    /// Each eval: target serve, dataset, the site of its Temporal.
    evals: Vec<(usize, usize, usize)>,
}

fn fabric() -> impl Strategy<Value = Fabric> {
    let sites = prop::collection::vec((any::<bool>(), prop::bool::weighted(0.25)), 1..4)
        .prop_map(|v| v.into_iter().map(|(cloud, us)| SiteSpec { cloud, us }).collect::<Vec<_>>());
    sites.prop_flat_map(|sites| {
        let n = sites.len();
        let datasets = prop::collection::vec(
            (0usize..4, prop::option::weighted(0.3, prop::bool::weighted(0.3)), prop::option::of(0..n)),
            1..4,
        )
        .prop_map(|v| {
            v.into_iter().map(|(class, residency, ledger)| DatasetSpec { class, residency, ledger }).collect::<Vec<_>>()
        });
        (Just(sites), datasets, prop::collection::vec(0..n, 1..4)).prop_flat_map(move |(sites, datasets, serves)| {
            let (d, s) = (datasets.len(), serves.len());
            let edges = prop::collection::vec(
                (prop::collection::vec(0..d, 0..3), prop::option::of((0..s, any::<bool>()))),
                0..3,
            )
            .prop_map(|v| v.into_iter().map(|(reads, fallback)| EdgeSpec { reads, fallback }).collect::<Vec<_>>());
            let stores = prop::collection::vec((0..n, prop::collection::vec(0..s, 0..3)), 0..3);
            let evals = prop::collection::vec((0..s, 0..d, 0..n), 0..3);
            (Just(sites.clone()), Just(datasets.clone()), Just(serves), stores, edges, evals).prop_map(
                |(sites, datasets, serves, stores, edges, evals)| Fabric {
                    sites,
                    datasets,
                    serves,
                    stores,
                    edges,
                    evals,
                },
            )
        })
    })
}

fn spec(f: &Fabric) -> String {
    let mut out = String::from(
        "fabric \"p\" { residency \"eu\"; }\nmodel \"m\" base=\"llama-3.2-1b-instruct\"\nmodel \"tiny\" base=\"llama-3.2-1b-instruct\" dtype=\"int8\" format=\"tflite\"\n",
    );
    for (i, s) in f.sites.iter().enumerate() {
        let (tier, provider) = if s.cloud { ("cloud", " provider=\"gke\"") } else { ("server", "") };
        let kind = if s.cloud { "gke" } else { "k3s" };
        let region = if s.us { "us-east" } else { "eu-central" };
        let _ = writeln!(
            out,
            "site \"s{i}\" tier=\"{tier}\" region=\"{region}\"{provider} {{\n    cluster kind=\"{kind}\" context=\"s{i}\"\n    node \"n\" gpu=\"h100-80gb\" gpus=8\n}}"
        );
    }
    out.push_str("site \"field\" tier=\"device\" region=\"eu-central\" {\n    fleet \"tablets\" soc=\"snapdragon-8-gen-3\" count=10 memory=\"12GiB\"\n}\n");
    let mut lakes: Vec<usize> = f.datasets.iter().filter_map(|d| d.ledger).collect();
    lakes.sort_unstable();
    lakes.dedup();
    for site in lakes {
        let _ = writeln!(
            out,
            "ledger \"l{site}\" site=\"s{site}\" {{\n    iceberg catalog=\"rest\" warehouse=\"s3://l{site}/w\"\n}}"
        );
    }
    for (i, d) in f.datasets.iter().enumerate() {
        let residency = match d.residency {
            Some(true) => " residency=\"us\"",
            Some(false) => " residency=\"eu\"",
            None => "",
        };
        // One lake per site, shared by the datasets that live there.
        let ledger = d.ledger.map(|site| format!(" ledger=\"l{site}\"")).unwrap_or_default();
        let _ = writeln!(out, "dataset \"d{i}\" classification=\"{}\"{residency}{ledger}", CLASSES[d.class].1);
    }
    for (i, site) in f.serves.iter().enumerate() {
        let uses: Vec<String> = f
            .stores
            .iter()
            .enumerate()
            .filter(|(_, (_, users))| users.contains(&i))
            .map(|(v, _)| format!("\n    uses \"v{v}\""))
            .collect();
        let _ = writeln!(
            out,
            "serve \"x{i}\" model=\"m\" site=\"s{site}\" {{\n    max-model-len 4096{}\n}}",
            uses.concat()
        );
    }
    for (v, (site, _)) in f.stores.iter().enumerate() {
        let _ = writeln!(out, "vectorstore \"v{v}\" site=\"s{site}\"");
    }
    for (i, e) in f.edges.iter().enumerate() {
        let _ = writeln!(out, "edge \"e{i}\" fleet=\"field/tablets\" model=\"tiny\" {{");
        for d in &e.reads {
            let _ = writeln!(out, "    reads \"d{d}\"");
        }
        if let Some((serve, redact)) = e.fallback {
            let _ = writeln!(out, "    fallback \"x{serve}\" when=\"confidence < 0.5\" redact=#{redact}");
        }
        out.push_str("}\n");
    }
    for (i, (target, dataset, site)) in f.evals.iter().enumerate() {
        let _ = writeln!(out, "temporal \"t{i}\" site=\"s{site}\" {{\n    namespace \"evals\"\n}}");
        let _ = writeln!(
            out,
            "eval \"q{i}\" target=\"x{target}\" dataset=\"d{dataset}\" {{\n    runs-on \"t{i}\" namespace=\"evals\"\n}}"
        );
    }
    out
}

/// A place: a site of the fabric (`s0`…, or `field` for the devices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Place {
    Site(usize),
    Field,
}

/// What the verifier expects: every allowed hop as (from, from place, to,
/// to place, dataset, redacted on arrival), and every violation as
/// (code, dataset).
type Hop = (String, String, String, String, String, bool);

/// A workload (`serve/x0`) at a place.
type Workload = (String, Place);

struct Expected {
    hops: BTreeSet<Hop>,
    violations: BTreeSet<(&'static str, String)>,
}

fn expected(f: &Fabric) -> Expected {
    let place_name = |p: Place| match p {
        Place::Site(i) => format!("s{i}"),
        Place::Field => "field".to_owned(),
    };
    let jurisdiction = |p: Place| match p {
        Place::Site(i) if f.sites[i].us => "us",
        _ => "eu",
    };
    let cloud = |p: Place| matches!(p, Place::Site(i) if f.sites[i].cloud);
    let server = |p: Place| matches!(p, Place::Site(i) if !f.sites[i].cloud);
    let residency = |d: usize| if f.datasets[d].residency == Some(true) { "us" } else { "eu" };
    let class = |d: usize| CLASSES[f.datasets[d].class].0;

    // Carriers between workloads: (from, from place) → (to, to place, redacting).
    let mut carriers: BTreeMap<Workload, Vec<(String, Place, bool)>> = BTreeMap::new();
    let mut carry = |from: (String, Place), to: (String, Place), redact: bool| {
        carriers.entry(from).or_default().push((to.0, to.1, redact));
    };
    for (i, e) in f.edges.iter().enumerate() {
        if let Some((serve, redact)) = e.fallback {
            carry(
                (format!("edge/e{i}"), Place::Field),
                (format!("serve/x{serve}"), Place::Site(f.serves[serve])),
                redact,
            );
        }
    }
    for (i, (target, _, site)) in f.evals.iter().enumerate() {
        carry(
            (format!("eval/q{i}"), Place::Site(*site)),
            (format!("serve/x{target}"), Place::Site(f.serves[*target])),
            false,
        );
    }
    for (v, (store_site, users)) in f.stores.iter().enumerate() {
        let mut users = users.clone();
        users.sort_unstable();
        users.dedup();
        for serve in users {
            let (a, b) = (
                (format!("serve/x{serve}"), Place::Site(f.serves[serve])),
                (format!("vectorstore/v{v}"), Place::Site(*store_site)),
            );
            carry(a.clone(), b.clone(), false);
            carry(b, a, false);
        }
    }
    // Reads: (reader, place, dataset).
    let mut reads: Vec<(String, Place, usize)> = Vec::new();
    for (i, e) in f.edges.iter().enumerate() {
        for &d in &e.reads {
            reads.push((format!("edge/e{i}"), Place::Field, d));
        }
    }
    for (i, (_, d, site)) in f.evals.iter().enumerate() {
        reads.push((format!("eval/q{i}"), Place::Site(*site), *d));
    }

    let mut hops = BTreeSet::new();
    let mut violations = BTreeSet::new();
    // The rule for data of dataset `d`, arriving as `class`, going from `from` to `to`.
    let judge = |d: usize, class: Class, from: Place, to: Place, redact: bool| -> Result<(Class, bool), &'static str> {
        if jurisdiction(to) != residency(d) {
            return Err("SOV5003");
        }
        if from == to {
            return Ok((class, false));
        }
        match class {
            Class::Restricted if !redact => Err("SOV5001"),
            Class::Confidential if !redact && !server(to) => Err("SOV5002"),
            c if redact && c > Class::Internal => Ok((Class::Internal, true)),
            c => Ok((c, false)),
        }
    };
    // Whether `d` may be where it is first found (no hop): its residency,
    // and never restricted or confidential in the cloud tier.
    let read_at = |d: usize, at: Place| -> Result<(), &'static str> {
        match class(d) {
            _ if jurisdiction(at) != residency(d) => Err("SOV5003"),
            Class::Restricted if cloud(at) => Err("SOV5001"),
            Class::Confidential if cloud(at) => Err("SOV5002"),
            _ => Ok(()),
        }
    };
    for (reader, at, d) in &reads {
        let name = format!("d{d}");
        // Where the reader gets it: from its ledger's site, or where it reads it.
        let start = match f.datasets[*d].ledger {
            Some(site) if read_at(*d, Place::Site(site)).is_err() => {
                violations.insert((read_at(*d, Place::Site(site)).unwrap_err(), name.clone()));
                None
            }
            Some(site) => {
                let home = Place::Site(site);
                match judge(*d, class(*d), home, *at, false) {
                    Ok((c, redacted)) => {
                        hops.insert((
                            format!("ledger/l{site}"),
                            place_name(home),
                            reader.clone(),
                            place_name(*at),
                            name.clone(),
                            redacted,
                        ));
                        Some((c, redacted))
                    }
                    Err(code) => {
                        violations.insert((code, name.clone()));
                        None
                    }
                }
            }
            None => match read_at(*d, *at) {
                Ok(()) => Some((class(*d), false)),
                Err(code) => {
                    violations.insert((code, name.clone()));
                    None
                }
            },
        };
        let Some((c, redacted)) = start else { continue };
        // Follow it from the reader along every carrier.
        let mut queue = VecDeque::from([(reader.clone(), *at, c, redacted)]);
        let mut seen = BTreeSet::new();
        while let Some((item, place, c, redacted)) = queue.pop_front() {
            if !seen.insert((item.clone(), place, redacted)) {
                continue;
            }
            for (to, to_place, redact) in carriers.get(&(item.clone(), place)).into_iter().flatten() {
                match judge(*d, c, place, *to_place, *redact) {
                    Ok((arrives, now_redacted)) => {
                        let redacted = redacted || now_redacted;
                        hops.insert((
                            item.clone(),
                            place_name(place),
                            to.clone(),
                            place_name(*to_place),
                            name.clone(),
                            redacted,
                        ));
                        queue.push_back((to.clone(), *to_place, arrives, redacted));
                    }
                    Err(code) => {
                        violations.insert((code, name.clone()));
                    }
                }
            }
        }
    }
    Expected { hops, violations }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flows_follow_the_rules(f in fabric()) {
        let text = spec(&f);
        let (stdlib, _) = Stdlib::embedded();
        let compiled = sovereign_analyze::compile(&stdlib, Path::new("p.kdl"), text.clone().into_bytes(), &EmptyHost);
        let check_errors: Vec<&str> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && !d.code.id.starts_with("SOV5"))
            .map(|d| d.message.as_str())
            .collect();
        prop_assert!(check_errors.is_empty(), "the generated spec must check clean: {check_errors:?}\n{text}");
        let analysis = compiled.analysis.as_ref().expect("analyzed");
        let spec = compiled.spec.as_ref().expect("typed");
        let fabric = &compiled.fabric;
        let places = &analysis.flows.places;
        let got: BTreeSet<Hop> = analysis
            .flows
            .flows
            .iter()
            .map(|flow| {
                let item = |id| {
                    let item = fabric.item(id);
                    format!("{}/{}", item.kind.rsplit('/').next().unwrap_or(&item.kind), fabric.name_of(id))
                };
                (
                    item(flow.from),
                    places[flow.from_place].name.clone(),
                    item(flow.to),
                    places[flow.to_place].name.clone(),
                    spec.datasets[flow.dataset].name.qualified.to_string(),
                    flow.redacted,
                )
            })
            .collect();
        let want = expected(&f);
        prop_assert_eq!(&got, &want.hops, "flows differ\n{}", text);
        let violations: BTreeSet<(&str, String)> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.code.id.starts_with("SOV5"))
            .map(|d| {
                let dataset = d.message.split('"').nth(1).unwrap_or_default().to_owned();
                (d.code.id, dataset)
            })
            .collect();
        prop_assert_eq!(violations, want.violations, "violations differ\n{}", text);
    }
}
