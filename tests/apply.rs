//! `sovereign apply` and `destroy` end to end, against the Kubernetes API
//! double (tools/kube-double) or, with `SOVEREIGN_E2E_KUBECONFIG` set, a
//! real API server through its kubeconfig's current context (a bare
//! kube-apiserver is enough when a stand-in writes workload status).
//! `cargo test e2e` selects them.

#[path = "support/apply_cluster.rs"]
mod cluster;
#[path = "support/lab.rs"]
mod lab;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{
    CANARY, Cluster, Proxied, apply, cluster, current_context, k3s_changes, refreshed_changes, run_args, sovereign,
    spawn_quiet, text,
};
use kube_double::{Denial, Faults, Options};
use lab::{edit, lab_with_canary_secret};
use serde_json::Value;

#[test]
fn e2e_lab_from_nothing_to_applied_edited_and_destroyed() {
    let cluster = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    assert!(!k3s_changes(&spec).is_empty());
    let output = apply(&spec, &cluster, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("apply: 3 carried, 40 ready"), "{}", text(&output));
    assert_eq!(k3s_changes(&spec), Vec::<(String, String)>::new(), "after apply the Kubernetes part has no changes");
    let applied = cluster.labelled("lab");
    assert!(
        applied.iter().any(|object| object["kind"] == "Deployment" && object["metadata"]["name"] == "utility-gpu-01")
    );

    // One serve removed, the other scaled onto the freed slices: a new MIG layout.
    let start = std::fs::read_to_string(spec.join("fabric.kdl")).unwrap();
    let utility = start.find("serve \"utility\"").unwrap();
    let end = utility + start[utility..].find("}\n").unwrap() + 2;
    std::fs::write(spec.join("fabric.kdl"), format!("{}{}", &start[..utility], &start[end..])).unwrap();
    edit(&spec, "replicas 1 ", "replicas 2 ");
    let changes = k3s_changes(&spec);
    let ids: Vec<&str> = changes
        .iter()
        .map(|(action, id)| if action == "delete" { id.as_str() } else { "" })
        .filter(|id| !id.is_empty())
        .collect();
    assert!(ids.contains(&"k3s/bench/apps/Deployment/lab-kinetic/utility-gpu-01"), "{changes:?}");
    assert!(
        changes.contains(&("update".into(), "k3s/bench/apps/Deployment/lab-kinetic/chat-gpu-01".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("update".into(), "k3s/bench/ConfigMap/gpu-operator/sovereign-mig-parted-config".into())),
        "{changes:?}"
    );
    let output = apply(&spec, &cluster, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(k3s_changes(&spec), Vec::<(String, String)>::new());
    let live = cluster.labelled("lab");
    let chat = live
        .iter()
        .find(|object| object["kind"] == "Deployment" && object["metadata"]["name"] == "chat-gpu-01")
        .unwrap();
    assert_eq!(chat["spec"]["replicas"], 2);
    assert!(!live.iter().any(|object| object["metadata"]["name"] == "utility-gpu-01"), "the removed serve is pruned");

    let context = current_context(cluster.kubeconfig());
    let output = sovereign(&run_args("destroy", spec.to_str().unwrap(), &cluster, &context));
    assert!(output.status.success(), "{}", text(&output));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.labelled("lab").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(cluster.labelled("lab"), Vec::<Value>::new(), "destroy leaves no object with the fabric's label");

    // The canary is in no output, state or journal.
    let state = std::fs::read_to_string(spec.join(".sovereign/state.json")).unwrap();
    assert!(!state.contains(CANARY) && !text(&output).contains(CANARY));
}

#[test]
fn e2e_apply_without_a_tty_needs_auto_approve() {
    let cluster = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    let context = current_context(cluster.kubeconfig());
    let output = sovereign(&[
        "apply",
        spec.to_str().unwrap(),
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--context",
        &context,
        "--target",
        "k3s",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("--auto-approve"), "{}", text(&output));
}

#[test]
fn e2e_apply_converges_through_a_fault_injecting_proxy() {
    let faults = Faults { rate: 0.05, seed: 7, hang: Duration::from_secs(2), ..Faults::default() };
    let target = cluster(Options::default());
    let Some(through) = Proxied::start(&target, faults) else { return };
    let (_tmp, spec) = lab_with_canary_secret();
    let output = through.apply(&spec, &["--request-timeout", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    let proxy = &through.proxy;
    assert!(proxy.faults_injected() > 0, "faults were injected ({} requests)", proxy.requests());
    // Nothing lost or duplicated: read back directly, the clusters have exactly what the spec says.
    let context = current_context(target.kubeconfig());
    let (pending, said) = refreshed_changes(&spec, &target, &context);
    assert!(pending.is_empty(), "{pending:?} {said}");
    if let Cluster::Double(..) = &target {
        // And the same objects as a clean apply.
        let clean = cluster(Options::default());
        let (_tmp2, spec2) = lab_with_canary_secret();
        assert!(apply(&spec2, &clean, &[]).status.success());
        assert_eq!(target.labelled("lab"), clean.labelled("lab"), "the same objects as a clean apply");
    } else {
        let _ = sovereign(&run_args("destroy", spec.to_str().unwrap(), &target, &context));
    }
}

#[test]
fn e2e_an_object_an_admission_webhook_denies_is_a_diagnostic_at_its_declaration() {
    let denial = Denial {
        path: "/helmcharts/notes".into(),
        webhook: "policy.example.com".into(),
        message: "helm charts must come from the internal repository".into(),
    };
    let target = cluster(Options::default());
    let Some(through) = Proxied::start(&target, Faults { denials: vec![denial], ..Faults::default() }) else {
        return;
    };
    let (_tmp, spec) = lab_with_canary_secret();
    let output = through.apply(&spec, &[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    let line = examples_line(&spec, "vectorstore \"notes\"");
    assert!(
        said.contains("SOV6001(object-refused)")
            && said.contains(&format!("fabric.kdl:{line}:"))
            && said.contains("admission webhook \"policy.example.com\" denied the request"),
        "SOV6001 at fabric.kdl:{line}: {said}"
    );
    // The rest went on: only what the refused object is needed by was not done.
    let (pending, _) = refreshed_changes(&spec, &target, &current_context(target.kubeconfig()));
    assert!(pending.iter().any(|(_, id)| id.ends_with("/notes")), "{pending:?}");
    assert!(pending.len() <= 3, "the rest of the plan was applied: {pending:?}");
    // --json says it too, for machines.
    let output = through.apply(&spec, &["--json"]);
    let events = String::from_utf8_lossy(&output.stdout);
    assert!(events.lines().any(|line| line.contains("\"code\":\"SOV6001\"")), "{events}");
    if let Cluster::Real(..) = &target {
        let context = current_context(target.kubeconfig());
        let _ = sovereign(&run_args("destroy", spec.to_str().unwrap(), &target, &context));
    }
}

#[test]
fn e2e_kill_at_journal_steps_then_rerun_converges() {
    if std::env::var_os("SOVEREIGN_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped against a real cluster: it needs a fresh cluster per kill point");
        return;
    }
    let clean = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    edit(
        &spec,
        "endpoint=\"http://lgtm.observability.svc.cluster.local:4318\"",
        "endpoint=\"http://lgtm.observability.svc.cluster.local:4318\" token=\"canary\"",
    );
    assert!(apply(&spec, &clean, &[]).status.success());
    let expected = clean.labelled("lab");
    let mut points = 0;
    for step in (2..=78).step_by(4) {
        let cluster = cluster(Options { latency: Duration::from_millis(5), ..Options::default() });
        let (_tmp, spec) = lab_with_canary_secret();
        // The collector's token from the environment: a Secret apply makes, whose value is the canary.
        edit(
            &spec,
            "endpoint=\"http://lgtm.observability.svc.cluster.local:4318\"",
            "endpoint=\"http://lgtm.observability.svc.cluster.local:4318\" token=\"canary\"",
        );
        let context = current_context(cluster.kubeconfig());
        let args = run_args("apply", spec.to_str().unwrap(), &cluster, &context);
        let mut child = spawn_quiet(&args);
        let journal = spec.join(".sovereign/state.json.journal");
        let killed = cluster::kill_at_journal_line(&mut child, &journal, step, Duration::from_secs(30));
        points += usize::from(killed);
        let left = std::fs::read_to_string(&journal).unwrap_or_default();
        assert!(
            !left.contains(CANARY) && !left.contains("Y2FuYXJ5LTdmM2E5MWMwZGU"),
            "the journal holds no secret value"
        );
        let output = apply(&spec, &cluster, &[]);
        let tail: Vec<String> = text(&output).lines().rev().take(12).map(str::to_owned).collect();
        assert!(output.status.success(), "after a kill at journal line {step}: {}", tail.join("\n"));
        assert_eq!(cluster.labelled("lab"), expected, "after a kill at journal line {step}");
        assert_eq!(k3s_changes(&spec), Vec::<(String, String)>::new(), "after a kill at journal line {step}");
        for secret in [
            "lab-autopilot/secrets/sovereign-canary",
            "lab-metabolism/secrets/metabolism-postgresql",
            "lab-kinetic/secrets/notes-api-key",
        ] {
            assert!(
                cluster.get(&format!("/api/v1/namespaces/{secret}")).is_some(),
                "{secret} after a kill at journal line {step}"
            );
        }
    }
    assert!(points >= 15, "only {points} runs were killed mid-apply");
}

#[test]
fn e2e_a_second_apply_waits_for_the_lock_then_fails_naming_the_holder() {
    let cluster = cluster(Options { latency: Duration::from_millis(40), ..Options::default() });
    let (_tmp, spec) = lab_with_canary_secret();
    let context = current_context(cluster.kubeconfig());
    let args = run_args("apply", spec.to_str().unwrap(), &cluster, &context);
    let mut first = spawn_quiet(&args);
    let lock = spec.join(".sovereign/state.json.lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock).map_or(true, |text| !text.contains("apply")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = apply(&spec, &cluster, &["--lock-timeout", "0.2"]);
    assert!(first.wait().unwrap().success());
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(text(&second).contains("pid") && text(&second).contains("apply"), "{}", text(&second));
}

#[test]
fn e2e_refresh_finds_drift_deletions_and_unrecorded_objects_and_apply_mends_them() {
    let cluster = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    assert!(apply(&spec, &cluster, &[]).status.success());
    let context = current_context(cluster.kubeconfig());
    let plan_refresh = |spec: &Path| refreshed_changes(spec, &cluster, &context);
    // Defaulted fields (cluster IPs, namespace labels, container defaults) and status are not drift.
    assert_eq!(plan_refresh(&spec).0, Vec::<(String, String)>::new());

    // A plan saved now goes stale when the clusters change under it.
    edit(&spec, "max-model-len 8192", "max-model-len 4096");
    let saved = spec.parent().unwrap().join("saved.plan");
    let output = sovereign(&["plan", spec.to_str().unwrap(), "-o", saved.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));

    // Someone scales a serve by hand, deletes a policy, and leaves an object with the fabric's label.
    let scaled = serde_json::json!({"spec": {"replicas": 3}});
    assert_eq!(
        cluster.request(
            "PATCH",
            "/apis/apps/v1/namespaces/lab-kinetic/deployments/chat-gpu-01?fieldManager=kubectl-edit",
            "application/merge-patch+json",
            &scaled
        ),
        200
    );
    assert_eq!(
        cluster.request(
            "DELETE",
            "/apis/networking.k8s.io/v1/namespaces/lab-kinetic/networkpolicies/allow-dns",
            "application/json",
            &serde_json::json!({})
        ),
        200
    );
    let stray = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray", "namespace": "lab-kinetic", "labels": {"sovereign.dev/fabric": "lab"}}});
    assert_eq!(cluster.request("POST", "/api/v1/namespaces/lab-kinetic/configmaps", "application/json", &stray), 201);
    let (changes, said) = plan_refresh(&spec);
    assert_eq!(
        changes,
        vec![
            ("create".to_owned(), "k3s/bench/networking.k8s.io/NetworkPolicy/lab-kinetic/allow-dns".to_owned()),
            ("delete".to_owned(), "k3s/bench/ConfigMap/lab-kinetic/stray".to_owned()),
            ("update".to_owned(), "k3s/bench/apps/Deployment/lab-kinetic/chat-gpu-01".to_owned()),
        ],
        "{said}"
    );
    assert!(said.contains("spec.replicas changed outside sovereign"), "{said}");
    let output = sovereign(&[
        "apply",
        saved.to_str().unwrap(),
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--context",
        &context,
        "--target",
        "k3s",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("the clusters changed since")
            && text(&output).contains("chat-gpu-01: spec.replicas changed"),
        "{}",
        text(&output)
    );
    edit(&spec, "max-model-len 4096", "max-model-len 8192");
    // The plan without --refresh trusts the state and sees nothing.
    assert_eq!(k3s_changes(&spec), Vec::<(String, String)>::new());

    // The scaling was another manager's update: taking the field back is a conflict sovereign names.
    let output = apply(&spec, &cluster, &["--refresh"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("kubectl-edit")
            && text(&output).contains(".spec.replicas")
            && text(&output).contains("--force-conflicts"),
        "{}",
        text(&output)
    );
    // As a diagnostic at the declaration the Deployment came from.
    let said = text(&output);
    let line = examples_line(&spec, "serve \"chat\"");
    assert!(
        said.contains("SOV6002(field-conflict)") && said.contains(&format!("fabric.kdl:{line}:")),
        "SOV6002 at fabric.kdl:{line}: {said}"
    );
    let output = apply(&spec, &cluster, &["--refresh", "--force-conflicts"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(plan_refresh(&spec).0, Vec::<(String, String)>::new());
    let live = cluster.labelled("lab");
    assert!(!live.iter().any(|object| object["metadata"]["name"] == "stray"));
    let chat = live
        .iter()
        .find(|object| object["kind"] == "Deployment" && object["metadata"]["name"] == "chat-gpu-01")
        .unwrap();
    assert_eq!(chat["spec"]["replicas"], 1);
}

#[test]
fn e2e_the_kubernetes_state_backend_is_shared_and_locked_by_a_lease() {
    let cluster = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    edit(&spec, "state backend=\"local\"", "state backend=\"kubernetes\" site=\"bench\"");
    let context = current_context(cluster.kubeconfig());
    let kubeconfig = cluster.kubeconfig().to_str().unwrap();
    let output = apply(&spec, &cluster, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(!spec.join(".sovereign/state.json").exists(), "no local state file");
    // A second checkout (another engineer, CI) plans from the same state.
    let (_tmp2, other) = lab_with_canary_secret();
    edit(&other, "state backend=\"local\"", "state backend=\"kubernetes\" site=\"bench\"");
    let output =
        sovereign(&["plan", other.to_str().unwrap(), "--json", "--kubeconfig", kubeconfig, "--context", &context]);
    assert!(output.status.success(), "{}", text(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pending: Vec<&Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| matches!(change["target"].as_str(), Some("k3s" | "helm")) && change["action"] != "no-op")
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
    assert!(plan["basis"]["state_path"].as_str().unwrap().starts_with("kubernetes:"), "{}", plan["basis"]);

    // While one run holds the Lease, another waits, then fails naming it.
    let Cluster::Double(double, _) = &cluster else {
        eprintln!("against a real cluster: the lock race is not run (it needs the double's latency)");
        return;
    };
    double.set_latency(Duration::from_millis(30));
    edit(&spec, "max-model-len 8192", "max-model-len 4096");
    let args = run_args("apply", spec.to_str().unwrap(), &cluster, &context);
    let mut first = spawn_quiet(&args);
    let deadline = Instant::now() + Duration::from_secs(30);
    let lease = || {
        double
            .objects()
            .into_iter()
            .find(|object| object["kind"] == "Lease" && object["metadata"]["name"] == "lock-lab")
    };
    while lease().is_none_or(|lease| lease.pointer("/spec/holderIdentity").is_none()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = apply(&other, &cluster, &["--lock-timeout", "0.3"]);
    assert!(first.wait().unwrap().success());
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(text(&second).contains("locked by lock") && text(&second).contains("apply by"), "{}", text(&second));
    // Released: the Lease names nobody, and the state moved on for everyone.
    assert!(lease().unwrap().pointer("/spec/holderIdentity").is_none());
    let state_maps = double
        .objects()
        .into_iter()
        .filter(|object| {
            object["kind"] == "ConfigMap" && object.pointer("/metadata/labels/sovereign.dev~1state-of").is_some()
        })
        .count();
    assert!(state_maps >= 2, "the index and its chunks");
}

#[test]
fn e2e_apply_makes_the_secrets_a_build_cannot_hold_and_never_shows_them() {
    let cluster = cluster(Options::default());
    let (_tmp, spec) = lab_with_canary_secret();
    // The collector's export token comes from the environment: the canary.
    edit(
        &spec,
        "export \"otlp\" endpoint=\"http://lgtm.observability.svc.cluster.local:4318\"",
        "export \"otlp\" endpoint=\"http://lgtm.observability.svc.cluster.local:4318\" token=\"canary\"",
    );
    let saved = spec.parent().unwrap().join("saved.plan");
    let output = sovereign(&["plan", spec.to_str().unwrap(), "-o", saved.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let context = current_context(cluster.kubeconfig());
    let output = sovereign(&[
        "apply",
        saved.to_str().unwrap(),
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--context",
        &context,
        "--target",
        "k3s",
        "--timeout-scale",
        "0.2",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);

    let data = |path: &str, key: &str| {
        let secret = cluster.get(path).unwrap_or_else(|| panic!("{path} exists"));
        secret["data"][key].as_str().unwrap_or_else(|| panic!("{path} has {key}")).to_owned()
    };
    // base64("canary-7f3a91c0de")
    assert_eq!(data("/api/v1/namespaces/lab-autopilot/secrets/sovereign-canary", "value"), "Y2FuYXJ5LTdmM2E5MWMwZGU=");
    let password = data("/api/v1/namespaces/lab-metabolism/secrets/metabolism-postgresql", "password");
    assert_eq!(password.len(), 88, "64 hex characters, in base64");
    let api_key = data("/api/v1/namespaces/lab-kinetic/secrets/notes-api-key", "api-key");

    // Generated values are made once: another apply keeps them.
    edit(&spec, "max-model-len 8192", "max-model-len 4096");
    let output = apply(&spec, &cluster, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(data("/api/v1/namespaces/lab-metabolism/secrets/metabolism-postgresql", "password"), password);
    assert_eq!(data("/api/v1/namespaces/lab-kinetic/secrets/notes-api-key", "api-key"), api_key);
    // Not strays for refresh, and in no plan.
    let output = sovereign(&[
        "plan",
        spec.to_str().unwrap(),
        "--refresh",
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--context",
        &context,
    ]);
    assert!(text(&output).contains("0 unrecorded"), "{}", text(&output));

    // No value anywhere: outputs, the saved plan, the state.
    let state = std::fs::read_to_string(spec.join(".sovereign/state.json")).unwrap();
    let plan_file = std::fs::read_to_string(&saved).unwrap();
    for (what, text) in [
        ("apply output", said.as_str()),
        ("later output", &text(&output)),
        ("state", &state),
        ("saved plan", &plan_file),
    ] {
        assert!(
            !text.contains(CANARY) && !text.contains("Y2FuYXJ5LTdmM2E5MWMwZGU") && !text.contains(&password),
            "{what}"
        );
    }
    assert!(!spec.join(".sovereign/state.json.journal").exists());

    // A missing source fails the run by name before anything is applied.
    edit(&spec, "max-model-len 4096", "max-model-len 2048");
    let context2 = context.clone();
    let mut args = run_args("apply", spec.to_str().unwrap(), &cluster, &context2);
    args.push("--json");
    let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(&args)
        .env_remove("SOVEREIGN_TEST_CANARY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output);
    assert!(
        said.contains("nothing was applied") && said.contains("the environment has no SOVEREIGN_TEST_CANARY"),
        "{said}"
    );
    assert!(
        k3s_changes(&spec).contains(&("update".into(), "k3s/bench/apps/Deployment/lab-kinetic/chat-gpu-01".into())),
        "the serve's update was not applied"
    );
}

#[test]
fn e2e_a_site_whose_cluster_cannot_be_reached_fails_alone() {
    let cluster = cluster(Options::default());
    let Cluster::Double(double, _) = &cluster else {
        eprintln!("skipped against a real cluster: it needs a kubeconfig context named after the spec's site");
        return;
    };
    let (_tmp, spec) = lab_with_canary_secret();
    // The kubeconfig names the double `lab`, as the spec's bench site does.
    let kubeconfig = spec.parent().unwrap().join("kubeconfig");
    double.write_kubeconfig(&kubeconfig, "lab").unwrap();
    let apply_here = || {
        sovereign(&[
            "apply",
            spec.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--auto-approve",
            "--target",
            "k3s",
            "--timeout-scale",
            "0.2",
        ])
    };
    let output = apply_here();
    assert!(output.status.success(), "{}", text(&output));
    // A second site, whose context the kubeconfig does not have, takes over the small serve.
    edit(
        &spec,
        "// ---------------------------------------------------------------------------\n// Models",
        "site \"annex\" tier=\"server\" region=\"eu-central\" {\n    cluster kind=\"k3s\" context=\"annex\"\n    node \"gpu-02\" gpu=\"h100-80gb\" gpus=1 cpu=32 memory=\"256GiB\"\n}\n\n// ---------------------------------------------------------------------------\n// Models",
    );
    edit(
        &spec,
        "serve \"utility\" model=\"llama-3b\" site=\"bench\" {\n    mig \"2g.20gb\"\n",
        "serve \"utility\" model=\"llama-3b\" site=\"annex\" {\n",
    );
    let output = apply_here();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("site annex's cluster") && said.contains("not done"), "{said}");
    // The reachable site was applied whole, its prune included.
    let live = cluster.labelled("lab");
    assert!(
        live.iter().any(|object| object["kind"] == "Deployment" && object["metadata"]["name"] == "chat-gpu-01"),
        "{said}"
    );
    assert!(
        !live.iter().any(|object| object["metadata"]["name"] == "utility-gpu-01"),
        "the serve that moved is pruned on bench: {said}"
    );
    let pending = k3s_changes(&spec);
    assert!(!pending.is_empty() && pending.iter().all(|(_, id)| id.contains("/annex/")), "{pending:?}");
}

#[test]
fn e2e_an_object_that_never_became_ready_is_applied_again() {
    let cluster = cluster(Options::default());
    let Cluster::Double(double, _) = &cluster else {
        eprintln!("skipped against a real cluster: it needs the double's stand-in to fail an image pull");
        return;
    };
    double.set_trouble(kube_double::Trouble { unpullable: vec!["vllm-openai".into()], ..Default::default() });
    let (_tmp, spec) = lab_with_canary_secret();
    let context = current_context(cluster.kubeconfig());
    // Short timeouts: the Services wait for endpoints that the failing pods never give.
    let output = sovereign(&[
        "apply",
        spec.to_str().unwrap(),
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--context",
        &context,
        "--auto-approve",
        "--target",
        "k3s",
        "--timeout-scale",
        "0.02",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("ImagePullBackOff"), "{}", text(&output));
    // Applied but not ready: recorded, and planned again.
    let state = std::fs::read_to_string(spec.join(".sovereign/state.json")).unwrap();
    assert!(state.contains("\"unready\":true"), "the state marks it");
    let changes = k3s_changes(&spec);
    assert!(
        changes.contains(&("update".to_owned(), "k3s/bench/apps/Deployment/lab-kinetic/chat-gpu-01".to_owned())),
        "{changes:?}"
    );
    double.set_trouble(kube_double::Trouble::default());
    let output = apply(&spec, &cluster, &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(k3s_changes(&spec), Vec::<(String, String)>::new());
}

/// The 1-based line of a spec folder's `fabric.kdl` that holds `text`.
fn examples_line(spec: &Path, text: &str) -> usize {
    let source = std::fs::read_to_string(spec.join("fabric.kdl")).unwrap();
    source.lines().position(|line| line.contains(text)).unwrap() + 1
}
