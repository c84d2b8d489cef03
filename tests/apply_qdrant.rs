//! `sovereign apply` driving Qdrant: the lab's collection on the Qdrant
//! double (tools/qdrant-double) behind the API double's service proxy, as
//! the vectorstore's chart would run it, with the API key from the Secret.

#[path = "support/apply_cluster.rs"]
#[allow(dead_code)] // shared with tests/apply.rs, which uses all of it
mod cluster;
#[path = "support/lab.rs"]
mod lab;

use cluster::{CANARY, Cluster, apply, cluster, text};
use kube_double::Options;
use lab::{edit, lab_with_canary_secret};
use serde_json::json;

/// A key that must appear in no output, state or journal.
const API_KEY: &str = "qdrant-key-canary-51d2e0";

fn qdrant_changes(spec: &std::path::Path) -> Vec<(String, String)> {
    cluster::changes_for(spec, &["qdrant"])
}

#[test]
fn e2e_qdrant_collections_are_created_kept_and_replaced_only_with_prune_data() {
    let target = cluster(Options::default());
    let Cluster::Double(double, _) = &target else {
        eprintln!("skipped against a real cluster: the Qdrant this test deploys needs a helm controller and a kubelet");
        return;
    };
    let qdrant = qdrant_double::QdrantDouble::start(qdrant_double::Options {
        api_key: Some(API_KEY.into()),
        ..qdrant_double::Options::default()
    })
    .unwrap();
    double.set_service_backend("lab-kinetic", "notes-qdrant:6333", qdrant.address());
    // The key the chart would read: made before apply, which keeps a generated key it finds.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab-kinetic"}});
    assert_eq!(target.request("POST", "/api/v1/namespaces", "application/json", &namespace), 201);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "notes-api-key", "namespace": "lab-kinetic"},
                        "data": {"api-key": sovereign_desired::base64(API_KEY.as_bytes())}});
    assert_eq!(target.request("POST", "/api/v1/namespaces/lab-kinetic/secrets", "application/json", &secret), 201);

    let (_tmp, spec) = lab_with_canary_secret();
    assert_eq!(
        qdrant_changes(&spec),
        vec![("create".to_owned(), "qdrant/bench/collection/lab-kinetic/notes/papers".to_owned())]
    );
    let output = apply(&spec, &target, &["--target", "qdrant"]);
    assert!(output.status.success(), "{}", text(&output));
    let papers = qdrant.collections().get("papers").cloned().expect("the collection is created");
    assert_eq!((papers.size, papers.distance.as_str()), (1024, "Cosine"));
    assert_eq!(qdrant_changes(&spec), Vec::<(String, String)>::new());

    // Another dimension: a replace, which deletes the vectors, so it needs --prune-data.
    qdrant.set_points("papers", 1200);
    edit(&spec, "collection \"papers\" dims=1024", "collection \"papers\" dims=768");
    assert_eq!(
        qdrant_changes(&spec),
        vec![("replace".to_owned(), "qdrant/bench/collection/lab-kinetic/notes/papers".to_owned())]
    );
    let output = apply(&spec, &target, &["--target", "qdrant"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("--prune-data"), "{}", text(&output));
    assert_eq!(qdrant.collections()["papers"].points, 1200, "the vectors are kept");
    let output = apply(&spec, &target, &["--target", "qdrant", "--prune-data"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(qdrant.collections()["papers"].size, 768);
    assert_eq!(qdrant_changes(&spec), Vec::<(String, String)>::new());

    // The key is in no output, state or journal.
    let state = std::fs::read_to_string(spec.join(".sovereign/state.json")).unwrap();
    for seen in [state, text(&output)] {
        assert!(!seen.contains(API_KEY) && !seen.contains(CANARY));
    }
}

/// Faults on the Qdrant, and `kill -9` after each journal line of an
/// apply, then a rerun: the collection ends up as a clean apply makes it,
/// and the plan has nothing left.
#[test]
fn e2e_qdrant_converges_through_faults_and_after_a_kill_at_each_journal_step() {
    let target = cluster(Options::default());
    let Cluster::Double(double, _) = &target else {
        eprintln!("skipped against a real cluster: the Qdrant this test deploys needs a helm controller and a kubelet");
        return;
    };
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab-kinetic"}});
    assert_eq!(target.request("POST", "/api/v1/namespaces", "application/json", &namespace), 201);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "notes-api-key", "namespace": "lab-kinetic"},
                        "data": {"api-key": sovereign_desired::base64(API_KEY.as_bytes())}});
    assert_eq!(target.request("POST", "/api/v1/namespaces/lab-kinetic/secrets", "application/json", &secret), 201);
    let context = cluster::current_context(target.kubeconfig());
    let mut injected = 0;
    let mut killed = 0;
    for step in 1..=3 {
        let faults = kube_double::Faults {
            rate: 0.2,
            seed: 3 + step as u64,
            hang: std::time::Duration::from_secs(1),
            ..kube_double::Faults::default()
        };
        let qdrant =
            qdrant_double::QdrantDouble::start(qdrant_double::Options { api_key: Some(API_KEY.into()), faults })
                .unwrap();
        double.set_service_backend("lab-kinetic", "notes-qdrant:6333", qdrant.address());
        let (_tmp, spec) = lab_with_canary_secret();
        let mut args = cluster::run_args("apply", spec.to_str().unwrap(), &target, &context);
        args.extend(["--target", "qdrant", "--request-timeout", "1"]);
        let mut child = cluster::spawn_quiet(&args);
        let journal = spec.join(".sovereign/state.json.journal");
        let at_line = cluster::kill_at_journal_line(&mut child, &journal, step, std::time::Duration::from_secs(60));
        killed += usize::from(at_line);
        let output = apply(&spec, &target, &["--target", "qdrant", "--request-timeout", "1"]);
        assert!(output.status.success(), "after a kill at journal line {step}: {}", text(&output));
        let papers = qdrant.collections().get("papers").cloned().expect("the collection is created");
        assert_eq!((papers.size, papers.distance.as_str()), (1024, "Cosine"), "after a kill at line {step}");
        assert_eq!(qdrant_changes(&spec), Vec::<(String, String)>::new(), "after a kill at journal line {step}");
        injected += qdrant.faults_injected();
    }
    assert!(injected > 0, "faults were injected");
    assert!(killed >= 2, "the kill landed mid-run at {killed} of 3 journal lines");
}
