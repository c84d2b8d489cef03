//! `sovereign apply` pushing device bundles to a real registry (Debian's
//! `docker-registry`, started per test on loopback) and reading them back
//! with `skopeo`: pushed once, nothing sent again, moved to a new tag,
//! deleted when the edge goes; through a fault-injecting proxy; after a
//! registry that stopped mid-push and after `kill -9` mid-push; with basic
//! auth from a credentials file whose password is a canary.

#[path = "support/apply_cluster.rs"]
#[allow(dead_code)] // shared with tests/apply.rs, which uses all of it
mod cluster;
#[path = "../targets/oci/tests/support/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::text;
use registry::TestRegistry;

/// A password that must appear in no output, state, plan or journal.
const PASSWORD: &str = "registry-canary-0b7e51";

struct Fabric {
    dir: tempfile::TempDir,
    key: String,
    /// `DOCKER_CONFIG`-style credentials, when the registry asks for them.
    auth: Option<PathBuf>,
}

impl Fabric {
    /// A device site whose bundles go to `registry`, signed with a new key.
    fn new(registry: &str) -> Option<Fabric> {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let made = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no openssl to make a signing key");
            return None;
        }
        let key = std::fs::read_to_string(key).unwrap();
        let fabric = Fabric { dir, key, auth: None };
        fabric.write(registry, Some("2026.12.1"));
        Some(fabric)
    }

    fn spec(&self) -> PathBuf {
        self.dir.path().join("spec")
    }

    fn write(&self, registry: &str, version: Option<&str>) {
        let version = version.map(|v| format!(" version=\"{v}\"")).unwrap_or_default();
        let text = format!(
            r#"fabric "shop" {{ residency "eu"; }}
site "floor" tier="device" region="eu-central" {{
    fleet "handhelds" soc="snapdragon-8-gen-3" count=40 memory="12GiB"
    registry "{registry}"
}}
model "assistant" base="llama-3.2-1b-instruct" dtype="int4" format="qnn"
secret "bundle-key" from="env:TEST_BUNDLE_KEY"
edge "assist" fleet="floor/handhelds" model="assistant" signing-key="bundle-key"{version}
"#
        );
        std::fs::create_dir_all(self.spec()).unwrap();
        std::fs::write(self.spec().join("fabric.kdl"), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sovereign"));
        command.args(args).args(["--color", "never"]).env("TEST_BUNDLE_KEY", &self.key).stdin(Stdio::null());
        // Only this test's credentials: none of the machine's files.
        let none = self.dir.path().join("no-credentials");
        command
            .env("REGISTRY_AUTH_FILE", self.auth.as_deref().unwrap_or(&none.join("auth.json")))
            .env("DOCKER_CONFIG", &none)
            .env("XDG_RUNTIME_DIR", &none);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn apply(&self, extra: &[&str]) -> Output {
        let spec = self.spec();
        let mut args = vec!["apply", spec.to_str().unwrap(), "--auto-approve", "--request-timeout", "2"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The plan's changes: (action, id).
    fn changes(&self) -> Vec<(String, String)> {
        let spec = self.spec();
        cluster::changes_in(&self.run(&["plan", spec.to_str().unwrap(), "--json"]), &["npu"], false)
    }

    fn state(&self) -> String {
        std::fs::read_to_string(self.spec().join(".sovereign/state.json")).unwrap_or_default()
    }

    /// The digest the state records for the bundle.
    fn applied_digest(&self) -> String {
        let state: serde_json::Value = serde_json::from_str(&self.state()).unwrap();
        let text = state.to_string();
        let at = text.find("\"digest\":\"sha256:").expect("the state records the bundle's digest");
        text[at + 10..at + 10 + 71].to_owned()
    }
}

const BUNDLE: &str = "npu/floor/bundle/floor/handhelds/assist";

/// The raw manifest `reference` names on the registry at `host`, read by skopeo.
fn raw(host: &str, reference: &str, creds: Option<&str>) -> Option<Vec<u8>> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    match creds {
        Some(creds) => command.args(["--creds", creds]),
        None => command.arg("--no-creds"),
    };
    let output = command.arg(format!("docker://{host}/bundles/handhelds/assist:{reference}")).output().unwrap();
    output.status.success().then_some(output.stdout)
}

fn inspect(host: &str, reference: &str, creds: Option<&str>) -> Option<serde_json::Value> {
    raw(host, reference, creds).map(|bytes| serde_json::from_slice(&bytes).unwrap())
}

/// The digest of the manifest a tag names.
fn tagged(host: &str, tag: &str, creds: Option<&str>) -> Option<String> {
    use sha2::Digest as _;
    raw(host, tag, creds).map(|bytes| format!("sha256:{}", sovereign_desired::hex(&sha2::Sha256::digest(bytes))))
}

fn skopeo_present() -> bool {
    let present = Command::new("skopeo").arg("--version").output().is_ok();
    if !present {
        assert!(std::env::var_os("SOVEREIGN_EXPECT_REGISTRY").is_none(), "skopeo is expected");
        eprintln!("skipped: no skopeo");
    }
    present
}

#[test]
fn e2e_bundles_are_pushed_once_read_back_retagged_and_deleted() {
    let Some(mut registry) = TestRegistry::start(None) else { return };
    if !skopeo_present() {
        return;
    }
    let host = registry.host();
    let Some(fabric) = Fabric::new(&format!("oci://{host}/bundles")) else { return };
    assert_eq!(fabric.changes(), vec![("create".to_owned(), BUNDLE.to_owned())]);

    let output = fabric.apply(&[]);
    assert!(output.status.success(), "{}", text(&output));
    let digest = fabric.applied_digest();
    assert_eq!(tagged(&host, "2026.12.1", None).as_deref(), Some(digest.as_str()), "the tag names the pushed index");
    let index = inspect(&host, "2026.12.1", None).unwrap();
    assert_eq!(index["artifactType"], "application/vnd.sovereign.npu-bundle.v1+json");
    // The signature is listed under the referrers tag (distribution 2.8 has no referrers API).
    let referrers = inspect(&host, &digest.replace(':', "-"), None).expect("the referrers tag exists");
    assert_eq!(referrers["manifests"][0]["artifactType"], "application/vnd.sovereign.signature.v1+json");
    assert_eq!(fabric.changes(), Vec::<(String, String)>::new(), "a second plan has no changes");
    let uploads = registry.requests("PUT", "/blobs/uploads/");
    assert!(uploads >= 3, "blobs were uploaded: {}", registry.log());

    // A new tag: the same content, so no blob is sent again, and the index is tagged anew.
    fabric.write(&format!("oci://{host}/bundles"), Some("2026.12.2"));
    assert_eq!(fabric.changes(), vec![("update".to_owned(), BUNDLE.to_owned())]);
    let output = fabric.apply(&[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(registry.requests("PUT", "/blobs/uploads/"), uploads, "no blob was sent again");
    assert_eq!(tagged(&host, "2026.12.2", None).as_deref(), Some(digest.as_str()));
    assert_eq!(fabric.changes(), Vec::<(String, String)>::new());

    // The edge goes: its index is deleted, which untags it.
    let spec = fabric.spec().join("fabric.kdl");
    let written = std::fs::read_to_string(&spec).unwrap();
    let without: Vec<&str> = written.lines().filter(|l| !l.starts_with("edge ")).collect();
    std::fs::write(&spec, without.join("\n")).unwrap();
    assert_eq!(fabric.changes(), vec![("delete".to_owned(), BUNDLE.to_owned())]);
    let output = fabric.apply(&[]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(tagged(&host, "2026.12.2", None), None, "the bundle is gone from the registry");
    assert!(!fabric.state().contains(BUNDLE));
    registry.stop();
}

#[test]
fn e2e_a_push_converges_through_faults_and_after_the_registry_stopped() {
    let Some(mut registry) = TestRegistry::start(None) else { return };
    if !skopeo_present() {
        return;
    }
    let host = registry.host();
    let faults = kube_double::Faults {
        rate: 0.2,
        seed: 11,
        hang: Duration::from_secs(2),
        conflicts: false,
        ..kube_double::Faults::default()
    };
    let upstream = host.parse().unwrap();
    let proxy = kube_double::FaultProxy::start(upstream, faults, Duration::ZERO).unwrap();
    let proxied = proxy.url().trim_start_matches("http://").to_owned();
    // Plain HTTP, as the spec says: the proxy speaks no TLS.
    let Some(fabric) = Fabric::new(&format!("http://{proxied}/bundles")) else { return };
    let output = fabric.apply(&[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(proxy.faults_injected() > 0, "faults were injected ({} requests)", proxy.requests());
    let digest = fabric.applied_digest();
    assert_eq!(tagged(&host, "2026.12.1", None).as_deref(), Some(digest.as_str()));
    assert_eq!(fabric.changes(), Vec::<(String, String)>::new());

    // A stopped registry: the apply fails saying so, and records nothing.
    fabric.write(&format!("http://{proxied}/bundles"), Some("2026.12.3"));
    registry.stop();
    let output = fabric.apply(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("could not be reached"), "{}", text(&output));
    assert_eq!(fabric.changes(), vec![("update".to_owned(), BUNDLE.to_owned())]);
    // The rest from a saved plan, which carries the bundle's layout.
    registry.resume();
    let saved = fabric.dir.path().join("plan.json");
    let spec = fabric.spec();
    let planned = fabric.run(&["plan", spec.to_str().unwrap(), "-o", saved.to_str().unwrap()]);
    assert!(planned.status.success(), "{}", text(&planned));
    // A plan whose bundle was edited is refused before anything is sent.
    let mut edited: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let blob = edited["bundles"][0]["files"].as_object_mut().unwrap().iter_mut().find(|(p, _)| p.starts_with("blobs/"));
    *blob.unwrap().1 = sovereign_desired::base64(b"tampered").into();
    let tampered = fabric.dir.path().join("tampered.json");
    std::fs::write(&tampered, edited.to_string()).unwrap();
    let output = fabric.run(&["apply", tampered.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("is not a saved plan"), "{}", text(&output));
    let output = fabric.run(&["apply", saved.to_str().unwrap(), "--request-timeout", "2"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(tagged(&host, "2026.12.3", None).as_deref(), Some(digest.as_str()));
    assert_eq!(fabric.changes(), Vec::<(String, String)>::new());
}

/// Waits until `ready` holds, up to 30 s.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn e2e_a_push_killed_midway_is_completed_by_the_next_apply_and_no_secret_is_written() {
    let Some(mut registry) = TestRegistry::start(Some(("fleet", PASSWORD))) else { return };
    if !skopeo_present() {
        return;
    }
    let host = registry.host();
    // Slow requests, so that the kill lands between the first upload and the tag.
    let proxy = kube_double::FaultProxy::start(
        host.parse().unwrap(),
        kube_double::Faults::default(),
        Duration::from_millis(150),
    )
    .unwrap();
    let proxied = proxy.url().trim_start_matches("http://").to_owned();
    let Some(mut fabric) = Fabric::new(&format!("http://{proxied}/bundles")) else { return };
    let auth = fabric.dir.path().join("auth.json");
    let token = sovereign_desired::base64(format!("fleet:{PASSWORD}").as_bytes());
    std::fs::write(&auth, format!(r#"{{"auths": {{"{proxied}": {{"auth": "{token}"}}}}}}"#)).unwrap();
    fabric.auth = Some(auth);

    let spec = fabric.spec();
    let mut child = fabric
        .command(&["apply", spec.to_str().unwrap(), "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first blob upload", || registry.requests("PUT", "/blobs/uploads/") >= 1);
    let _ = child.kill();
    let _ = child.wait();
    let creds = format!("fleet:{PASSWORD}");
    assert!(raw(&host, "2026.12.1", Some(&creds)).is_none(), "the kill came before the tag");

    let output = fabric.apply(&[]);
    assert!(output.status.success(), "{}", text(&output));
    let digest = fabric.applied_digest();
    assert_eq!(tagged(&host, "2026.12.1", Some(&creds)), Some(digest), "the rerun completed the push");
    assert_eq!(fabric.changes(), Vec::<(String, String)>::new());
    // Nothing was sent twice: each blob has one completed upload.
    let blobs = registry.requests("PUT", "/blobs/uploads/");
    let distinct: std::collections::BTreeSet<String> = registry
        .log()
        .lines()
        .filter_map(|l| l.split('"').nth(1))
        .filter(|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/"))
        .filter_map(|r| r.split("digest=").nth(1).map(|d| d.split([' ', '&']).next().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(blobs, distinct.len(), "a blob was uploaded twice: {}", registry.log());

    // Neither the password nor the signing key is in anything sovereign wrote.
    let saved = fabric.dir.path().join("plan.json");
    let planned = fabric.run(&["plan", spec.to_str().unwrap(), "-o", saved.to_str().unwrap()]);
    let mut seen = vec![text(&output), text(&planned), fabric.state()];
    seen.extend(written_under(&spec.join(".sovereign")));
    seen.push(std::fs::read_to_string(&saved).unwrap_or_default());
    let key_body = fabric.key.lines().nth(1).unwrap().to_owned();
    for text in seen {
        assert!(!text.contains(PASSWORD) && !text.contains(&token) && !text.contains(&key_body));
    }
    registry.stop();
}

fn written_under(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
        .unwrap_or_default()
}
