//! The plan budgets of the plan/apply issue (docs/benchmarks.md): `plan` of
//! a fabric of about 10,000 resources against its state (≤ 300 ms, end to
//! end: the binary checks, builds, loads the state and plans), and the
//! state's load and save at that size (≤ 100 ms). The state is what an
//! apply of the build records, with 1% of it changed since (updates), some
//! of it never applied (creates) and a few resources no longer declared
//! (deletes), so that every path of the plan runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use sovereign::plan::saved::Planned;
use sovereign::state::{LocalState, StateDocument};
use sovereign_desired::DesiredState;

// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `fabric-gen 2500`: about 10,000 resources.
const DECLARATIONS: usize = 2_500;

fn built(root: &Path, text: &str) -> DesiredState {
    let (stdlib, _) = sovereign_check::Stdlib::embedded();
    let compiled = sovereign_analyze::compile(&stdlib, root, text.as_bytes().to_vec(), &sovereign_check::EmptyHost);
    assert!(!compiled.has_errors());
    let (spec, analysis) = (compiled.spec.as_ref().unwrap(), compiled.analysis.as_ref().unwrap());
    let (desired, _) = sovereign::emit::emit(&compiled, spec, analysis, &Default::default(), DesiredState::default());
    desired
}

/// The spec and its state, in a folder of their own.
fn setup() -> (tempfile::TempDir, PathBuf, LocalState, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fabric.kdl");
    let text = fabric_gen::fabric(DECLARATIONS);
    std::fs::write(&root, &text).unwrap();
    let desired = built(&root, &text);
    let mut state = StateDocument::new("bench");
    state.serial = 7;
    for (at, resource) in desired.resources.values().enumerate() {
        if at % 150 == 7 {
            continue; // never applied: a create
        }
        let mut planned = Planned::of(resource);
        if at % 100 == 3 {
            // Changed since: an update with one field.
            let mut body: serde_json::Value = serde_json::from_str(planned.body.get()).unwrap();
            body["sovereignBenchBefore"] = serde_json::Value::Bool(true);
            let text = serde_json::to_string(&body).unwrap();
            planned.content_sha256 = sovereign::plan::saved::sha256(&text);
            planned.body = serde_json::value::RawValue::from_string(text).unwrap();
        }
        if at % 500 == 11 {
            // No longer declared: a delete.
            let mut gone = Planned::of(resource);
            gone.id.name = format!("{}-gone", gone.id.name).into();
            state.record(&gone, None, 1_796_170_000);
        }
        state.record(&planned, None, 1_796_170_000);
    }
    let local = LocalState::new(tmp.path().join(".sovereign/state.json"));
    local.save(&state).unwrap();
    (tmp, root, local, desired.resources.len())
}

fn plan(c: &mut Criterion) {
    let (_tmp, root, local, resources) = setup();
    eprintln!("plan bench: {resources} resources, state of {} bytes", std::fs::metadata(&local.path).unwrap().len());
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("cli-10k-resources", |b| {
        b.iter(|| {
            let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
                .args(["plan", root.to_str().unwrap(), "--json", "--detailed-exitcode"])
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
            output.stdout.len()
        });
    });
    let text = std::fs::read_to_string(&root).unwrap();
    let desired = built(&root, &text);
    let state = local.load().unwrap().unwrap();
    group.bench_function("diff-10k-resources", |b| {
        b.iter(|| {
            sovereign::plan::plan("bench", &desired, Some(&state), sovereign::plan::Options::default()).changes.len()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("state");
    group.sample_size(10);
    let copy = LocalState::new(local.path.with_file_name("copy.json"));
    group.bench_function("load-save-10k-resources", |b| {
        b.iter(|| {
            let state = local.load().unwrap().unwrap();
            copy.save(&state).unwrap();
            state.resources.len()
        });
    });
    let state = local.load().unwrap().unwrap();
    group.bench_function("load-10k-resources", |b| b.iter(|| local.load().unwrap().unwrap().resources.len()));
    group.bench_function("save-10k-resources", |b| b.iter(|| copy.save(&state).unwrap()));
    group.bench_function("text-10k-resources", |b| b.iter(|| state.to_text().len()));
    group.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);
