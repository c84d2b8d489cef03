//! A Qdrant double: the HTTP endpoints sovereign's apply uses, answered as
//! Qdrant 1.19 answers them, so that the Qdrant driver runs the same code
//! against it as against a real server (`SOVEREIGN_E2E_QDRANT_URL` points
//! the tests at one). Qdrant cannot run here: this stands in.
//!
//! What it does (api.qdrant.tech "Create a collection", "Check collection
//! existence", "Delete a collection", "Get collection details"; qdrant/qdrant
//! `src/actix/auth.rs` for the keys; `../shared/reference/targets-facts.md` §4.2):
//! - `GET /collections/{name}/exists` → `{"result": {"exists": bool}}`;
//! - `GET /collections/{name}` → the collection's `config.params.vectors`
//!   (`size`, `distance`) and `points_count`; 404 when there is none;
//! - `PUT /collections/{name}` with `{"vectors": {"size", "distance"}}`:
//!   `size` 1..=65536, `distance` one of `Cosine`, `Euclid`, `Dot`,
//!   `Manhattan` (else 422 with Qdrant's validation message); an existing
//!   collection is 409 "already exists";
//! - `DELETE /collections/{name}` → `{"result": true}`, or `false` when
//!   there was none;
//! - `GET /collections`, and `/`, `/healthz`, `/livez`, `/readyz` (these
//!   four without a key);
//! - API keys: with one set, a request without `api-key` (or
//!   `Authorization: Bearer`) is 401, with another key 403;
//! - faults ([`kube_double::Faults`]): 500, 503, 429, resets before and
//!   after a write commits, slow and hung requests, at a rate of the writes.
//!
//! What it does not do: points, search, named or sparse vectors, shards,
//! snapshots, gRPC, TLS. Every answer is JSON (Qdrant's health endpoints
//! answer plain text). Collections live in memory.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use kube_double::Faults;
use kube_double::api::{Request, Response};
use kube_double::server::{self, Shared};
use serde_json::{Value, json};

/// A collection as the double holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    pub size: u64,
    pub distance: String,
    /// Stands for the vectors it holds (a test sets it to see them lost).
    pub points: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Required on every request but the health endpoints, when set.
    pub api_key: Option<String>,
    pub faults: Faults,
}

pub struct QdrantDouble {
    address: SocketAddr,
    shared: Arc<Shared>,
    collections: Arc<Mutex<BTreeMap<String, Collection>>>,
}

impl QdrantDouble {
    /// Listens on a free loopback port.
    pub fn start(options: Options) -> Result<QdrantDouble, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot listen: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared::new(options.faults, std::time::Duration::ZERO));
        let collections = Arc::new(Mutex::new(BTreeMap::new()));
        let answer: Arc<server::Answer> = {
            let collections = Arc::clone(&collections);
            let key = options.api_key;
            Arc::new(move |request: &Request| Some(server::encode(&handle(&collections, key.as_deref(), request))))
        };
        {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || server::serve(listener, shared, answer));
        }
        Ok(QdrantDouble { address, shared, collections })
    }

    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    #[must_use]
    pub fn collections(&self) -> BTreeMap<String, Collection> {
        self.collections.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Gives a collection `points` points (the vectors a replace would lose).
    pub fn set_points(&self, name: &str, points: u64) {
        if let Ok(mut collections) = self.collections.lock()
            && let Some(collection) = collections.get_mut(name)
        {
            collection.points = points;
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut current) = self.shared.faults.lock() {
            *current = faults;
        }
    }

    #[must_use]
    pub fn faults_injected(&self) -> u64 {
        self.shared.counters.faults.load(Ordering::Relaxed)
    }
}

impl Drop for QdrantDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.address);
    }
}

fn ok(result: Value) -> Response {
    Response { status: 200, body: json!({"result": result, "status": "ok", "time": 0.000_01}), retry_after: None }
}

fn failure(status: u16, error: &str) -> Response {
    Response { status, body: json!({"status": {"error": error}, "time": 0.000_01}), retry_after: None }
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn handle(collections: &Mutex<BTreeMap<String, Collection>>, key: Option<&str>, request: &Request) -> Response {
    let path = request.path.trim_end_matches('/');
    let get = request.method == "GET";
    match path {
        "" if get => return ok(json!({"title": "qdrant - vector search engine", "version": "1.19.0"})),
        "/healthz" | "/livez" if get => return ok(json!("healthz check passed")),
        "/readyz" if get => return ok(json!("all shards are ready")),
        _ => {}
    }
    if let Some(key) = key {
        let given = header(request, "api-key")
            .or_else(|| header(request, "authorization").and_then(|value| value.strip_prefix("Bearer ")));
        match given {
            None => return failure(401, "Must provide an API key or an Authorization bearer token"),
            Some(given) if given != key => return failure(403, "Invalid API key or JWT"),
            Some(_) => {}
        }
    }
    let Ok(mut collections) = collections.lock() else { return failure(500, "the double's lock is poisoned") };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["collections"]) => {
            let names: Vec<Value> = collections.keys().map(|name| json!({"name": name})).collect();
            ok(json!({"collections": names}))
        }
        ("GET", ["collections", name, "exists"]) => ok(json!({"exists": collections.contains_key(*name)})),
        ("GET", ["collections", name]) => match collections.get(*name) {
            Some(c) => ok(json!({
                "status": "green", "optimizer_status": "ok", "indexed_vectors_count": 0,
                "points_count": c.points, "segments_count": 2,
                "config": {"params": {"vectors": {"size": c.size, "distance": c.distance},
                                      "shard_number": 1, "replication_factor": 1, "on_disk_payload": true}},
                "payload_schema": {}
            })),
            None => failure(404, &format!("Not found: Collection `{name}` doesn't exist!")),
        },
        ("PUT", ["collections", name]) => {
            if collections.contains_key(*name) {
                return failure(409, &format!("Wrong input: Collection `{name}` already exists!"));
            }
            let body: Value = match serde_json::from_slice(&request.body) {
                Ok(body) => body,
                Err(error) => return failure(400, &format!("Json deserialize error: {error}")),
            };
            let size = body.pointer("/vectors/size").and_then(Value::as_u64);
            let distance = body.pointer("/vectors/distance").and_then(Value::as_str);
            let Some(distance) = distance.filter(|d| ["Cosine", "Euclid", "Dot", "Manhattan"].contains(d)) else {
                return failure(
                    400,
                    "Json deserialize error: unknown variant, expected one of `Cosine`, `Euclid`, `Dot`, `Manhattan`",
                );
            };
            match size {
                Some(size @ 1..=65536) => {
                    let collection = Collection { size, distance: distance.to_owned(), points: 0 };
                    collections.insert((*name).to_owned(), collection);
                    ok(json!(true))
                }
                _ => failure(
                    422,
                    "Validation error in JSON body: [vectors.size: value 0 invalid, must be from 1 to 65536]",
                ),
            }
        }
        ("DELETE", ["collections", name]) => ok(json!(collections.remove(*name).is_some())),
        (method, _) => failure(404, &format!("Not found: {method} {path}")),
    }
}
