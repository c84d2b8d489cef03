//! The apply budget of the plan/apply issue (docs/benchmarks.md): 1,000
//! objects in 10 dependency layers, through an API that adds 20 ms to every
//! request, against (a) the critical-path bound and (b) `kubectl apply
//! --server-side` applying the same objects one by one, in one run.
//!
//! The API is the test double (tools/kube-double) with its per-request
//! latency, which is what a proxy adding 20 ms does; sovereign reaches it
//! through the kube-rs driver, the executor and its fsynced journal, as
//! `sovereign apply` does after planning (the plan has its own budget,
//! benches/plan.rs). The critical path is measured, not assumed: the same
//! executor applying one chain of 10 objects (one per layer) pays exactly
//! the per-layer costs and none of the width. The theoretical floor,
//! 10 layers × one 20 ms request, is printed beside it.
//!
//! kubectl applies a sample of the objects one by one (default 100,
//! `APPLY_BENCH_KUBECTL=N`; 0 skips it), extrapolated linearly to 1,000:
//! one by one is sequential, so its time is linear in the count.
//!
//!   cargo bench --bench apply

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_double::{ApiDouble, Options};
use serde_json::json;
use serde_json::value::RawValue;
use sovereign::apply::journal::ApplyJournal;
use sovereign::apply::{self, Clusters, Interrupt, Op, Outcome, Settings, Step};
use sovereign::plan::saved::{Planned, sha256};
use sovereign_desired::{ResourceId, Target};

// The binary's allocator, so that the figures are the binary's (the
// double, in this process, uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LAYERS: usize = 10;
const WIDTH: usize = 100;
const LATENCY: Duration = Duration::from_millis(20);

/// `APPLY_BENCH_LATENCY_MS` changes the latency, for experiments: at 0 the
/// run is bound by the CPU sovereign and the double spend.
fn latency() -> Duration {
    std::env::var("APPLY_BENCH_LATENCY_MS").ok().and_then(|ms| ms.parse().ok()).map_or(LATENCY, Duration::from_millis)
}
/// `APPLY_BENCH_RUNS` changes the number of runs (3), for profiles.
fn runs() -> usize {
    std::env::var("APPLY_BENCH_RUNS").ok().and_then(|runs| runs.parse().ok()).unwrap_or(3)
}

fn id(layer: usize, index: usize) -> ResourceId {
    ResourceId {
        target: Target::K3s,
        site: "bench".into(),
        kind: "ConfigMap".into(),
        namespace: Some("bench".into()),
        name: format!("layer-{layer}-{index}").into(),
    }
}

fn body(layer: usize, index: usize) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": format!("layer-{layer}-{index}"), "namespace": "bench",
                        "labels": {"app.kubernetes.io/managed-by": "sovereign", "sovereign.dev/fabric": "bench"}},
           "data": {"layer": layer.to_string(), "value": "x".repeat(200)}})
    .to_string()
}

/// `width` objects per layer, each after two of the layer before.
fn steps(layers: usize, width: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    for layer in 0..layers {
        for index in 0..width {
            let depends: Vec<usize> = if layer == 0 {
                Vec::new()
            } else {
                let mut after = vec![(layer - 1) * width + index, (layer - 1) * width + (index + 1) % width];
                after.dedup();
                after
            };
            let text = body(layer, index);
            let planned = Planned {
                id: id(layer, index),
                declaration: None,
                patch: false,
                depends_on: depends.iter().map(|&step| id(step / width, step % width)).collect(),
                content_sha256: sha256(&text),
                body: RawValue::from_string(text.clone()).unwrap(),
            };
            steps.push(Step {
                op: Op::Apply,
                planned,
                object: serde_json::from_str(&text).unwrap(),
                after: depends,
                makes: None,
                blocked: None,
            });
        }
    }
    steps
}

fn double() -> (ApiDouble, tempfile::TempDir) {
    let options = Options {
        schemas: if std::env::var_os("APPLY_BENCH_NO_SCHEMAS").is_some() {
            None
        } else {
            // Found once: a Python process per double would weigh on the runs.
            static SCHEMAS: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
            SCHEMAS.get_or_init(|| kube_double::kubernetes_validate_schemas("1.34.0")).clone()
        },
        namespaces: vec!["bench".into()],
        latency: latency(),
        // As many as requests in flight: the run pays no thread creation.
        threads: 128,
        ..Options::default()
    };
    let double = ApiDouble::start(options).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    double.write_kubeconfig(&tmp.path().join("kubeconfig"), "double").unwrap();
    (double, tmp)
}

/// The executor applying `steps` to a fresh double; the seconds it took,
/// and the CPU seconds both sides spent meanwhile.
fn sovereign(runtime: &tokio::runtime::Runtime, steps: &[Step]) -> (f64, f64) {
    let (_double, tmp) = double();
    let kubeconfig = tmp.path().join("kubeconfig");
    let journal = ApplyJournal::open(&tmp.path().join("journal"), "bench", "apply", "bench", 0).unwrap();
    // As `sovereign apply --concurrency 128 --cluster-concurrency 128`.
    let settings = Settings { concurrency: 128, per_cluster: 128, ..Settings::default() };
    runtime.block_on(async {
        let cluster = sovereign_kubernetes::Cluster::connect(Some(&kubeconfig), Some("double"), Default::default())
            .await
            .unwrap();
        // The double compiles a kind's schema when it first sees the kind,
        // which a real API server did when it started: one dry run first.
        cluster.apply(&steps[0].object, true).await.unwrap();
        let clusters: Clusters = HashMap::from([(Arc::from("bench"), Ok(Arc::new(cluster)))]);
        let drivers = apply::kubernetes_drivers(&clusters);
        let cpu = cpu_seconds();
        let started = Instant::now();
        let outcomes = apply::execute(steps, &drivers, &journal, &settings, &|_| {}, &Interrupt::default()).await;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        assert!(outcomes.iter().all(|outcome| matches!(outcome, Outcome::Applied(_))), "every step applied");
        (seconds, cpu)
    })
}

/// The CPU time this process has used (sovereign and the double, which
/// runs in it), from /proc/self/stat, in seconds (10 ms resolution).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `kubectl apply --server-side` of `count` objects, one process each.
fn kubectl(count: usize) -> Option<f64> {
    if count == 0 || std::process::Command::new("kubectl").arg("version").arg("--client").output().is_err() {
        return None;
    }
    let (_double, tmp) = double();
    let kubeconfig = tmp.path().join("kubeconfig");
    let files: Vec<std::path::PathBuf> = (0..count)
        .map(|n| {
            let path = tmp.path().join(format!("{n}.json"));
            std::fs::write(&path, body(n / WIDTH, n % WIDTH)).unwrap();
            path
        })
        .collect();
    let started = Instant::now();
    for file in &files {
        let output = std::process::Command::new("kubectl")
            .args(["apply", "--server-side", "--field-manager", "kubectl-bench", "--validate=false"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .arg("-f")
            .arg(file)
            .output()
            .unwrap();
        assert!(output.status.success(), "kubectl: {}", String::from_utf8_lossy(&output.stderr));
    }
    Some(started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let wide = steps(LAYERS, WIDTH);
    let chain = steps(LAYERS, 1);
    let runs = if quick { 1 } else { runs() };
    let mut full = Vec::new();
    let mut critical = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..runs {
        critical.push(sovereign(&runtime, &chain).0);
        let (seconds, spent) = sovereign(&runtime, &wide);
        full.push(seconds);
        cpu.push(spent);
    }
    let (full, critical, cpu) = (median(full), median(critical), median(cpu));
    let floor = LAYERS as f64 * latency().as_secs_f64();
    println!(
        "apply of {} objects in {LAYERS} layers, {} ms per request ({runs} runs, medians):",
        LAYERS * WIDTH,
        latency().as_millis()
    );
    println!("  sovereign                     {full:>8.3} s   ({cpu:.2} s of CPU, sovereign and the double)");
    println!(
        "  critical path (a chain of {LAYERS})  {critical:>8.3} s   (floor: {LAYERS} × one request = {floor:.3} s)"
    );
    println!("  ratio to the critical path    {:>8.2}×   (budget ≤ 1.2×)", full / critical);
    let sample: usize =
        std::env::var("APPLY_BENCH_KUBECTL").ok().and_then(|n| n.parse().ok()).unwrap_or(if quick { 0 } else { 100 });
    match kubectl(sample) {
        Some(seconds) => {
            let extrapolated = seconds * (LAYERS * WIDTH) as f64 / sample as f64;
            println!(
                "  kubectl, one by one           {extrapolated:>8.3} s   ({sample} objects in {seconds:.3} s, × {})",
                LAYERS * WIDTH / sample
            );
            println!("  sovereign is faster by        {:>8.1}×   (budget ≥ 10×)", extrapolated / full);
        }
        None => println!("  kubectl: not measured (not installed, or APPLY_BENCH_KUBECTL=0)"),
    }
}
