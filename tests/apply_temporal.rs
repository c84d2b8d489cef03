//! `sovereign apply` driving Temporal: the lab's namespace and eval
//! schedule on a real Temporal server (`SOVEREIGN_TEMPORAL_HTTP`, or one
//! this binary starts), its Kubernetes objects on the API double (or a
//! real cluster with `SOVEREIGN_E2E_KUBECONFIG`), in one apply.

#[path = "support/apply_cluster.rs"]
#[allow(dead_code)] // shared with tests/apply.rs, which uses all of it
mod cluster;
#[path = "support/lab.rs"]
mod lab;
#[path = "../targets/temporal-driver/tests/support/server.rs"]
#[allow(dead_code)]
mod temporal;

use std::path::Path;
use std::time::Duration;

use cluster::{CANARY, Cluster, apply, cluster, current_context, run_args, sovereign, text};
use kube_double::Options;
use lab::{edit, lab_with_canary_secret};
use serde_json::Value;

/// The plan's changes for Kubernetes and Temporal: (action, id), sorted.
fn changes(spec: &Path) -> Vec<(String, String)> {
    cluster::changes_for(spec, &["k3s", "helm", "temporal"])
}

fn get(endpoint: &str, path: &str) -> Option<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = sovereign_temporal_driver::TemporalServer::new(endpoint, Duration::from_secs(10)).unwrap();
    runtime.block_on(async {
        match path.split_once("/schedules/") {
            Some((namespace, id)) => server.schedule(namespace, id).await.unwrap(),
            None => server.namespace(path).await.unwrap(),
        }
    })
}

#[test]
fn e2e_temporal_namespaces_and_schedules_are_applied_updated_and_removed() {
    let Some(endpoint) = temporal::endpoint() else { return };
    let target = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    // A namespace of this run's own: the server may be shared.
    let namespace = lab::own_temporal_namespace(&spec, Some(endpoint), cluster::rand_suffix());
    let planned = changes(&spec);
    assert!(
        planned.contains(&("create".into(), format!("temporal/bench/namespace/metabolism/{namespace}"))),
        "{planned:?}"
    );

    let output = apply(&spec, &target, &["--target", "temporal"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(!text(&output).contains(CANARY));
    assert_eq!(changes(&spec), Vec::<(String, String)>::new(), "after apply nothing is left to do");
    let live = get(endpoint, &namespace).expect("the namespace is registered");
    assert_eq!(live["config"]["workflowExecutionRetentionTtl"], "259200s");
    let schedule_path = format!("{namespace}/schedules/eval-chat-smoke");
    let schedule = get(endpoint, &schedule_path).expect("the eval's schedule is created");
    assert_eq!(schedule["schedule"]["action"]["startWorkflow"]["workflowType"]["name"], "sovereign.Eval");

    // A longer retention and a later run: two updates, in place.
    edit(
        &spec,
        &format!("namespace \"{namespace}\" retention=\"3d\""),
        &format!("namespace \"{namespace}\" retention=\"7d\""),
    );
    edit(&spec, "schedule \"0 7 * * 1-5\"", "schedule \"0 8 * * 1-5\"");
    let planned = changes(&spec);
    assert_eq!(
        planned,
        vec![
            ("update".to_owned(), format!("temporal/bench/namespace/metabolism/{namespace}")),
            ("update".to_owned(), format!("temporal/bench/schedule/metabolism/{namespace}/eval-chat-smoke")),
        ]
    );
    let output = apply(&spec, &target, &["--target", "temporal"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(get(endpoint, &namespace).unwrap()["config"]["workflowExecutionRetentionTtl"], "604800s");
    let schedule = get(endpoint, &schedule_path).unwrap();
    assert_eq!(schedule.pointer("/schedule/spec/structuredCalendar/0/hour/0/start"), Some(&serde_json::json!(8)));

    // The eval removed: its schedule is deleted (with its network policies on the cluster).
    edit(&spec, "eval \"chat-smoke\"", "/-eval \"chat-smoke\"");
    let planned = changes(&spec);
    assert!(
        planned.contains(&("delete".into(), format!("temporal/bench/schedule/metabolism/{namespace}/eval-chat-smoke"))),
        "{planned:?}"
    );
    let output = apply(&spec, &target, &["--target", "temporal"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(get(endpoint, &schedule_path), None, "the schedule is gone");
    assert_eq!(changes(&spec), Vec::<(String, String)>::new());

    // Destroy deletes what the Temporal HTTP API can delete, and says what it cannot.
    let context = current_context(target.kubeconfig());
    let mut args = run_args("destroy", spec.to_str().unwrap(), &target, &context);
    args.extend(["--target", "temporal"]);
    let output = sovereign(&args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("temporal operator namespace delete"), "{}", text(&output));
    if let Cluster::Real(..) = &target {
        let _ = sovereign(&run_args("destroy", spec.to_str().unwrap(), &target, &context));
    }
}

#[test]
fn e2e_a_temporal_sovereign_deploys_is_reached_through_the_api_servers_service_proxy() {
    let Some(endpoint) = temporal::endpoint() else { return };
    let target = cluster(Options::default());
    let Cluster::Double(double, _) = &target else {
        eprintln!(
            "skipped against a real cluster: the Temporal this test deploys needs a helm controller and a kubelet"
        );
        return;
    };
    // What the helm controller and the kubelet would have made: the chart's frontend, serving.
    let address = endpoint.trim_start_matches("http://").parse().unwrap();
    double.set_service_backend("lab-metabolism", "metabolism-temporal-frontend:7243", address);
    let (_tmp, spec) = lab_with_canary_secret();
    let namespace = lab::own_temporal_namespace(&spec, None, cluster::rand_suffix());
    let output = apply(&spec, &target, &["--target", "temporal"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(get(endpoint, &namespace).is_some(), "the namespace is registered through the proxy");
    assert!(get(endpoint, &format!("{namespace}/schedules/eval-chat-smoke")).is_some());
    assert_eq!(changes(&spec), Vec::<(String, String)>::new());
}

#[test]
fn e2e_temporal_converges_through_a_fault_injecting_proxy() {
    let Some(endpoint) = temporal::endpoint() else { return };
    let upstream = endpoint.trim_start_matches("http://").parse().unwrap();
    let faults =
        kube_double::Faults { rate: 0.15, seed: 5, hang: Duration::from_secs(2), ..kube_double::Faults::default() };
    let proxy = kube_double::FaultProxy::start(upstream, faults, Duration::ZERO).unwrap();
    let target = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    let namespace = lab::own_temporal_namespace(&spec, Some(&proxy.url()), cluster::rand_suffix());
    let output = apply(&spec, &target, &["--target", "temporal", "--request-timeout", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(proxy.faults_injected() > 0, "faults were injected ({} requests)", proxy.requests());
    // Read back directly: exactly what the spec says, once.
    assert_eq!(get(endpoint, &namespace).unwrap()["config"]["workflowExecutionRetentionTtl"], "259200s");
    assert!(get(endpoint, &format!("{namespace}/schedules/eval-chat-smoke")).is_some());
    assert_eq!(changes(&spec), Vec::<(String, String)>::new());
}

/// `kill -9` after each journal line of a Temporal apply, then a rerun:
/// the namespace and the schedule end up as a clean apply makes them,
/// each once, and the plan has nothing left.
#[test]
fn e2e_temporal_kill_at_journal_steps_then_rerun_converges() {
    let Some(endpoint) = temporal::endpoint() else { return };
    let target = cluster(Options::default());
    let context = current_context(target.kubeconfig());
    let mut points = 0;
    for step in 1..=6 {
        let (_tmp, spec) = lab_with_canary_secret();
        let namespace = lab::own_temporal_namespace(&spec, Some(endpoint), cluster::rand_suffix());
        let mut args = run_args("apply", spec.to_str().unwrap(), &target, &context);
        args.extend(["--target", "temporal"]);
        let mut child = cluster::spawn_quiet(&args);
        let journal = spec.join(".sovereign/state.json.journal");
        let killed = cluster::kill_at_journal_line(&mut child, &journal, step, Duration::from_secs(60));
        points += usize::from(killed);
        let output = apply(&spec, &target, &["--target", "temporal"]);
        assert!(output.status.success(), "after a kill at journal line {step}: {}", text(&output));
        let live = get(endpoint, &namespace).expect("the namespace is registered");
        assert_eq!(live["config"]["workflowExecutionRetentionTtl"], "259200s", "after a kill at line {step}");
        let schedule = get(endpoint, &format!("{namespace}/schedules/eval-chat-smoke")).expect("the schedule exists");
        assert_eq!(schedule["schedule"]["action"]["startWorkflow"]["workflowType"]["name"], "sovereign.Eval");
        assert_eq!(changes(&spec), Vec::<(String, String)>::new(), "after a kill at journal line {step}");
    }
    assert!(points >= 3, "the kill landed mid-run at {points} of 6 journal lines");
}
