//! An HTTP API that is not the Kubernetes API (a Temporal frontend, a
//! Qdrant), reached at its address or, for a service sovereign deployed,
//! through its cluster's API server (the service proxy, with the
//! kubeconfig's credentials: no port has to be opened). One request
//! retried on what may pass: connection failures, timeouts, 429 and 5xx,
//! with backoff and jitter; any other answer is the caller's to judge.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::Cluster;
use crate::retry::Backoff;

pub struct ServiceHttp {
    transport: Transport,
    backoff: Backoff,
    /// Sent with every request (an API key): never shown, logged or kept.
    headers: Vec<(String, String)>,
}

enum Transport {
    Direct { client: reqwest::Client, base: String },
    ThroughCluster { cluster: Arc<Cluster>, namespace: String, service: String, port: u16, described: String },
}

impl ServiceHttp {
    /// `endpoint` is the API's base URL (`http://temporal:7243`); no
    /// request is made yet.
    pub fn direct(endpoint: &str, request_timeout: Duration) -> Result<ServiceHttp, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // No redirects: a header (an API key) must not follow one to another host.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let base = endpoint.trim_end_matches('/').to_owned();
        Ok(ServiceHttp {
            transport: Transport::Direct { client, base },
            backoff: Backoff::default(),
            headers: Vec::new(),
        })
    }

    /// The API behind `service`'s `port` in `namespace` of `cluster`.
    #[must_use]
    pub fn through_cluster(cluster: Arc<Cluster>, namespace: &str, service: &str, port: u16) -> ServiceHttp {
        let described = format!("service {namespace}/{service}:{port} of context {}", cluster.context);
        let transport = Transport::ThroughCluster {
            cluster,
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            port,
            described,
        };
        ServiceHttp { transport, backoff: Backoff::default(), headers: Vec::new() }
    }

    /// A header sent with every request.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: String) -> ServiceHttp {
        self.headers.push((name.to_owned(), value));
        self
    }

    /// At most `attempts` tries of each request (the first included).
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> ServiceHttp {
        self.backoff.attempts = attempts.max(1);
        self
    }

    /// Where the API is, for messages.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        match &self.transport {
            Transport::Direct { base, .. } => base,
            Transport::ThroughCluster { described, .. } => described,
        }
    }

    /// One request as sent, without retries: the status and the body.
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>), String> {
        match &self.transport {
            Transport::Direct { client, base } => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
                let mut request = client.request(method, format!("{base}{path}"));
                for (name, value) in &self.headers {
                    request = request.header(name, value);
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                let response = request.send().await.map_err(|e| e.without_url().to_string())?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await.map_err(|e| e.without_url().to_string())?;
                Ok((status, bytes.to_vec()))
            }
            Transport::ThroughCluster { cluster, namespace, service, port, .. } => {
                let body = body.map(|body| body.to_string().into_bytes());
                cluster
                    .service_request(namespace, service, *port, method, path, body, &self.headers)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The status and the decoded answer (a body that is not JSON as a
    /// string), retried on what may pass; `Err` says why it never got
    /// through.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.send(method, path, body).await {
                Ok((status, bytes)) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    // Through the service proxy, a Kubernetes `Status` is the API
                    // server's answer (no such Service, no endpoint), not the service's:
                    // never read as the service saying "not found".
                    let proxy_failed = matches!(self.transport, Transport::ThroughCluster { .. })
                        && status >= 400
                        && value.get("kind").and_then(Value::as_str) == Some("Status")
                        && value.get("apiVersion").and_then(Value::as_str) == Some("v1");
                    if status != 429 && status < 500 && !proxy_failed {
                        return Ok((status, value));
                    }
                    let message = answer_message(&value);
                    format!("{status}: {message}")
                }
                Err(error) => error,
            };
            if attempt >= self.backoff.attempts {
                return Err(format!("{method} {path}: {failure}"));
            }
            tokio::time::sleep(self.backoff.before_retry(attempt, &failure)).await;
        }
    }
}

/// A path segment, percent-encoded beyond the unreserved characters: the
/// names are DNS-like, but nothing unescaped reaches a URL.
#[must_use]
pub fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What an HTTP API's error answer says: Temporal's (and Kubernetes')
/// `message`, Qdrant's `status.error`, else the start of the answer.
#[must_use]
pub fn answer_message(answer: &Value) -> String {
    let said = answer.get("message").or_else(|| answer.pointer("/status/error")).and_then(Value::as_str);
    said.map_or_else(|| answer.to_string().chars().take(300).collect(), str::to_owned)
}
