//! The analysis on top of check: placement, memory, device fits, flows and
//! the resource graph for generated fabrics; and placement alone of 1,000
//! replicas onto 500 GPUs.

use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sovereign_check::{Checked, EmptyHost, Stdlib};

fn checked(stdlib: &Stdlib, text: &str) -> Checked {
    let checked = sovereign_check::check(Path::new("bench.kdl"), text.as_bytes().to_vec(), &EmptyHost, stdlib);
    assert!(!checked.has_errors());
    checked
}

fn analysis(c: &mut Criterion) {
    let (stdlib, _) = Stdlib::embedded();
    let schema = &stdlib.schema;
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    for declarations in [1_000, 10_000, 100_000] {
        let checked = checked(&stdlib, &fabric_gen::fabric(declarations));
        group.bench_with_input(BenchmarkId::from_parameter(declarations), &checked, |b, checked| {
            b.iter(|| {
                let spec = checked.spec.as_ref().expect("generated fabrics check clean");
                let analysis = sovereign_analyze::analyze(spec, schema);
                assert!(analysis.diagnostics.is_empty());
                analysis.graph.waves.len()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("placement");
    group.sample_size(10);
    let checked = checked(&stdlib, &fabric_gen::placement(1_000, 500));
    let spec = checked.spec.as_ref().expect("generated fabrics check clean");
    let sites = sovereign_analyze::view::Sites::read(spec, &schema.catalog);
    group.bench_function("1000-replicas-500-gpus", |b| {
        b.iter(|| {
            let mut diagnostics = Vec::new();
            let (plans, _) = sovereign_analyze::capacity::place_serves(spec, &schema.catalog, &sites, &mut diagnostics);
            assert!(diagnostics.is_empty(), "{diagnostics:?}");
            plans.iter().map(|p| p.placements.len()).sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, analysis);
criterion_main!(benches);
