//! sovereign traces itself: a real OTLP/HTTP receiver on loopback
//! (tests/telemetry/otlp_receiver.py, decoding with PyPI
//! opentelemetry-proto) gets the span tree of a `check`, a `build` and an
//! `apply` to the API double, with their attributes; Logfire's header is
//! the token; nothing is exported when the SDK is disabled; and the secret
//! canary is in no exported byte.

#[path = "support/apply_cluster.rs"]
#[allow(dead_code)] // shared with tests/apply.rs, which uses all of it
mod cluster;
#[path = "support/lab.rs"]
mod lab;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start() -> Option<Receiver> {
        let present = Command::new("python3")
            .args(["-c", "import opentelemetry.proto.collector.trace.v1.trace_service_pb2"])
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            assert!(
                std::env::var_os("SOVEREIGN_EXPECT_OTLP_PROTO").is_none(),
                "opentelemetry-proto is expected (scripts/test installs it)"
            );
            eprintln!("skipped: no python3 opentelemetry-proto (pip install opentelemetry-proto)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("spans.jsonl");
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/telemetry/otlp_receiver.py"))
            .arg(&out)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Some(Receiver { child, port, out, _dir: dir })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The spans received so far, after the file stops growing.
    fn spans(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    fn raw(&self) -> Vec<u8> {
        std::fs::read(self.out.with_extension("jsonl.raw")).unwrap_or_default()
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(&self.out);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sovereign(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sovereign"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).stdin(Stdio::null());
    command.env("SOVEREIGN_TEST_CANARY", cluster::CANARY);
    for name in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "LOGFIRE_TOKEN", "RUST_LOG"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn named<'s>(spans: &'s [Value], name: &str) -> Vec<&'s Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn one<'s>(spans: &'s [Value], name: &str) -> &'s Value {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one {name} span in {spans:#?}");
    found[0]
}

fn child_of(span: &Value, parent: &Value) -> bool {
    span["parent_span_id"] == parent["span_id"] && span["trace_id"] == parent["trace_id"]
}

/// Waits until `count` spans named `name` arrived (the exporter flushes at exit).
fn arrived(receiver: &Receiver, name: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans = receiver.spans();
        if !named(&spans, name).is_empty() || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_and_build_are_traced_as_a_span_tree_and_nothing_without_the_sdk() {
    let Some(receiver) = Receiver::start() else { return };
    let endpoint = receiver.endpoint();
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_SERVICE_NAME", "sovereign-test")];
    let output = sovereign(&["check", "examples/lab"], &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let spans = arrived(&receiver, "sovereign");
    let root = one(&spans, "sovereign");
    assert_eq!(root["attributes"]["sovereign.command"], "check");
    assert_eq!(root["service"], "sovereign-test");
    let check = one(&spans, "check");
    let parse = one(&spans, "parse");
    let analyze = one(&spans, "analyze");
    assert!(child_of(check, root) && child_of(parse, check) && child_of(analyze, root), "{spans:#?}");
    assert_eq!(parse["attributes"]["sovereign.phase"], "parse");
    assert_eq!(parse["attributes"]["sovereign.files"], 1);

    receiver.clear();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("build");
    let output = sovereign(&["build", "examples/lab", "-o", target.to_str().unwrap()], &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let spans = arrived(&receiver, "sovereign");
    let root = one(&spans, "sovereign");
    assert_eq!(root["attributes"]["sovereign.command"], "build");
    assert!(child_of(one(&spans, "build"), root));

    // Disabled: nothing is sent, even with an endpoint.
    receiver.clear();
    let disabled = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_SDK_DISABLED", "true")];
    assert!(sovereign(&["check", "examples/lab"], &disabled).status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.spans().is_empty(), "nothing is exported with OTEL_SDK_DISABLED");
}

#[test]
fn apply_traces_each_resource_with_its_outcome_and_no_secret() {
    let Some(receiver) = Receiver::start() else { return };
    let target = cluster::cluster(kube_double::Options::default());
    let (_tmp, spec) = lab::lab_with_canary_secret();
    // The collector's token from the environment: a Secret apply makes, whose value is the canary.
    lab::edit(
        &spec,
        "endpoint=\"http://lgtm.observability.svc.cluster.local:4318\"",
        "endpoint=\"http://lgtm.observability.svc.cluster.local:4318\" token=\"canary\"",
    );
    let context = cluster::current_context(target.kubeconfig());
    let args = cluster::run_args("apply", spec.to_str().unwrap(), &target, &context);
    let endpoint = receiver.endpoint();
    let output = sovereign(&args, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    assert!(output.status.success(), "{}", cluster::text(&output));
    let spans = arrived(&receiver, "sovereign");
    let root = one(&spans, "sovereign");
    assert_eq!(root["attributes"]["sovereign.command"], "apply");
    assert!(child_of(one(&spans, "plan"), root));
    let resources = named(&spans, "apply.resource");
    assert!(resources.len() > 20, "{} resource spans", resources.len());
    let deployment = resources
        .iter()
        .find(|s| s["attributes"]["sovereign.resource.kind"] == "apps/Deployment")
        .expect("a Deployment's span");
    let attributes = &deployment["attributes"];
    assert_eq!(attributes["sovereign.resource.target"], "k3s");
    assert_eq!(attributes["sovereign.resource.site"], "bench");
    assert_eq!(attributes["sovereign.action"], "apply");
    assert_eq!(attributes["sovereign.outcome"], "applied");
    assert!(attributes["sovereign.declaration"].as_str().unwrap().starts_with("serve "), "{attributes}");
    assert!(attributes["sovereign.resource.id"].as_str().unwrap().starts_with("k3s/bench/apps/Deployment/"));
    assert!(attributes["sovereign.duration_ms"].is_i64());
    assert!(resources.iter().all(|s| s["trace_id"] == root["trace_id"]));
    let raw = receiver.raw();
    let canary = cluster::CANARY.as_bytes();
    assert!(!raw.windows(canary.len()).any(|w| w == canary), "the canary is in an exported byte");
}

#[test]
fn logfire_gets_the_write_token_as_its_authorization_header() {
    let Some(receiver) = Receiver::start() else { return };
    let token = "pylf_v1_eu_test-token";
    let base = receiver.endpoint();
    let output =
        sovereign(&["check", "examples/lab"], &[("LOGFIRE_TOKEN", token), ("LOGFIRE_BASE_URL", base.as_str())]);
    assert!(output.status.success());
    let spans = arrived(&receiver, "sovereign");
    assert_eq!(one(&spans, "sovereign")["authorization"], token);
}

#[test]
fn logs_are_lines_on_stderr_only_when_rust_log_asks_and_json_on_request() {
    let quiet = sovereign(&["check", "examples/lab"], &[]);
    assert!(quiet.status.success());
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("close"), "no logs without RUST_LOG");
    let human = sovereign(&["check", "examples/lab"], &[("RUST_LOG", "info")]);
    let said = String::from_utf8_lossy(&human.stderr).into_owned();
    assert!(said.contains("INFO") && said.contains("parse{") && !said.contains('\u{1b}'), "{said}");
    let json = sovereign(&["--log-format", "json", "check", "examples/lab"], &[("RUST_LOG", "info")]);
    let lines: Vec<Value> = String::from_utf8_lossy(&json.stderr)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["span"]["name"] == "analyze"), "{lines:?}");
    assert_eq!(json.stdout, quiet.stdout, "the command's own output is unchanged");
}

/// Through a fault-injecting proxy with an admission webhook's denial:
/// retries are events of their resource's span (the attempt that comes
/// next), and the refused HelmChart's span is failed, with an error event
/// carrying SOV6001.
#[test]
fn retries_and_refusals_are_events_of_their_resources_span() {
    let Some(receiver) = Receiver::start() else { return };
    let target = cluster::cluster(kube_double::Options::default());
    let denial = kube_double::Denial {
        path: "/helmcharts/notes".into(),
        webhook: "policy.example.com".into(),
        message: "helm charts must come from the internal repository".into(),
    };
    let faults = kube_double::Faults {
        rate: 0.1,
        seed: 9,
        hang: Duration::from_secs(1),
        denials: vec![denial],
        ..kube_double::Faults::default()
    };
    let Some(through) = cluster::Proxied::start(&target, faults) else { return };
    let (_tmp, spec) = lab::lab_with_canary_secret();
    let endpoint = receiver.endpoint();
    let args = through.args(&spec, &["--request-timeout", "1"]);
    let output = sovereign(&args, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    assert_eq!(output.status.code(), Some(1), "{}", cluster::text(&output));
    let spans = arrived(&receiver, "sovereign");
    let resources = named(&spans, "apply.resource");
    let refused = resources
        .iter()
        .find(|s| {
            s["attributes"]["sovereign.resource.kind"] == "helm.cattle.io/HelmChart"
                && s["attributes"]["sovereign.outcome"] == "failed"
        })
        .expect("the refused HelmChart's span");
    assert!(
        refused["events"].as_array().unwrap().iter().any(|e| e["attributes"]["sovereign.error.code"] == "SOV6001"),
        "{refused:#}"
    );
    let retried = resources
        .iter()
        .flat_map(|s| s["events"].as_array().unwrap())
        .any(|e| e["attributes"]["sovereign.attempt"].as_i64().is_some_and(|n| n >= 2));
    assert!(retried, "a retry is an event with its attempt ({} faults injected)", through.proxy.faults_injected());
}
