//! `sovereign discover` on real `nvidia-smi` captures (H100 80GB and
//! H200, compiler/catalog/tests/fixtures/): the node it writes names the
//! catalog's GPU, checks clean inside a site, and says nothing is amiss;
//! a GPU the catalog does not know is reported with what to add.

#[path = "support/apply_cluster.rs"]
#[allow(dead_code)] // shared with tests/apply.rs, which uses all of it
mod cluster;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(gpu: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/catalog/tests/fixtures").join(gpu).join(file)
}

fn discover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign")).arg("discover").args(args).output().unwrap()
}

fn captured(gpu: &str) -> Output {
    let xml = fixture(gpu, "nvidia-smi-q.xml");
    let lgip = fixture(gpu, "mig-lgip.txt");
    discover(&[
        "--nvidia-smi",
        xml.to_str().unwrap(),
        "--mig-profiles",
        lgip.to_str().unwrap(),
        "--name",
        "gpu-01",
        "--cpus",
        "64",
        "--memory-gib",
        "512",
    ])
}

/// `node` inside a server site of a fabric, checked by the binary.
fn checks_clean(node: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("fabric.kdl");
    let indented: String = node.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        &spec,
        format!("fabric \"t\" {{ residency \"eu\"; }}\nsite \"s\" tier=\"server\" region=\"eu-central\" {{\n    cluster kind=\"k3s\" context=\"s\"\n{indented}}}\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(["check", spec.to_str().unwrap(), "--deny-warnings", "--color", "never"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}\n{}", String::from_utf8_lossy(&output.stderr), node);
}

#[test]
fn the_h100_and_h200_captures_become_nodes_of_the_catalogs_gpus() {
    for (gpu, name, smallest) in [("nvidia-h100-80gb", "h100-80gb", "1g.10gb"), ("nvidia-h200", "h200", "1g.18gb")] {
        let output = captured(gpu);
        let node = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "{gpu}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(
            output.stderr.is_empty(),
            "{gpu}: the catalog agrees with the driver: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let declaration = node.lines().find(|l| l.starts_with("node ")).unwrap();
        assert_eq!(declaration, format!("node \"gpu-01\" gpu=\"{name}\" gpus=1 cpu=64 memory=\"512GiB\""), "{node}");
        assert!(node.contains("MIG disabled") && node.contains(smallest), "{node}");
        checks_clean(&node);
    }
}

#[test]
fn an_unknown_gpu_is_reported_with_its_catalog_entry_and_a_bad_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(fixture("nvidia-h100-80gb", "nvidia-smi-q.xml"))
        .unwrap()
        .replace("NVIDIA H100 80GB HBM3", "NVIDIA X900 96GB")
        .replace("<current_mig>Disabled</current_mig>", "<current_mig>Enabled</current_mig>");
    let path = tmp.path().join("x900.xml");
    std::fs::write(&path, xml).unwrap();
    let lgip = fixture("nvidia-h100-80gb", "mig-lgip.txt");
    let output =
        discover(&["--nvidia-smi", path.to_str().unwrap(), "--mig-profiles", lgip.to_str().unwrap(), "--name", "x"]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("not in the catalog")
            && said.contains("gpu \"x900-96gb\" product=\"NVIDIA X900 96GB\" memory-mib=81559"),
        "{said}"
    );
    assert!(said.contains("mig \"3g.40gb\" id=9 instances=2 memory-gib=39.50 sm=60"), "{said}");
    let node = String::from_utf8(output.stdout).unwrap();
    assert!(!node.contains("gpu="), "an unknown GPU is not declared: {node}");
    checks_clean(&node);

    std::fs::write(&path, "<html></html>").unwrap();
    let output = discover(&["--nvidia-smi", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not the output of `nvidia-smi -q -x`"));
    let output = discover(&["--kubeconfig", "/nonexistent"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("names no current context"));
}

/// A cluster's nodes, as GPU feature discovery and the device plugin label
/// them (label names and value forms from targets-facts.md §2.2), on the
/// API double; the `site` written checks clean. Also against a real
/// cluster with `SOVEREIGN_E2E_KUBECONFIG` (whatever nodes it has).
#[test]
fn a_cluster_becomes_a_site_from_its_node_labels() {
    use kube_double::{ApiDouble, Options};
    let double = ApiDouble::start(Options::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    double.write_kubeconfig(&kubeconfig, "fra-prod").unwrap();
    let nodes = [
        (
            "gpu-01",
            serde_json::json!({
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "81559",
                "nvidia.com/gpu.family": "hopper", "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "mixed",
                "nvidia.com/mig-3g.40gb.count": "2", "nvidia.com/mig-1g.10gb.count": "3", "nvidia.com/mig.config": "sovereign-gpu-01",
                "nvidia.com/cuda.driver-version.full": "580.159.04", "feature.node.kubernetes.io/pci-10de.present": "true"
            }),
            "96",
            "1056270588Ki",
        ),
        (
            "gpu-02",
            serde_json::json!({
                "nvidia.com/gpu.product": "NVIDIA-H200", "nvidia.com/gpu.count": "4", "nvidia.com/gpu.memory": "143771",
                "nvidia.com/mig.capable": "true", "nvidia.com/mig.config": "all-disabled"
            }),
            "64",
            "527958516Ki",
        ),
        ("cpu-01", serde_json::json!({"kubernetes.io/os": "linux"}), "32", "131072Mi"),
    ];
    let target = cluster::Cluster::Double(double, kubeconfig.clone());
    for (name, labels, cpu, memory) in nodes {
        let node =
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}});
        assert_eq!(target.request("POST", "/api/v1/nodes", "application/json", &node), 201);
        let status = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                                        "status": {"capacity": {"cpu": cpu, "memory": memory}}});
        assert_eq!(target.request("PUT", &format!("/api/v1/nodes/{name}/status"), "application/json", &status), 200);
    }
    let output = discover(&["--kubeconfig", kubeconfig.to_str().unwrap(), "--region", "eu-central"]);
    let site = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{}\n{site}", String::from_utf8_lossy(&output.stderr));
    for line in [
        "site \"fra-prod\" tier=\"server\" region=\"eu-central\" {",
        "    cluster kind=\"k3s\" context=\"fra-prod\"",
        "    node \"gpu-01\" gpu=\"h100-80gb\" gpus=8 mig=#true cpu=96 memory=\"1007GiB\"",
        "    node \"gpu-02\" gpu=\"h200\" gpus=4 cpu=64 memory=\"503GiB\"",
        "    node \"cpu-01\" cpu=32 memory=\"128GiB\"",
    ] {
        assert!(site.lines().any(|l| l == line), "{line}\n{site}");
    }
    let spec = tmp.path().join("fabric.kdl");
    std::fs::write(&spec, format!("fabric \"t\" {{ residency \"eu\"; }}\n{site}")).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(["check", spec.to_str().unwrap(), "--deny-warnings", "--color", "never"])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}\n{site}", String::from_utf8_lossy(&checked.stderr));

    if let Some(real) = std::env::var_os("SOVEREIGN_E2E_KUBECONFIG") {
        let output = discover(&["--kubeconfig", Path::new(&real).to_str().unwrap(), "--site", "real"]);
        let site = String::from_utf8(output.stdout).unwrap();
        assert!(site.starts_with("// Written by") && site.contains("site \"real\""), "{site}");
    }
}

/// `plan --refresh` warns where a site's declared nodes disagree with the
/// cluster's Node labels, and says nothing once they agree.
#[test]
fn a_refreshed_plan_warns_where_the_declared_hardware_differs() {
    let target = cluster::cluster(kube_double::Options::default());
    if let cluster::Cluster::Real(..) = &target {
        eprintln!("skipped against a real cluster: it relabels a Node");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("lab");
    std::fs::create_dir(&spec).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab/fabric.kdl"), spec.join("fabric.kdl"))
        .unwrap();
    let context = cluster::current_context(target.kubeconfig());
    let plan = || {
        let output = Command::new(env!("CARGO_BIN_EXE_sovereign"))
            .args(["plan", spec.to_str().unwrap(), "--refresh", "--kubeconfig"])
            .arg(target.kubeconfig())
            .args(["--context", &context])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let said = plan();
    assert!(
        said.contains("warning: hardware: site \"bench\" node \"gpu-01\": the spec declares 1 × h100-80gb, the cluster reports no GPU"),
        "{said}"
    );
    let mut node = target.get("/api/v1/nodes/gpu-01").unwrap();
    node["metadata"]["labels"] =
        serde_json::json!({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "1"});
    assert_eq!(target.request("PUT", "/api/v1/nodes/gpu-01", "application/json", &node), 200);
    let said = plan();
    assert!(!said.contains("warning: hardware"), "{said}");
}
