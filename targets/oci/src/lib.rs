//! The OCI registry driver: pushes an image layout (a device bundle) to a
//! repository over the distribution API, tags it, and reads the tag back.
//!
//! Facts: opencontainers/distribution-spec `spec.md` v1.1 — blobs are
//! looked for with `HEAD /v2/<name>/blobs/<digest>` (200 or 404) and sent
//! as a monolithic upload (`POST /v2/<name>/blobs/uploads/` answers 202
//! and a `Location`; `PUT <location>?digest=<digest>` answers 201);
//! manifests are `PUT /v2/<name>/manifests/<reference>` with their media
//! type (201), looked for with `HEAD` (the `Docker-Content-Digest` header
//! is the digest); a registry that supports referrers answers a manifest
//! with a `subject` with the `OCI-Subject` header, and for one that does
//! not the client keeps the referrers tag schema (`sha256-<hex>` tagging
//! an index of the referrers); errors are `{"errors": [{"code",
//! "message"}]}`. Checked against Debian's `docker-registry` (CNCF
//! distribution 2.8).
//!
//! - Nothing the registry has is sent again: every blob and manifest is
//!   looked for first. A push cut short (a registry that stopped) is
//!   completed by the next one, which sends only what is missing.
//! - What a push reads is checked against its digests before anything is
//!   sent, so a changed layout is refused, not pushed.
//! - Transient failures (no connection, timeouts, 429, 5xx) are retried
//!   with backoff; an upload is retried from a new session.
//! - Credentials ([`auth`]) go in an `Authorization` header to the
//!   registry or its token realm and nowhere else; reqwest drops that
//!   header on a redirect to another host.
//!
//! Not the `oci-client` crate: its manifest push panics (an `expect`) when
//! a registry omits the `Location` of a manifest pushed by digest, which
//! some registries do, and it has no say over retries.

pub mod auth;
pub mod layout;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use sovereign_kubernetes::retry::Backoff;
use tokio::sync::{Mutex, OnceCell};

pub use auth::Credentials;
pub use layout::{Descriptor, Layout, digest_of, is_sha256};
/// Where a registry is: parsed once, by the checker and by this driver.
pub use sovereign_ir::registry as location;
pub use sovereign_ir::registry::{Location, Transport};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OciError {
    /// No answer, or only transient failures.
    Unreachable(String),
    /// The registry refused the request: its status and own words.
    Refused { status: u16, message: String },
    /// The registry wants credentials it was not given, or refused them.
    Unauthorized(String),
    /// What was to be pushed is not a sound layout.
    Layout(String),
}

impl std::fmt::Display for OciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OciError::Unreachable(why) => write!(f, "the registry could not be reached: {why}"),
            OciError::Refused { status, message } => write!(f, "the registry refused it ({status}): {message}"),
            OciError::Unauthorized(why) => write!(f, "the registry refused the credentials: {why}"),
            OciError::Layout(why) => write!(f, "the bundle cannot be pushed: {why}"),
        }
    }
}

/// What a push sent and what the registry already had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    pub blobs_sent: usize,
    pub blobs_present: usize,
    pub manifests_sent: usize,
    pub manifests_present: usize,
    pub bytes_sent: u64,
}

/// What a delete found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    AlreadyGone,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The registry's own words: its `errors`, else the start of the body.
    fn message(&self) -> String {
        let value: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let said: Vec<String> = value
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        let text = |key: &str| e.get(key).and_then(Value::as_str).unwrap_or("");
                        format!("{} {}", text("code"), text("message")).trim().to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        if said.is_empty() {
            String::from_utf8_lossy(&self.body).chars().take(200).collect::<String>().trim().to_owned()
        } else {
            said.join("; ")
        }
    }

    fn refused(&self) -> OciError {
        OciError::Refused { status: self.status, message: self.message() }
    }
}

/// One request, as the retry loop resends it.
struct Request<'a> {
    method: reqwest::Method,
    /// A path under the registry (`/v2/…`), or an upload's absolute URL.
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Option<&'a [u8]>,
    /// The token scope (`repository:NAME:pull,push`).
    scope: &'a str,
}

/// A registry: where it is, how it is spoken to, and its credentials.
pub struct Registry {
    client: reqwest::Client,
    location: Location,
    /// `https://host` or `http://host`, settled by the first request.
    base: OnceCell<String>,
    credentials: Option<Credentials>,
    /// Bearer tokens by scope; `basic` once the registry asked for basic auth.
    tokens: Mutex<HashMap<String, String>>,
    basic: std::sync::atomic::AtomicBool,
    backoff: Backoff,
}

impl Registry {
    /// The registry of `location`; no request is made yet.
    pub fn new(
        location: Location,
        credentials: Option<Credentials>,
        request_timeout: Duration,
    ) -> Result<Registry, OciError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| OciError::Unreachable(format!("cannot make an HTTP client: {e}")))?;
        Ok(Registry {
            client,
            location,
            base: OnceCell::new(),
            credentials,
            tokens: Mutex::new(HashMap::new()),
            basic: std::sync::atomic::AtomicBool::new(false),
            backoff: Backoff::default(),
        })
    }

    /// At most `attempts` tries of each request (the first included).
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Registry {
        self.backoff.attempts = attempts.max(1);
        self
    }

    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// `https://host`, or `http://host` where plain HTTP is allowed and TLS
    /// is not answered (Docker's rule for loopback registries).
    async fn base(&self) -> Result<&str, OciError> {
        let base = self
            .base
            .get_or_try_init(|| async {
                let https = format!("https://{}", self.location.host);
                let http = format!("http://{}", self.location.host);
                match self.location.transport {
                    Transport::Tls => Ok(https),
                    Transport::Plain => Ok(http),
                    Transport::TlsThenPlain => match self.client.get(format!("{https}/v2/")).send().await {
                        Ok(_) => Ok(https),
                        Err(e) if e.is_connect() || e.is_request() => Ok(http),
                        Err(e) => Err(OciError::Unreachable(causes(e))),
                    },
                }
            })
            .await?;
        Ok(base)
    }

    /// Sends once, answering one authentication challenge.
    async fn send(&self, request: &Request<'_>) -> Result<Answer, String> {
        let base = self.base().await.map_err(|e| e.to_string())?;
        let url = if request.url.starts_with('/') { format!("{base}{}", request.url) } else { request.url.to_owned() };
        // Credentials go to the registry's own origin only: not to an upload
        // `Location` on another host, or downgraded to plain HTTP.
        let own = url.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        let mut challenged = false;
        loop {
            let mut builder = self.client.request(request.method.clone(), &url);
            for (name, value) in request.headers {
                builder = builder.header(*name, *value);
            }
            let token = if own { self.tokens.lock().await.get(request.scope).cloned() } else { None };
            let basic = own && self.basic.load(std::sync::atomic::Ordering::Relaxed);
            if let Some(token) = token {
                builder = builder.bearer_auth(token);
            } else if let (Some(credentials), true) = (&self.credentials, basic) {
                builder = builder.header("Authorization", credentials.basic());
            }
            if let Some(body) = request.body {
                builder = builder.body(body.to_vec());
            }
            let response = builder.send().await.map_err(causes)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(causes)?.to_vec();
            let answer = Answer { status, headers, body };
            if status != 401 || challenged {
                return Ok(answer);
            }
            challenged = true;
            match answer.header("www-authenticate").and_then(auth::challenge) {
                Some(auth::Challenge::Basic) if self.credentials.is_some() => {
                    self.basic.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Some(auth::Challenge::Bearer { realm, service, scope }) => {
                    let scope = scope.unwrap_or_else(|| request.scope.to_owned());
                    match self.token(&realm, service.as_deref(), &scope).await? {
                        Some(token) => {
                            self.tokens.lock().await.insert(request.scope.to_owned(), token);
                        }
                        // The realm refused: the registry's 401 stands, and is not retried.
                        None => return Ok(answer),
                    }
                }
                _ => return Ok(answer),
            }
        }
    }

    /// A bearer token from the registry's token realm.
    /// A bearer token from `realm`; `None` when the realm refuses (401,
    /// 403), `Err` when it could not be asked (which may pass).
    async fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<Option<String>, String> {
        use sovereign_kubernetes::service::path_segment as encode;
        // Credentials are not sent in clear text, unless the registry itself is plain HTTP or on loopback.
        if self.credentials.is_some() && realm.starts_with("http://") && self.location.transport == Transport::Tls {
            return Ok(None);
        }
        let mut url = format!("{realm}{}scope={}", if realm.contains('?') { '&' } else { '?' }, encode(scope));
        if let Some(service) = service {
            url.push_str(&format!("&service={}", encode(service)));
        }
        let mut builder = self.client.get(url);
        if let Some(credentials) = &self.credentials {
            builder = builder.header("Authorization", credentials.basic());
        }
        let response = builder.send().await.map_err(|e| format!("the token realm: {}", causes(e)))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let token = body.get("token").or_else(|| body.get("access_token")).and_then(Value::as_str);
        match token {
            Some(token) if status == 200 => Ok(Some(token.to_owned())),
            _ if matches!(status, 401 | 403) => Ok(None),
            _ => Err(format!("the token realm answered {status} without a token")),
        }
    }

    /// Sends with retries of what may pass; a 401 that remains is `Unauthorized`.
    async fn call(&self, request: &Request<'_>) -> Result<Answer, OciError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.send(request).await {
                Ok(answer) if answer.status == 401 => {
                    let why = match &self.credentials {
                        None => format!(
                            "{} asks for credentials, and no credentials file has an `auth` for it (`skopeo login`, `docker login`, or $REGISTRY_AUTH_FILE; credential helpers are not run yet)",
                            self.location.host
                        ),
                        Some(c) => format!("{} refused user {}: {}", self.location.host, c.username, answer.message()),
                    };
                    return Err(OciError::Unauthorized(why));
                }
                Ok(answer) if answer.status != 429 && answer.status < 500 => return Ok(answer),
                Ok(answer) => format!("{}: {}", answer.status, answer.message()),
                Err(error) => error,
            };
            if attempt >= self.backoff.attempts {
                let path = request.url.split('?').next().unwrap_or("");
                // A path under the registry, or an upload's absolute URL.
                let host = if path.starts_with('/') { self.location.host.as_str() } else { "" };
                return Err(OciError::Unreachable(format!("{} {host}{path}: {failure}", request.method)));
            }
            tokio::time::sleep(self.backoff.before_retry(attempt, &failure)).await;
        }
    }

    /// Pushes everything `layout` names to `repository` and tags the
    /// descriptor named `ref_name` (`bundle`) as `tag`; what the registry
    /// has is not sent again.
    pub async fn push(&self, repository: &str, layout: &Layout, ref_name: &str, tag: &str) -> Result<Pushed, OciError> {
        location::check_repository(repository).map_err(OciError::Layout)?;
        if !location::is_tag(tag) {
            return Err(OciError::Layout(format!("`{tag}` is not a tag")));
        }
        let order = layout.push_order(ref_name).map_err(OciError::Layout)?;
        let scope = format!("repository:{repository}:pull,push");
        let mut pushed = Pushed::default();
        for blob in &order.blobs {
            let bytes = layout.blob(&blob.digest).map_err(OciError::Layout)?;
            if self.has_blob(repository, &blob.digest, &scope).await? {
                pushed.blobs_present += 1;
            } else {
                self.upload(repository, &blob.digest, bytes, &scope).await?;
                pushed.blobs_sent += 1;
                pushed.bytes_sent += bytes.len() as u64;
            }
        }
        for manifest in &order.manifests {
            let bytes = layout.blob(&manifest.digest).map_err(OciError::Layout)?;
            if self.manifest_digest(repository, &manifest.digest, &manifest.media_type, &scope).await?.as_deref()
                == Some(&manifest.digest)
            {
                pushed.manifests_present += 1;
                continue;
            }
            let answer = self.put_manifest(repository, &manifest.digest, &manifest.media_type, bytes, &scope).await?;
            pushed.manifests_sent += 1;
            pushed.bytes_sent += bytes.len() as u64;
            if let Some((_, subject)) = order.referrers.iter().find(|(m, _)| m.digest == manifest.digest)
                && answer.header("oci-subject").is_none()
            {
                self.add_referrer(repository, subject, manifest, layout, &scope).await?;
            }
        }
        let tagged = &order.tagged;
        if self.manifest_digest(repository, tag, &tagged.media_type, &scope).await?.as_deref() != Some(&tagged.digest) {
            let bytes = layout.blob(&tagged.digest).map_err(OciError::Layout)?;
            self.put_manifest(repository, tag, &tagged.media_type, bytes, &scope).await?;
        }
        Ok(pushed)
    }

    /// The digest `tag` names in `repository`; `None` when it names none.
    pub async fn tagged(&self, repository: &str, tag: &str, media_type: &str) -> Result<Option<String>, OciError> {
        let scope = format!("repository:{repository}:pull");
        self.manifest_digest(repository, tag, media_type, &scope).await
    }

    /// Deletes the manifest `digest` (and with it the tags naming it).
    pub async fn delete(&self, repository: &str, digest: &str) -> Result<Deleted, OciError> {
        let scope = format!("repository:{repository}:pull,push,delete");
        let url = format!("/v2/{repository}/manifests/{digest}");
        let answer = self
            .call(&Request { method: reqwest::Method::DELETE, url: &url, headers: &[], body: None, scope: &scope })
            .await?;
        match answer.status {
            200..=299 => Ok(Deleted::Deleted),
            404 => Ok(Deleted::AlreadyGone),
            405 => Err(OciError::Refused {
                status: 405,
                message: format!(
                    "{} does not allow deletes (distribution: `storage.delete.enabled`); delete {repository}@{digest} there, or leave it",
                    self.location.host
                ),
            }),
            _ => Err(answer.refused()),
        }
    }

    async fn has_blob(&self, repository: &str, digest: &str, scope: &str) -> Result<bool, OciError> {
        let url = format!("/v2/{repository}/blobs/{digest}");
        let answer =
            self.call(&Request { method: reqwest::Method::HEAD, url: &url, headers: &[], body: None, scope }).await?;
        match answer.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(answer.refused()),
        }
    }

    /// A monolithic upload; a failure after the session began begins a new one.
    async fn upload(&self, repository: &str, digest: &str, bytes: &[u8], scope: &str) -> Result<(), OciError> {
        let start = format!("/v2/{repository}/blobs/uploads/");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self
                .call(&Request {
                    method: reqwest::Method::POST,
                    url: &start,
                    headers: &[("Content-Length", "0")],
                    body: Some(&[]),
                    scope,
                })
                .await?;
            if answer.status != 202 {
                return Err(answer.refused());
            }
            let location = answer.header("location").ok_or_else(|| OciError::Refused {
                status: 202,
                message: "the upload was begun without a Location".into(),
            })?;
            let url = self.upload_url(location, digest).await?;
            let put = Request {
                method: reqwest::Method::PUT,
                url: &url,
                headers: &[("Content-Type", "application/octet-stream")],
                body: Some(bytes),
                scope,
            };
            match self.call(&put).await {
                Ok(answer) if answer.status == 201 || answer.status == 204 => return Ok(()),
                // A session that expired or was lost to a restart: begin again.
                Ok(answer) if answer.status == 404 && attempt < 3 => continue,
                Ok(answer) => return Err(answer.refused()),
                Err(OciError::Unreachable(_)) if attempt < 3 => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// The upload's URL with the digest: `Location` may be relative and may
    /// carry a query already.
    async fn upload_url(&self, location: &str, digest: &str) -> Result<String, OciError> {
        let absolute = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{}", self.base().await?, location)
        };
        let joiner = if absolute.contains('?') { '&' } else { '?' };
        Ok(format!("{absolute}{joiner}digest={}", digest.replace(':', "%3A")))
    }

    /// The digest `reference` (a tag or a digest) names, or `None`.
    async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        scope: &str,
    ) -> Result<Option<String>, OciError> {
        let url = format!("/v2/{repository}/manifests/{reference}");
        let accept = format!("{media_type}, {}, {}", layout::INDEX, layout::MANIFEST);
        let answer = self
            .call(&Request {
                method: reqwest::Method::HEAD,
                url: &url,
                headers: &[("Accept", &accept)],
                body: None,
                scope,
            })
            .await?;
        match answer.status {
            200 => match answer.header("docker-content-digest") {
                Some(digest) => Ok(Some(digest.to_owned())),
                // No digest header: the body's own digest.
                None => {
                    let get = self
                        .call(&Request {
                            method: reqwest::Method::GET,
                            url: &url,
                            headers: &[("Accept", &accept)],
                            body: None,
                            scope,
                        })
                        .await?;
                    Ok((get.status == 200).then(|| digest_of(&get.body)))
                }
            },
            404 => Ok(None),
            _ => Err(answer.refused()),
        }
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        scope: &str,
    ) -> Result<Answer, OciError> {
        let url = format!("/v2/{repository}/manifests/{reference}");
        let answer = self
            .call(&Request {
                method: reqwest::Method::PUT,
                url: &url,
                headers: &[("Content-Type", media_type)],
                body: Some(bytes),
                scope,
            })
            .await?;
        if answer.status == 201 || answer.status == 200 { Ok(answer) } else { Err(answer.refused()) }
    }

    /// The referrers tag schema, for a registry without the referrers API:
    /// `sha256-<hex of subject>` tags an index listing the referrers.
    async fn add_referrer(
        &self,
        repository: &str,
        subject: &str,
        referrer: &Descriptor,
        layout: &Layout,
        scope: &str,
    ) -> Result<(), OciError> {
        let tag = subject.replacen(':', "-", 1);
        let url = format!("/v2/{repository}/manifests/{tag}");
        let answer = self
            .call(&Request {
                method: reqwest::Method::GET,
                url: &url,
                headers: &[("Accept", layout::INDEX)],
                body: None,
                scope,
            })
            .await?;
        let mut index = match answer.status {
            200 => serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null),
            404 => Value::Null,
            _ => return Err(answer.refused()),
        };
        if index.get("manifests").and_then(Value::as_array).is_none() {
            index = serde_json::json!({ "schemaVersion": 2, "mediaType": layout::INDEX, "manifests": [] });
        }
        let listed = index["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d.get("digest").and_then(Value::as_str) == Some(&referrer.digest)));
        if listed {
            return Ok(());
        }
        let mut entry = referrer.json();
        // The referrer's own artifactType and annotations, as the spec asks.
        let body: Value =
            serde_json::from_slice(layout.blob(&referrer.digest).map_err(OciError::Layout)?).unwrap_or(Value::Null);
        if let Some(artifact_type) = body.get("artifactType") {
            entry["artifactType"] = artifact_type.clone();
        }
        if let Some(annotations) = body.get("annotations") {
            entry["annotations"] = annotations.clone();
        }
        if let Some(manifests) = index["manifests"].as_array_mut() {
            manifests.push(entry);
        }
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        self.put_manifest(repository, &tag, layout::INDEX, &bytes, scope).await.map(|_| ())
    }
}

/// A request's error with what caused it (`error sending request: dns
/// error: failed to lookup address`): reqwest's own text says only the first.
fn causes(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}
