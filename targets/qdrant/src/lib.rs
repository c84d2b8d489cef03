//! The Qdrant driver: makes a Qdrant hold each collection a `vectorstore`
//! declares, with the declared size and distance (the emitter is the Helm
//! target's, `targets/helm/src/qdrant.rs`: `PUT /collections/{name}`
//! bodies). Facts: `../shared/reference/targets-facts.md` §4.2 (api.qdrant.tech
//! "Create a collection", "Check collection existence"; qdrant/qdrant
//! `src/actix/auth.rs`).
//!
//! - A collection is looked for first (`GET /collections/{name}/exists`,
//!   then its details): absent, it is created (`PUT`); present with the
//!   declared size and distance, nothing is sent; present with another
//!   schema, it is refused ([`QdrantError::Differs`]): changing a schema
//!   means deleting the collection and its vectors, which only a replace
//!   does, and apply allows that only with `--prune-data`.
//! - The API key goes in the `api-key` header, never anywhere else.
//! - A Qdrant sovereign deployed is reached through its site's API server
//!   (the chart's Service, port 6333), as the Temporal driver reaches its
//!   server ([`sovereign_kubernetes::service`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sovereign_kubernetes::Cluster;
use sovereign_kubernetes::service::{ServiceHttp, path_segment as segment};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QdrantError {
    Unreachable(String),
    /// The server refused the request (a 4xx): its own message.
    Refused {
        status: u16,
        message: String,
    },
    /// The collection exists with another schema: (size, distance) live.
    Differs {
        size: u64,
        distance: String,
    },
}

impl std::fmt::Display for QdrantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QdrantError::Unreachable(why) => write!(f, "Qdrant could not be reached: {why}"),
            QdrantError::Refused { status, message } => write!(f, "Qdrant refused it ({status}): {message}"),
            QdrantError::Differs { size, distance } => write!(
                f,
                "the collection exists with {size} dimensions and {distance} distance: changing its schema deletes its vectors (a replace, which apply makes only with --prune-data)"
            ),
        }
    }
}

/// What an ensure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Unchanged,
}

pub struct QdrantServer {
    http: ServiceHttp,
}

impl QdrantServer {
    /// A Qdrant at `endpoint` (`http://qdrant:6333`).
    pub fn new(
        endpoint: &str,
        api_key: Option<String>,
        request_timeout: Duration,
    ) -> Result<QdrantServer, QdrantError> {
        let http = ServiceHttp::direct(endpoint, request_timeout).map_err(QdrantError::Unreachable)?;
        Ok(QdrantServer { http: with_key(http, api_key) })
    }

    /// The Qdrant behind `service`'s `port` in `namespace` of `cluster`.
    #[must_use]
    pub fn through_cluster(
        cluster: Arc<Cluster>,
        namespace: &str,
        service: &str,
        port: u16,
        api_key: Option<String>,
    ) -> QdrantServer {
        QdrantServer { http: with_key(ServiceHttp::through_cluster(cluster, namespace, service, port), api_key) }
    }

    #[must_use]
    pub fn with_attempts(self, attempts: u32) -> QdrantServer {
        QdrantServer { http: self.http.with_attempts(attempts) }
    }

    #[must_use]
    pub fn endpoint(&self) -> &str {
        self.http.endpoint()
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), QdrantError> {
        self.http.call(method, path, body).await.map_err(QdrantError::Unreachable)
    }

    /// The collection's (size, distance); `None` when there is none.
    pub async fn collection(&self, name: &str) -> Result<Option<(u64, String)>, QdrantError> {
        let name = segment(name);
        match self.call("GET", &format!("/collections/{name}/exists"), None).await? {
            (200, answer) if answer.pointer("/result/exists") == Some(&Value::Bool(false)) => return Ok(None),
            (200, _) => {}
            (status, answer) => return Err(refused(status, &answer)),
        }
        match self.call("GET", &format!("/collections/{name}"), None).await? {
            (200, answer) => {
                let vectors = answer.pointer("/result/config/params/vectors").cloned().unwrap_or(Value::Null);
                let size = vectors.get("size").and_then(Value::as_u64).unwrap_or(0);
                let distance = vectors.get("distance").and_then(Value::as_str).unwrap_or("").to_owned();
                Ok(Some((size, distance)))
            }
            // Deleted between the two requests.
            (404, _) => Ok(None),
            (status, answer) => Err(refused(status, &answer)),
        }
    }

    /// Creates the collection `name` as `desired` (`{"vectors": {"size",
    /// "distance"}}`) says, unless it already is so.
    pub async fn ensure_collection(&self, name: &str, desired: &Value) -> Result<Ensured, QdrantError> {
        let size = desired.pointer("/vectors/size").and_then(Value::as_u64).unwrap_or(0);
        let distance = desired.pointer("/vectors/distance").and_then(Value::as_str).unwrap_or("");
        match self.collection(name).await? {
            Some((live_size, live_distance)) if live_size == size && live_distance == distance => {
                return Ok(Ensured::Unchanged);
            }
            Some((size, distance)) => return Err(QdrantError::Differs { size, distance }),
            None => {}
        }
        // A 409 says it exists: made meanwhile (a lost answer, a retry), or
        // a conflict that committed nothing; what is there decides.
        for _ in 0..3 {
            match self.call("PUT", &format!("/collections/{}", segment(name)), Some(desired)).await? {
                (200, _) => return Ok(Ensured::Created),
                (409, _) => match self.collection(name).await? {
                    Some((live_size, live_distance)) if live_size == size && live_distance == distance => {
                        return Ok(Ensured::Created);
                    }
                    Some((size, distance)) => return Err(QdrantError::Differs { size, distance }),
                    None => {}
                },
                (status, answer) => return Err(refused(status, &answer)),
            }
        }
        Err(QdrantError::Refused { status: 409, message: format!("collection {name} is said to exist, and does not") })
    }

    /// Deletes the collection and its vectors; one already gone is not an error.
    pub async fn delete_collection(&self, name: &str) -> Result<(), QdrantError> {
        match self.call("DELETE", &format!("/collections/{}", segment(name)), None).await? {
            (200 | 404, _) => Ok(()),
            (status, answer) => Err(refused(status, &answer)),
        }
    }
}

fn with_key(http: ServiceHttp, api_key: Option<String>) -> ServiceHttp {
    match api_key {
        Some(key) => http.with_header("api-key", key),
        None => http,
    }
}

/// Qdrant's errors are `{"status": {"error": "…"}}`.
fn refused(status: u16, answer: &Value) -> QdrantError {
    QdrantError::Refused { status, message: sovereign_kubernetes::service::answer_message(answer) }
}
