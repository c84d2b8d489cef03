//! The lab example as the plan and apply tests edit it, included with
//! `#[path = "support/lab.rs"] mod lab;`.

use std::path::{Path, PathBuf};

/// The lab example in a folder of its own, with a secret read from
/// `SOVEREIGN_TEST_CANARY` (the tests set it to a canary value).
pub(crate) fn lab_with_canary_secret() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("lab");
    std::fs::create_dir(&spec).unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab/fabric.kdl")).unwrap();
    let text = text + "\nsecret \"canary\" from=\"env:SOVEREIGN_TEST_CANARY\"\n";
    std::fs::write(spec.join("fabric.kdl"), text).unwrap();
    (tmp, spec)
}

/// Replaces the first `from` in a spec folder's `fabric.kdl` by `to`.
pub(crate) fn edit(spec: &Path, from: &str, to: &str) {
    let path = spec.join("fabric.kdl");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Gives the lab's Temporal namespace a name of this run's own (a server
/// may be shared by runs), and, with `endpoint`, points its `temporal` at
/// that server instead of deploying one; the namespace's name.
#[allow(dead_code)] // not every test binary that includes this uses it
pub(crate) fn own_temporal_namespace(spec: &Path, endpoint: Option<&str>, suffix: u128) -> String {
    let namespace = format!("lab-{}", suffix % 1_000_000_000);
    if let Some(endpoint) = endpoint {
        edit(
            spec,
            "temporal \"metabolism\" site=\"bench\" {",
            &format!("temporal \"metabolism\" site=\"bench\" endpoint=\"{endpoint}\" {{"),
        );
    }
    edit(spec, "namespace \"lab\" retention=\"3d\"", &format!("namespace \"{namespace}\" retention=\"3d\""));
    edit(spec, "namespace=\"lab\"", &format!("namespace=\"{namespace}\""));
    namespace
}
