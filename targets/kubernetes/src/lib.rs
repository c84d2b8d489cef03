//! The Kubernetes driver: what `sovereign apply` does to a site's cluster,
//! through kube-rs.
//!
//! Every write is a server-side apply under one field manager,
//! [`FIELD_MANAGER`], with strict field validation; kinds are found by API
//! discovery (cached, looked up again after a CRD is established).
//! Transient failures (5xx, 429 with its Retry-After, 409s that are not
//! field conflicts, resets and timeouts) are retried with exponential
//! backoff and jitter; a rejection that means the object is wrong is not.
//!
//! Architecture Invariant: the one place sovereign talks to a Kubernetes
//! API server. The tests' API double (tools/kube-double) is reached through
//! this same code.

pub mod readiness;
pub mod retry;
pub mod service;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
    ValidationDirective,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;
use tracing::Instrument as _;

pub use readiness::Readiness;
pub use retry::Backoff;

/// The field manager of every sovereign write.
pub const FIELD_MANAGER: &str = "sovereign";

/// Why a request failed, sorted by what the caller can do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// The cluster cannot be reached, or kept failing transiently.
    Unreachable(String),
    /// The API server refused the object (4xx): it is wrong as written.
    Rejected { code: u16, reason: String, message: String, causes: Vec<(String, String)> },
    /// Server-side apply conflicts: (manager, field) pairs.
    Conflict { message: String, fields: Vec<(String, String)> },
    /// The cluster does not serve this kind (a CRD not installed).
    UnknownKind(String),
    /// The kubeconfig or context is unusable.
    Config(String),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Unreachable(message) | DriverError::UnknownKind(message) | DriverError::Config(message) => {
                f.write_str(message)
            }
            DriverError::Rejected { code, reason, message, .. } => {
                write!(f, "the API server refused it ({code} {reason}): {message}")
            }
            DriverError::Conflict { fields, .. } => {
                let list: Vec<String> =
                    fields.iter().map(|(manager, field)| format!("{field} (owned by \"{manager}\")")).collect();
                write!(
                    f,
                    "another field manager owns fields sovereign sets: {}; `--force-conflicts` takes them over",
                    list.join(", ")
                )
            }
        }
    }
}

/// What a write left on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub uid: String,
    pub resource_version: String,
    pub generation: i64,
    pub object: Value,
}

impl Live {
    fn of(object: Value) -> Live {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned();
        Live {
            uid: text("/metadata/uid"),
            resource_version: text("/metadata/resourceVersion"),
            generation: object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0),
            object,
        }
    }
}

/// A spawned request that ends when the future awaiting it is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How requests are made.
#[derive(Clone, Debug)]
pub struct Settings {
    /// One request's timeout (a hung request is retried after it).
    pub request_timeout: Duration,
    pub backoff: Backoff,
    pub force_conflicts: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { request_timeout: Duration::from_secs(30), backoff: Backoff::default(), force_conflicts: false }
    }
}

/// One cluster, reached through one kubeconfig context.
pub struct Cluster {
    client: kube::Client,
    pub context: String,
    settings: Settings,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl Cluster {
    /// Connects through `context` of the kubeconfig at `path` (or of
    /// `KUBECONFIG` / `~/.kube/config`); no request is made yet.
    pub async fn connect(
        path: Option<&Path>,
        context: Option<&str>,
        settings: Settings,
    ) -> Result<Cluster, DriverError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let options = KubeConfigOptions { context: context.map(str::to_owned), ..KubeConfigOptions::default() };
        let kubeconfig = match path {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|error| DriverError::Config(format!("cannot read the kubeconfig: {error}")))?;
        let current = kubeconfig.current_context.clone().unwrap_or_default();
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|error| {
            DriverError::Config(format!("kubeconfig context {:?}: {error}", context.unwrap_or(&current)))
        })?;
        config.read_timeout = Some(settings.request_timeout);
        config.write_timeout = Some(settings.request_timeout);
        config.connect_timeout = Some(settings.request_timeout.min(Duration::from_secs(10)));
        let client = kube::Client::try_from(config)
            .map_err(|error| DriverError::Config(format!("cannot make a client: {error}")))?;
        let context = context.map(str::to_owned).unwrap_or(current);
        Ok(Cluster { client, context, settings, kinds: Mutex::new(HashMap::new()) })
    }

    /// The API resource serving `apiVersion` + `kind`, by discovery.
    async fn resource(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool), DriverError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(found) = self.kinds.lock().ok().and_then(|kinds| kinds.get(&key).cloned()) {
            return Ok(found);
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let found =
            retry::run(&self.settings.backoff, || async { kube::discovery::pinned_kind(&self.client, &gvk).await })
                .await
                .map_err(|error| match error {
                    DriverError::Rejected { code: 404, .. } | DriverError::UnknownKind(_) => DriverError::UnknownKind(
                        format!("the cluster does not serve {kind} in {api_version} (is its CRD installed?)"),
                    ),
                    other => other,
                })?;
        let found = (found.0, matches!(found.1.scope, Scope::Namespaced));
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Where `object` lives: its kind's API resource, and its namespace
    /// (the context's default for a namespaced object that names none;
    /// none for a cluster-scoped kind).
    async fn located<'a>(&'a self, object: &'a Value) -> Result<(ApiResource, Option<&'a str>), DriverError> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or("");
        let (resource, namespaced) = self.resource(text("/apiVersion"), text("/kind")).await?;
        let namespace = match (namespaced, object.pointer("/metadata/namespace").and_then(Value::as_str)) {
            (true, Some(namespace)) => Some(namespace),
            (true, None) => Some(self.client.default_namespace()),
            (false, _) => None,
        };
        Ok((resource, namespace))
    }

    async fn api(&self, object: &Value) -> Result<Api<DynamicObject>, DriverError> {
        let (resource, namespace) = self.located(object).await?;
        Ok(match namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// The URL path of `object`'s collection, as [`Cluster::api`] addresses it.
    async fn path(&self, object: &Value) -> Result<String, DriverError> {
        let (resource, namespace) = self.located(object).await?;
        Ok(<DynamicObject as kube::Resource>::url_path(&resource, namespace))
    }

    fn name(object: &Value) -> &str {
        object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    }

    /// Server-side applies `object`; `dry_run` asks the server to check it
    /// without storing it.
    pub async fn apply(&self, object: &Value, dry_run: bool) -> Result<Live, DriverError> {
        let path = self.path(object).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = self.settings.force_conflicts;
        params.dry_run = dry_run;
        params.field_validation = Some(ValidationDirective::Strict);
        let name = Self::name(object).to_owned();
        let (object, backoff, client) = (object.clone(), self.settings.backoff.clone(), self.client.clone());
        // On a task of its own: encoding the body and decoding the answer
        // are most of a request's CPU, and the executor polls every step
        // from one thread, so they would otherwise take turns on one core.
        // Decoded straight into a `Value`, which is what the caller reads
        // (through `Api<DynamicObject>` it would be decoded twice). The task
        // runs in the caller's span (its retries are the step's events) and
        // ends with the caller's future (an aborted apply sends no more).
        let request = tokio::spawn(
            async move {
                let patch = Patch::Apply(&object);
                let request = kube::core::Request::new(path);
                let applied: Value = retry::run(&backoff, || async {
                    let mut request = request.patch(&name, &params, &patch).map_err(kube::Error::BuildRequest)?;
                    // What kube's own `Api::patch` names its HTTP span.
                    request.extensions_mut().insert("patch");
                    client.request::<Value>(request).await
                })
                .await?;
                Ok(Live::of(applied))
            }
            .in_current_span(),
        );
        let mut request = AbortOnDrop(request);
        match (&mut request.0).await {
            Ok(applied) => applied,
            // A bug in the request, not the network: it unwinds as it would have in place.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(DriverError::Unreachable(format!("the request stopped: {error}"))),
        }
    }

    /// The live object named like `object`, if it exists.
    pub async fn get(&self, object: &Value) -> Result<Option<Live>, DriverError> {
        let api = self.api(object).await?;
        let name = Self::name(object);
        let found = retry::run(&self.settings.backoff, || api.get_opt(name)).await?;
        Ok(found.map(|found| Live::of(serde_json::to_value(found).unwrap_or(Value::Null))))
    }

    /// Objects of `api_version`/`kind` matching a label selector, in
    /// `namespace`, or in every namespace when it is `None`.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, DriverError> {
        let (resource, namespaced) = self.resource(api_version, kind).await?;
        let api: Api<DynamicObject> = match (namespaced, namespace) {
            (true, Some(namespace)) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        };
        let params = ListParams::default().labels(selector);
        let list = retry::run(&self.settings.backoff, || api.list(&params)).await?;
        // Items of a list may come without their kind: give them the list's.
        Ok(list
            .items
            .into_iter()
            .filter_map(|item| serde_json::to_value(item).ok())
            .map(|mut item| {
                item["apiVersion"] = Value::String(api_version.to_owned());
                item["kind"] = Value::String(kind.to_owned());
                item
            })
            .collect())
    }

    /// What a create or replace of `object` sends, and where.
    async fn write_of(&self, object: &Value) -> Result<(Api<DynamicObject>, DynamicObject, PostParams), DriverError> {
        let api = self.api(object).await?;
        let data: DynamicObject = serde_json::from_value(object.clone()).map_err(|e| DriverError::Rejected {
            code: 400,
            reason: "BadRequest".into(),
            message: e.to_string(),
            causes: Vec::new(),
        })?;
        Ok((api, data, PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() }))
    }

    /// Creates `object`; an object of that name existing already is a
    /// `Rejected` 409 (not retried: the caller decides).
    pub async fn create(&self, object: &Value) -> Result<Live, DriverError> {
        let (api, data, params) = self.write_of(object).await?;
        let created = retry::run_once_written(&self.settings.backoff, || api.create(&params, &data)).await?;
        Ok(Live::of(serde_json::to_value(created).unwrap_or(Value::Null)))
    }

    /// Replaces the object if its `metadata.resourceVersion` is still the
    /// live one: optimistic concurrency (a 409 otherwise, not retried).
    pub async fn replace(&self, object: &Value) -> Result<Live, DriverError> {
        let (api, data, params) = self.write_of(object).await?;
        let replaced =
            retry::run_once_written(&self.settings.backoff, || api.replace(Self::name(object), &params, &data)).await?;
        Ok(Live::of(serde_json::to_value(replaced).unwrap_or(Value::Null)))
    }

    /// Deletes the object named like `object`; true if it was there.
    pub async fn delete(&self, object: &Value) -> Result<bool, DriverError> {
        let api = self.api(object).await?;
        let params =
            DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() };
        let name = Self::name(object);
        match retry::run(&self.settings.backoff, || api.delete(name, &params)).await {
            Ok(_) => Ok(true),
            Err(DriverError::Rejected { code: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Forgets a kind, after its CRD changed.
    pub fn forget_kinds(&self) {
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.clear();
        }
    }

    /// One HTTP request to a Service's port through the API server's
    /// service proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/…`),
    /// with this cluster's credentials, so no port of the service has to be
    /// opened; the status and the body as the service (or, when it cannot
    /// be reached, the API server) answered. Not retried here: the caller
    /// knows which of its requests may be repeated.
    #[allow(clippy::too_many_arguments)]
    pub async fn service_request(
        &self,
        namespace: &str,
        service: &str,
        port: u16,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(String, String)],
    ) -> Result<(u16, Vec<u8>), DriverError> {
        let uri = format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}");
        let mut request = http::Request::builder().method(method).uri(&uri);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(kube::client::Body::from(body.unwrap_or_default()))
            .map_err(|e| DriverError::Config(format!("cannot make the request {method} {uri}: {e}")))?;
        let send = tokio::time::timeout(self.settings.request_timeout, self.client.send(request));
        let response = match send.await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(DriverError::Unreachable(format!("{method} {uri}: {error}"))),
            Err(_) => {
                return Err(DriverError::Unreachable(format!(
                    "{method} {uri}: no answer in {}s",
                    self.settings.request_timeout.as_secs_f64()
                )));
            }
        };
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|error| DriverError::Unreachable(format!("{method} {uri}: {error}")))?;
        Ok((status, bytes.to_vec()))
    }
}

fn classify(error: kube::Error) -> (DriverError, Option<Duration>) {
    match error {
        kube::Error::Api(status) => {
            let causes: Vec<(String, String)> = status
                .details
                .as_ref()
                .map(|details| {
                    details.causes.iter().map(|cause| (cause.field.clone(), cause.message.clone())).collect()
                })
                .unwrap_or_default();
            let conflict = status
                .details
                .as_ref()
                .is_some_and(|details| details.causes.iter().any(|cause| cause.reason == "FieldManagerConflict"));
            if status.code == 409 && conflict {
                let fields = causes
                    .iter()
                    .map(|(field, message)| {
                        let manager = message.split('"').nth(1).unwrap_or(message).to_owned();
                        (manager, field.clone())
                    })
                    .collect();
                return (DriverError::Conflict { message: status.message.clone(), fields }, None);
            }
            (
                DriverError::Rejected {
                    code: status.code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                    causes,
                },
                None,
            )
        }
        kube::Error::Discovery(error) => (DriverError::UnknownKind(error.to_string()), None),
        other => (DriverError::Unreachable(format!("the API server could not be reached: {other}")), None),
    }
}
