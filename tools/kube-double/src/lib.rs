//! A Kubernetes API server double, protocol-faithful for what sovereign's
//! apply uses, reached over HTTP by the same client code (kube-rs) as a
//! real cluster.
//!
//! What it does:
//! - discovery (`/api`, `/apis`, `/api/v1`, `/apis/GROUP/VERSION`, `/version`)
//!   for the built-in kinds of Kubernetes 1.34 sovereign touches, the K3s
//!   HelmChart CRDs, and every CRD created through it once established;
//! - create, get, list (label selectors, `limit`/`continue`), replace,
//!   delete (finalizers, Namespace termination, preconditions), dry-run;
//! - server-side apply with field managers and `managedFields`: fields a
//!   manager stops applying are removed, another manager's fields conflict
//!   (409 naming the manager and the fields) unless forced; lists merge by
//!   their schema's `x-kubernetes-list-map-keys`;
//! - the status subresource, `resourceVersion` and `generation` as the
//!   server keeps them, optimistic concurrency on replace;
//! - strict validation against the Kubernetes OpenAPI that PyPI
//!   `kubernetes-validate` ships and against CRD schemas (400 for unknown
//!   fields, 422 for invalid values), and name and namespace rules;
//! - a stand-in for the kubelet and controllers ([`stand_in`]) that writes
//!   the status readiness is read from;
//! - fault injection ([`Faults`]): 500, 503, 429 with Retry-After, 409,
//!   connection resets before and after a write commits, slow and hung
//!   requests; and a fixed latency added to every request. [`FaultProxy`]
//!   injects the same faults in front of any plain-HTTP API server (a real
//!   one through `kubectl proxy`), and admission denials ([`Denial`]);
//! - the service proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/…`)
//!   to a server a test puts behind a Service's port
//!   ([`ApiDouble::set_service_backend`]), since there are no pods; 503 "no
//!   endpoints available" without one.
//!
//! What it does not do: TLS, HTTP/2 (kube-rs speaks HTTP/1.1 to a real
//! server too: kube-rs/kube#1923), authentication, authorization, real admission
//! webhooks, watches (`watch=true` is refused with 405: clients poll),
//! JSON patch, protobuf, aggregated discovery, defaulting beyond a few
//! fields (Service cluster IPs, Namespace phase), CRD conversion, and
//! pruning of unknown fields (without a schema an object is stored as
//! sent). Objects live in memory and die with it.

pub mod api;
pub mod fields;
pub mod kinds;
pub mod proxy;
pub mod schema;
pub mod server;
pub mod stand_in;
pub mod store;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use api::ApiError;
pub use proxy::FaultProxy;
pub use server::{Denial, Faults};
pub use stand_in::Trouble;

use serde_json::Value;
use store::Write;

/// How to start a double.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A `kubernetes-validate` strict schema folder; without it, objects
    /// are not validated against a schema.
    pub schemas: Option<PathBuf>,
    /// CRD files (YAML) installed and established before it serves.
    pub crds: Vec<PathBuf>,
    /// Nodes that exist from the start.
    pub nodes: Vec<String>,
    /// Namespaces that exist from the start, besides `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease`.
    pub namespaces: Vec<String>,
    pub faults: Faults,
    pub trouble: Trouble,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// 0 picks a free port.
    pub port: u16,
    /// Connection threads started before it serves; more start when none
    /// is idle. A benchmark opening many connections at once sets it.
    pub threads: usize,
}

pub struct ApiDouble {
    address: SocketAddr,
    shared: Arc<server::Shared>,
    backends: server::Backends,
    store: Arc<Mutex<store::Store>>,
    trouble: Arc<Mutex<Trouble>>,
}

impl ApiDouble {
    pub fn start(options: Options) -> Result<ApiDouble, String> {
        let schemas = match &options.schemas {
            Some(dir) => schema::Schemas::load(dir)?,
            None => schema::Schemas::none(),
        };
        let mut store = store::Store::new(schemas);
        let system = Write { manager: "kube-apiserver", dry_run: false, part: store::Part::Main };
        let namespaces = ["default", "kube-system", "kube-public", "kube-node-lease"].map(str::to_owned);
        for name in namespaces.iter().chain(&options.namespaces) {
            let kind = store.kind("", "v1", "namespaces").ok_or("no Namespace kind")?;
            let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            store.create(&kind, key("", "namespaces", "", name), object, &system).map_err(|error| error.message)?;
        }
        for name in &options.nodes {
            let kind = store.kind("", "v1", "nodes").ok_or("no Node kind")?;
            let object = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}});
            store.create(&kind, key("", "nodes", "", name), object, &system).map_err(|error| error.message)?;
        }
        for path in &options.crds {
            install_crd(&mut store, path)?;
        }
        stand_in::tick(&mut store, &options.trouble);
        let listener =
            TcpListener::bind(("127.0.0.1", options.port)).map_err(|error| format!("cannot listen: {error}"))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        let store = Arc::new(Mutex::new(store));
        let shared = Arc::new(server::Shared::new(options.faults.clone(), options.latency));
        let trouble = Arc::new(Mutex::new(options.trouble.clone()));
        let backends = server::Backends::default();
        {
            let shared = Arc::clone(&shared);
            let answer = server::api_answer(Arc::clone(&store), Arc::clone(&backends));
            let threads = options.threads;
            std::thread::spawn(move || server::serve_with(listener, shared, answer, threads));
        }
        {
            let (shared, store) = (Arc::clone(&shared), Arc::clone(&store));
            let trouble = Arc::clone(&trouble);
            let _ = std::thread::Builder::new().name("double-stand-in".into()).spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(25));
                    let trouble = trouble.lock().map(|trouble| trouble.clone()).unwrap_or_default();
                    if let Ok(mut store) = store.lock() {
                        stand_in::tick(&mut store, &trouble);
                    }
                }
            });
        }
        Ok(ApiDouble { address, shared, backends, store, trouble })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig whose current context is this double.
    pub fn kubeconfig(&self, context: &str) -> String {
        kubeconfig(&self.url(), context)
    }

    /// The loopback address it listens on (for a [`FaultProxy`] in front).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// A kubeconfig whose one context reaches `server` (plain HTTP, no auth).
pub fn kubeconfig(server: &str, context: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\ncurrent-context: {context}\nusers:\n- name: {context}\n  user:\n    token: double\n",
        server
    )
}

impl ApiDouble {
    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(context))
    }

    /// Every object, in key order.
    pub fn objects(&self) -> Vec<Value> {
        self.store.lock().map(|store| store.objects.values().cloned().collect()).unwrap_or_default()
    }

    /// Puts `backend` behind a port of Service `namespace/NAME`: the
    /// service proxy (`…/services/NAME:PORT/proxy/…`) forwards there, as
    /// it would to the pods of a chart the helm controller installed.
    /// `service` is `NAME:PORT` as the proxy path writes it.
    pub fn set_service_backend(&self, namespace: &str, service: &str, backend: SocketAddr) {
        if let Ok(mut backends) = self.backends.lock() {
            backends.insert(format!("{namespace}/{service}"), backend);
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut current) = self.shared.faults.lock() {
            *current = faults;
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        if let Ok(mut current) = self.shared.latency.lock() {
            *current = latency;
        }
    }

    pub fn set_trouble(&self, trouble: Trouble) {
        if let Ok(mut current) = self.trouble.lock() {
            *current = trouble;
        }
        // New trouble may change what the stand-in writes: look again.
        if let Ok(mut store) = self.store.lock() {
            store.settled_at = None;
        }
    }

    pub fn requests(&self) -> u64 {
        self.shared.counters.requests.load(Ordering::Relaxed)
    }

    pub fn faults_injected(&self) -> u64 {
        self.shared.counters.faults.load(Ordering::Relaxed)
    }
}

impl Drop for ApiDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(self.address);
    }
}

fn key(group: &str, plural: &str, namespace: &str, name: &str) -> store::Key {
    (group.into(), plural.into(), namespace.into(), name.into())
}

fn install_crd(store: &mut store::Store, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let crd: Value = serde_saphyr::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
    let kind = store.kind("apiextensions.k8s.io", "v1", "customresourcedefinitions").ok_or("no CRD kind")?;
    let write = Write { manager: "kube-apiserver", dry_run: false, part: store::Part::Main };
    store
        .create(&kind, key("apiextensions.k8s.io", "customresourcedefinitions", "", &name), crd, &write)
        .map_err(|error| format!("{}: {}", path.display(), error.message))?;
    Ok(())
}

/// The strict schema folder of the `kubernetes-validate` that python3 has,
/// for Kubernetes `version` (`1.34.0`), if it is installed.
pub fn kubernetes_validate_schemas(version: &str) -> Option<PathBuf> {
    let output = std::process::Command::new("python3")
        .args(["-c", "import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let root = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let dir = root.join("kubernetes-json-schema").join(format!("v{version}-local-strict"));
    dir.join("_definitions.json").is_file().then_some(dir)
}
