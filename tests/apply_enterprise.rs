//! The enterprise example applied end to end, every target at once: its
//! Kubernetes objects on two API doubles (the Frankfurt cluster, which
//! also holds the shared state and its lease, and the GKE burst cluster),
//! its Temporal namespaces and eval schedule on the real Temporal server
//! behind the Frankfurt double's service proxy (where the Temporal its
//! chart deploys would answer), its device bundle on a real registry, its
//! collections on the Qdrant double behind the same proxy; then a second
//! plan has no changes.
//!
//! Not against a real cluster (`SOVEREIGN_E2E_KUBECONFIG`): the example
//! needs two clusters, a helm controller and a kubelet to become ready.

#[path = "support/apply_cluster.rs"]
#[allow(dead_code)] // shared with tests/apply.rs, which uses all of it
mod cluster;
#[path = "../targets/oci/tests/support/registry.rs"]
#[allow(dead_code)] // shared with tests/apply_oci.rs, which uses all of it
mod registry;
#[path = "../targets/temporal-driver/tests/support/server.rs"]
#[allow(dead_code)]
mod temporal;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use kube_double::{ApiDouble, Options};
use serde_json::json;

/// Values that must appear in no output or state: the Qdrant key, the signing key.
const API_KEY: &str = "enterprise-qdrant-canary-93c1";

fn double(nodes: &[&str]) -> ApiDouble {
    let crds = cluster::root().join("tests/fixtures/upstream/crds");
    let schemas = kube_double::kubernetes_validate_schemas("1.34.0");
    ApiDouble::start(Options {
        schemas,
        crds: [
            "helm.cattle.io_helmcharts.yaml",
            "helm.cattle.io_helmchartconfigs.yaml",
            "external-secrets.io_externalsecrets.yaml",
            "external-secrets.io_clustersecretstores.yaml",
        ]
        .iter()
        .map(|name| crds.join(name))
        .collect(),
        nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        namespaces: vec!["gpu-operator".into()],
        ..Options::default()
    })
    .unwrap()
}

/// One kubeconfig with the example's two contexts, each a double.
fn kubeconfig(path: &Path, fra: &ApiDouble, burst: &ApiDouble) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fra\n  cluster:\n    server: {}\n- name: burst\n  cluster:\n    server: {}\ncontexts:\n- name: fra-prod\n  context:\n    cluster: fra\n    user: double\n- name: gke_meridian-ai_europe-west4_burst\n  context:\n    cluster: burst\n    user: double\ncurrent-context: fra-prod\nusers:\n- name: double\n  user:\n    token: double\n",
        fra.url(),
        burst.url()
    );
    std::fs::write(path, text).unwrap();
}

fn sovereign(args: &[&str], key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(args)
        .args(["--color", "never"])
        .env("SOVEREIGN_BUNDLE_KEY", key)
        // Only the test's registry, which needs no credentials: none of the machine's files.
        .env("REGISTRY_AUTH_FILE", "/nonexistent/auth.json")
        .env("DOCKER_CONFIG", "/nonexistent")
        .env("XDG_RUNTIME_DIR", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn e2e_the_enterprise_example_is_applied_to_every_target_then_plans_no_changes() {
    if std::env::var_os("SOVEREIGN_E2E_KUBECONFIG").is_some() {
        eprintln!("skipped against a real cluster: the example needs two clusters, a helm controller and a kubelet");
        return;
    }
    let Some(endpoint) = temporal::endpoint() else { return };
    let Some(registry) = registry::TestRegistry::start(None) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let key_path = tmp.path().join("key.pem");
    let made = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key_path).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no openssl to make the bundle's signing key");
        return;
    }
    let key = std::fs::read_to_string(&key_path).unwrap();

    // The example, its fleet's registry the test's, its bundle tagged `e2e-1`.
    let spec = tmp.path().join("enterprise");
    for entry in walk(&cluster::root().join("examples/enterprise")) {
        let relative = entry.strip_prefix(cluster::root().join("examples/enterprise")).unwrap();
        let to = spec.join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(&entry)
            .unwrap()
            .replace(
                "registry \"oci://registry.fra.meridian.internal/bundles\"",
                &format!("registry \"oci://{}/bundles\"", registry.host()),
            )
            .replace("edge \"adjuster-assist\" fleet=", "edge \"adjuster-assist\" version=\"e2e-1\" fleet=");
        std::fs::write(to, text).unwrap();
    }

    let fra = double(&["gpu-01", "gpu-02", "gpu-03"]);
    let burst = double(&[]);
    let config = tmp.path().join("kubeconfig");
    kubeconfig(&config, &fra, &burst);
    // Where the Temporal and the Qdrant the charts deploy would answer.
    let upstream = endpoint.trim_start_matches("http://").parse().unwrap();
    fra.set_service_backend("meridian-metabolism", "metabolism-temporal-frontend:7243", upstream);
    let qdrant = qdrant_double::QdrantDouble::start(qdrant_double::Options {
        api_key: Some(API_KEY.into()),
        ..qdrant_double::Options::default()
    })
    .unwrap();
    fra.set_service_backend("meridian-kinetic", "policy-kb-qdrant:6333", qdrant.address());
    // The key the Qdrant chart would read: made first, and kept by apply.
    let fra_cluster = cluster::Cluster::Double(fra, config.clone());
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "meridian-kinetic"}});
    assert_eq!(fra_cluster.request("POST", "/api/v1/namespaces", "application/json", &namespace), 201);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "policy-kb-api-key", "namespace": "meridian-kinetic"},
                        "data": {"api-key": sovereign_desired::base64(API_KEY.as_bytes())}});
    assert_eq!(
        fra_cluster.request("POST", "/api/v1/namespaces/meridian-kinetic/secrets", "application/json", &secret),
        201
    );

    let spec_arg = spec.to_str().unwrap();
    let kube = config.to_str().unwrap();
    let apply = sovereign(
        &["apply", spec_arg, "--kubeconfig", kube, "--auto-approve", "--partial", "--timeout-scale", "0.2"],
        &key,
    );
    assert!(apply.status.success(), "{}", text(&apply));

    // Every target holds what the spec says.
    let cluster::Cluster::Double(fra, _) = &fra_cluster else { unreachable!() };
    let objects = |double: &ApiDouble| {
        double
            .objects()
            .into_iter()
            .filter(|o| {
                o.pointer("/metadata/labels/sovereign.dev~1fabric").and_then(|v| v.as_str()) == Some("meridian")
            })
            .count()
    };
    assert!(objects(fra) > 40 && objects(&burst) > 20, "{} and {} objects", objects(fra), objects(&burst));
    let collections = qdrant.collections();
    assert!(collections.contains_key("faq") && collections.contains_key("wordings"), "{collections:?}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = sovereign_temporal_driver::TemporalServer::new(endpoint, std::time::Duration::from_secs(10)).unwrap();
    for namespace in ["claims", "batch", "evals"] {
        let found = runtime.block_on(server.namespace(namespace)).unwrap();
        assert!(found.is_some(), "Temporal namespace {namespace} is registered");
    }
    let schedule = runtime.block_on(server.schedule("evals", "eval-claims-nightly")).unwrap();
    assert!(schedule.is_some(), "the eval's schedule is created");
    let pushed = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--no-creds"])
        .arg(format!("docker://{}/bundles/adjuster-tablets/adjuster-assist:e2e-1", registry.host()))
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));

    // A second plan, from the state in the Frankfurt cluster: nothing to do.
    let plan = sovereign(&["plan", spec_arg, "--kubeconfig", kube, "--partial", "--detailed-exitcode", "--json"], &key);
    let parsed: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap_or_default();
    assert_eq!(plan.status.code(), Some(0), "{}", parsed["changes"]);
    for seen in [text(&apply), text(&plan)] {
        assert!(!seen.contains(API_KEY) && !seen.contains(key.lines().nth(1).unwrap()));
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
