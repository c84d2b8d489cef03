//! The cluster the apply tests run against (the API double, or a real one
//! through `SOVEREIGN_E2E_KUBECONFIG`) and the commands they run, included
//! by `tests/apply.rs` with `#[path = "support/apply_cluster.rs"] mod cluster;`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kube_double::{ApiDouble, Options};
use serde_json::Value;

pub(crate) const CANARY: &str = "canary-7f3a91c0de";

/// Where the tests apply to.
pub(crate) enum Cluster {
    Double(ApiDouble, PathBuf),
    Real(PathBuf),
}

impl Cluster {
    pub(crate) fn kubeconfig(&self) -> &Path {
        match self {
            Cluster::Double(_, path) | Cluster::Real(path) => path,
        }
    }

    /// Sends one request as another client would (not as sovereign); the status code.
    pub(crate) fn request(&self, method: &str, path: &str, content_type: &str, body: &Value) -> u16 {
        self.exchange(method, path, content_type, body).0
    }

    /// The object at an API path, if it exists.
    pub(crate) fn get(&self, path: &str) -> Option<Value> {
        let (status, body) = self.exchange("GET", path, "application/json", &Value::Null);
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    pub(crate) fn exchange(&self, method: &str, path: &str, content_type: &str, body: &Value) -> (u16, String) {
        match self {
            Cluster::Double(double, _) => {
                use std::io::{Read as _, Write as _};
                let address = double.url().trim_start_matches("http://").to_owned();
                let mut stream = std::net::TcpStream::connect(address).unwrap();
                let body = if body.is_null() { String::new() } else { body.to_string() };
                write!(stream, "{method} {path} HTTP/1.1\r\nHost: double\r\nUser-Agent: kubectl/v1.34\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
                (status, answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
            }
            Cluster::Real(kubeconfig) => {
                let spec =
                    serde_json::json!({"method": method, "path": path, "content_type": content_type, "body": body});
                let output = Command::new("python3")
                    .arg(root().join("tests/e2e/cluster.py"))
                    .args(["request", kubeconfig.to_str().unwrap(), &spec.to_string()])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
                (status.trim().parse().unwrap(), body.to_owned())
            }
        }
    }

    /// Objects labelled as the fabric's, without what the server writes.
    pub(crate) fn labelled(&self, fabric: &str) -> Vec<Value> {
        let objects: Vec<Value> = match self {
            Cluster::Double(double, _) => double
                .objects()
                .into_iter()
                .filter(|object| {
                    object.pointer("/metadata/labels/sovereign.dev~1fabric").and_then(Value::as_str) == Some(fabric)
                })
                .collect(),
            Cluster::Real(kubeconfig) => {
                let output = Command::new("python3")
                    .arg(root().join("tests/e2e/cluster.py"))
                    .args(["labelled", kubeconfig.to_str().unwrap(), fabric])
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                serde_json::from_slice(&output.stdout).unwrap()
            }
        };
        let mut objects: Vec<Value> = objects.into_iter().map(normalized).collect();
        objects.sort_by_key(|object| object.to_string());
        objects
    }
}

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// An object without the fields that differ between two equal applies.
pub(crate) fn normalized(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
            metadata.remove(field);
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    object
}

pub(crate) fn cluster(options: Options) -> Cluster {
    let tmp = std::env::temp_dir().join(format!("sovereign-apply-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&tmp).unwrap();
    if let Some(kubeconfig) = std::env::var_os("SOVEREIGN_E2E_KUBECONFIG") {
        let kubeconfig = PathBuf::from(kubeconfig);
        let output = Command::new("python3")
            .arg(root().join("tests/e2e/cluster.py"))
            .args([
                "prepare",
                kubeconfig.to_str().unwrap(),
                root().join("tests/fixtures/upstream/crds").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        return Cluster::Real(kubeconfig);
    }
    let schemas = kube_double::kubernetes_validate_schemas("1.34.0");
    if std::env::var_os("SOVEREIGN_EXPECT_KUBERNETES_VALIDATE").is_some() {
        assert!(schemas.is_some(), "kubernetes-validate's schemas are expected (scripts/test installs it)");
    }
    let crds = root().join("tests/fixtures/upstream/crds");
    let options = Options {
        schemas,
        crds: ["helm.cattle.io_helmcharts.yaml", "helm.cattle.io_helmchartconfigs.yaml"]
            .iter()
            .map(|name| crds.join(name))
            .collect(),
        nodes: vec!["gpu-01".into()],
        namespaces: vec!["gpu-operator".into()],
        ..options
    };
    let double = ApiDouble::start(options).unwrap();
    let path = tmp.join("kubeconfig");
    double.write_kubeconfig(&path, "double").unwrap();
    Cluster::Double(double, path)
}

pub(crate) fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

pub(crate) fn current_context(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("current-context:"))
        .map(|name| name.trim().trim_matches('"').to_owned())
        .unwrap()
}

pub(crate) fn sovereign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .args(args)
        .env("SOVEREIGN_TEST_CANARY", CANARY)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `sovereign ARGS` in the background, its output discarded.
pub(crate) fn spawn_quiet(args: &[&str]) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sovereign"));
    command
        .args(args)
        .env("SOVEREIGN_TEST_CANARY", CANARY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().unwrap()
}

/// Kills `child` (a `spawn_quiet` run) once its journal holds `lines`
/// lines; false when the run ended, or `within` passed, first. Then waits
/// for it, so the caller's rerun never races it.
pub(crate) fn kill_at_journal_line(
    child: &mut std::process::Child,
    journal: &Path,
    lines: usize,
    within: std::time::Duration,
) -> bool {
    let deadline = std::time::Instant::now() + within;
    let killed = loop {
        let written = std::fs::read_to_string(journal).map(|text| text.lines().count()).unwrap_or(0);
        if written >= lines {
            child.kill().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let _ = child.wait();
    killed
}

pub(crate) fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

pub(crate) fn run_args<'a>(verb: &'a str, spec: &'a str, cluster: &'a Cluster, context: &'a str) -> Vec<&'a str> {
    vec![
        verb,
        spec,
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--context",
        context,
        "--auto-approve",
        "--target",
        "k3s",
        "--timeout-scale",
        "0.2",
    ]
}

pub(crate) fn apply(spec: &Path, cluster: &Cluster, extra: &[&str]) -> Output {
    let context = current_context(cluster.kubeconfig());
    let mut args = run_args("apply", spec.to_str().unwrap(), cluster, &context);
    args.extend_from_slice(extra);
    sovereign(&args)
}

/// The plan's changes for the Kubernetes part: (action, id).
pub(crate) fn k3s_changes(spec: &Path) -> Vec<(String, String)> {
    changes_for(spec, &["k3s", "helm"])
}

/// The plan's changes for `targets`: (action, id), sorted.
pub(crate) fn changes_for(spec: &Path, targets: &[&str]) -> Vec<(String, String)> {
    let output = sovereign(&["plan", spec.to_str().unwrap(), "--json"]);
    changes_in(&output, targets, false)
}

/// The changes of a `plan --json` run for `targets`: (action, id), sorted;
/// with `noops`, its no-ops too.
pub(crate) fn changes_in(output: &Output, targets: &[&str], noops: bool) -> Vec<(String, String)> {
    assert!(output.status.success(), "{}", text(output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut changes: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["target"].as_str().is_some_and(|t| targets.contains(&t)))
        .filter(|change| noops || change["action"] != "no-op")
        .map(|change| (change["action"].as_str().unwrap().to_owned(), change["id"].as_str().unwrap().to_owned()))
        .collect();
    changes.sort();
    changes
}

/// `plan --refresh` against the cluster: its Kubernetes changes (action,
/// id), sorted, and what it said on stderr.
pub(crate) fn refreshed_changes(spec: &Path, cluster: &Cluster, context: &str) -> (Vec<(String, String)>, String) {
    let kubeconfig = cluster.kubeconfig().to_str().unwrap();
    let output = sovereign(&[
        "plan",
        spec.to_str().unwrap(),
        "--refresh",
        "--json",
        "--kubeconfig",
        kubeconfig,
        "--context",
        context,
    ]);
    (changes_in(&output, &["k3s", "helm"], true), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The loopback address of `kubectl proxy` for a real cluster (it holds
/// the credentials and the TLS), and the process to stop; `None` without kubectl.
pub(crate) fn kubectl_proxy(kubeconfig: &Path) -> Option<(std::net::SocketAddr, std::process::Child)> {
    use std::io::BufRead as _;
    let mut child = Command::new("kubectl")
        .args(["proxy", "--port=0", "--kubeconfig"])
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
    // "Starting to serve on 127.0.0.1:PORT"
    let address = line.trim().rsplit(' ').next()?.parse().ok()?;
    Some((address, child))
}

/// A fault-injecting proxy in front of a test cluster (the double, or a
/// real one through `kubectl proxy`), and a kubeconfig whose context
/// `through` reaches it.
pub(crate) struct Proxied {
    pub(crate) proxy: kube_double::FaultProxy,
    pub(crate) kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    kubectl: Option<std::process::Child>,
}

impl Proxied {
    /// `None` (with the reason printed) against a real cluster without kubectl.
    pub(crate) fn start(target: &Cluster, faults: kube_double::Faults) -> Option<Proxied> {
        let (upstream, kubectl) = match target {
            Cluster::Double(double, _) => (double.address(), None),
            Cluster::Real(kubeconfig) => match kubectl_proxy(kubeconfig) {
                Some((address, child)) => (address, Some(child)),
                None => {
                    eprintln!("skipped against a real cluster: it needs kubectl (for `kubectl proxy`) in PATH");
                    return None;
                }
            },
        };
        let proxy = kube_double::FaultProxy::start(upstream, faults, std::time::Duration::ZERO).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, proxy.kubeconfig("through")).unwrap();
        Some(Proxied { proxy, kubeconfig, _dir: dir, kubectl })
    }

    /// `sovereign apply SPEC` through the proxy, with the tests' flags and `extra`.
    pub(crate) fn apply(&self, spec: &Path, extra: &[&str]) -> Output {
        sovereign(&self.args(spec, extra))
    }

    /// The arguments of that apply (for a test that runs it its own way).
    pub(crate) fn args<'a>(&'a self, spec: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "apply",
            spec.to_str().unwrap(),
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
            "--context",
            "through",
            "--auto-approve",
            "--target",
            "k3s",
            "--timeout-scale",
            "0.2",
        ];
        args.extend_from_slice(extra);
        args
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        if let Some(child) = self.kubectl.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
