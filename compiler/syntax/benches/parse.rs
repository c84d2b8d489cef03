//! Parser throughput on generated fabrics: ours beside the `kdl` crate.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sovereign_diagnostics::FileId;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    for declarations in [1_000, 10_000] {
        let text = fabric_gen::fabric(declarations);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("sovereign", declarations), &text, |b, text| {
            b.iter(|| sovereign_syntax::parse(FileId(0), text).document.nodes.len());
        });
        group.bench_with_input(BenchmarkId::new("kdl-crate", declarations), &text, |b, text| {
            b.iter(|| text.parse::<kdl::KdlDocument>().map(|d| d.nodes().len()).unwrap_or(0));
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
