//! Parse + check (lowering, resolution, cycles) of generated fabrics.

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sovereign_check::{EmptyHost, Stdlib};

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    let (stdlib, _) = Stdlib::embedded();
    for declarations in [1_000, 10_000, 100_000] {
        let text = fabric_gen::fabric(declarations);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(declarations), &text, |b, text| {
            b.iter(|| {
                let checked =
                    sovereign_check::check(Path::new("bench.kdl"), text.clone().into_bytes(), &EmptyHost, &stdlib);
                assert!(!checked.has_errors());
                checked.fabric.items.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
