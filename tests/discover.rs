//! `sovereign discover` on real `nvidia-smi` captures (H100 80GB and
//! H200, compiler/catalog/tests/fixtures/): the node it writes names the
//! catalog's GPU, checks clean inside a site, and says nothing is amiss;
//! a GPU the catalog does not know is reported with what to add.

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
    assert!(String::from_utf8_lossy(&output.stderr).contains("not yet supported"));
}
