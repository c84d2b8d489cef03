//! Acceptance by a real API server: with `SOVEREIGN_E2E_KUBECONFIG`
//! pointing at a cluster (a bare kube-apiserver is enough: no kubelet or
//! controllers), every Kubernetes object of every example is sent as a
//! server-side apply with `dryRun=All`, after the upstream CRDs and the
//! namespaces are created. Skipped, saying why, without it.

use std::path::Path;
use std::process::Command;

#[test]
fn every_example_is_accepted_by_a_real_api_server() {
    let Some(kubeconfig) = std::env::var_os("SOVEREIGN_E2E_KUBECONFIG") else {
        eprintln!("skipped: SOVEREIGN_E2E_KUBECONFIG is not set (point it at a cluster's kubeconfig to run this test)");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    for example in ["lab", "enterprise", "airgapped"] {
        for site in sites(root, example) {
            let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
                .args(["build", &format!("examples/{example}"), "--partial", "--site", &site, "--json"])
                .current_dir(root)
                .output()
                .unwrap();
            assert!(output.status.success(), "{example}/{site}: {}", String::from_utf8_lossy(&output.stderr));
            let site_objects: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
            objects.extend(site_objects);
        }
    }
    let path = tmp.path().join("objects.json");
    std::fs::write(&path, serde_json::to_vec(&objects).unwrap()).unwrap();
    let output = Command::new("python3")
        .arg(root.join("tests/e2e/dry_run.py"))
        .arg(&kubeconfig)
        .arg(root.join("tests/fixtures/upstream/crds"))
        .arg(&path)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The sites of an example that have objects, from a build's index.
fn sites(root: &Path, example: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(["build", &format!("examples/{example}"), "--partial", "-o", out.to_str().unwrap()])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let mut sites: Vec<String> = index["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["target"] == "k3s" && a["patch"] == false)
        .map(|a| a["site"].as_str().unwrap().to_owned())
        .collect();
    sites.sort();
    sites.dedup();
    sites
}
