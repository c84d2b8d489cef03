//! HTTP/1.1 over loopback TCP, one thread per connection, with the faults
//! a flaky API server or network shows injected before or after a request
//! is handled.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{self, Request, Response};
use crate::store::Store;

/// Faults to inject, each at `rate` of the requests to objects (discovery
/// and `/version` are never faulted, so every client can start).
#[derive(Clone, Debug)]
pub struct Faults {
    /// The share of object requests that fail, 0.0 to 1.0.
    pub rate: f64,
    pub seed: u64,
    /// How long a hung request hangs before its connection is closed.
    pub hang: Duration,
    /// Writes refused as a validating admission webhook refuses them
    /// (403 Forbidden), every time: not a transient fault but a policy.
    pub denials: Vec<Denial>,
    /// Whether writes may fail with 409 Conflict, as an API server answers
    /// a write on a stale resourceVersion; off in front of a target that
    /// has no transient conflict (a registry: its 409 is final).
    pub conflicts: bool,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults { rate: 0.0, seed: 1, hang: Duration::from_secs(3), denials: Vec::new(), conflicts: true }
    }
}

/// Writes (any method but GET) whose path contains `path` are denied with
/// `message`, as `admission webhook "<webhook>" denied the request: …`.
#[derive(Clone, Debug)]
pub struct Denial {
    pub path: String,
    pub webhook: String,
    pub message: String,
}

/// What the double did, for tests to assert on.
#[derive(Default, Debug)]
pub struct Counters {
    pub requests: AtomicU64,
    pub faults: AtomicU64,
    /// Writes that were committed and whose answer was then lost.
    pub lost_answers: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Internal,
    Unavailable,
    TooMany,
    Reset,
    CommitThenReset,
    Slow,
    Hang,
    Conflict,
}

/// The fault machinery and the counters of one listener (the double's,
/// or a [`crate::proxy::FaultProxy`]'s).
pub struct Shared {
    pub faults: Mutex<Faults>,
    pub latency: Mutex<Duration>,
    pub counters: Counters,
    pub stop: AtomicBool,
    random: AtomicU64,
}

impl Shared {
    pub fn new(faults: Faults, latency: Duration) -> Shared {
        let seed = faults.seed.max(1);
        Shared {
            faults: Mutex::new(faults),
            latency: Mutex::new(latency),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            random: AtomicU64::new(seed),
        }
    }

    /// A xorshift step: deterministic for one seed and one request order.
    fn next_random(&self) -> u64 {
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        x
    }

    fn pick_fault(&self, request: &Request) -> Option<Fault> {
        let (rate, conflicts) = self.faults.lock().map(|faults| (faults.rate, faults.conflicts)).unwrap_or((0.0, true));
        let object = request.path.matches('/').count() >= 4 || request.method != "GET";
        if rate <= 0.0 || !object {
            return None;
        }
        let draw = (self.next_random() % 1_000_000) as f64 / 1_000_000.0;
        if draw >= rate {
            return None;
        }
        let write = request.method != "GET";
        // Writes may also commit and lose their answer, or conflict (the last one).
        const WRITES: [Fault; 8] = [
            Fault::Internal,
            Fault::Unavailable,
            Fault::TooMany,
            Fault::Reset,
            Fault::CommitThenReset,
            Fault::Slow,
            Fault::Hang,
            Fault::Conflict,
        ];
        const READS: [Fault; 6] =
            [Fault::Internal, Fault::Unavailable, Fault::TooMany, Fault::Reset, Fault::Slow, Fault::Hang];
        let faults: &[Fault] = match (write, conflicts) {
            (true, true) => &WRITES,
            (true, false) => &WRITES[..WRITES.len() - 1],
            (false, _) => &READS,
        };
        Some(faults[(self.next_random() % faults.len() as u64) as usize])
    }
}

/// What answers a request: the response's bytes, or `None` when there is
/// no answer to give (an upstream that failed: the client sees a reset).
pub type Answer = dyn Fn(&Request) -> Option<Vec<u8>> + Send + Sync;

pub fn serve(listener: TcpListener, shared: Arc<Shared>, answer: Arc<Answer>) {
    serve_with(listener, shared, answer, 0);
}

/// Serves each connection on a thread of its own, taken from a pool
/// that starts with `spares` idle threads and grows when none is idle. A
/// thread whose connection closed waits for the next one: a burst of new
/// connections (a client opening one per request in flight, as kube-rs
/// does over HTTP/1.1) then costs no thread creation, which a real API
/// server, handing connections to goroutines, does not pay either.
pub fn serve_with(listener: TcpListener, shared: Arc<Shared>, answer: Arc<Answer>, spares: usize) {
    let (sender, receiver) = std::sync::mpsc::channel::<TcpStream>();
    let receiver = Arc::new(Mutex::new(receiver));
    let idle = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spawn = || {
        let (shared, answer) = (Arc::clone(&shared), Arc::clone(&answer));
        let (receiver, counted) = (Arc::clone(&receiver), Arc::clone(&idle));
        // Named, so that a profile tells the double's work from its client's.
        let spawned = std::thread::Builder::new().name("double-connection".into()).spawn(move || {
            loop {
                let next = receiver.lock().ok().and_then(|receiver| receiver.recv().ok());
                let Some(stream) = next else { return };
                connection(stream, &shared, &*answer);
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        if spawned.is_ok() {
            idle.fetch_add(1, Ordering::SeqCst);
        }
        spawned.is_ok()
    };
    for _ in 0..spares {
        if !spawn() {
            break;
        }
    }
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = stream else { continue };
        // Counted out here, not when a thread takes it: the next stream
        // must not be promised to a thread that is already spoken for.
        // Only this loop counts out, and only what it counted in or
        // spawned, so the count never goes below zero.
        if idle.load(Ordering::SeqCst) == 0 && !spawn() {
            // No thread for it: closed, so that the client retries, rather
            // than queued behind connections that may never end.
            drop(stream);
            continue;
        }
        idle.fetch_sub(1, Ordering::SeqCst);
        if sender.send(stream).is_err() {
            break;
        }
    }
}

/// Where the service proxy sends a Service's port: `NAMESPACE/NAME:PORT`
/// (as the proxy path writes it) → a loopback address.
pub type Backends = Arc<Mutex<std::collections::HashMap<String, std::net::SocketAddr>>>;

/// The double's answers: its API over its store, and the service proxy.
pub fn api_answer(store: Arc<Mutex<Store>>, backends: Backends) -> Arc<Answer> {
    Arc::new(move |request: &Request| match service_proxy(request, &backends) {
        Some(answer) => answer,
        None => Some(encode(&api::handle(&store, request))),
    })
}

/// `/api/v1/namespaces/NS/services/NAME:PORT/proxy/REST`: the API server
/// forwards REST (and the query) to one of the Service's endpoints. The
/// double has no pods and no network: a test says which server stands
/// behind a Service's port ([`crate::ApiDouble::set_service_backend`]),
/// and a Service with none answers 503 as one without ready endpoints does.
/// Outside the store's lock, as a real proxy does not hold up the API.
fn service_proxy(request: &Request, backends: &Backends) -> Option<Option<Vec<u8>>> {
    let rest = request.target.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once("/services/")?;
    let (service, rest) = rest.split_once("/proxy")?;
    if namespace.contains('/') || service.contains('/') || !(rest.is_empty() || rest.starts_with(['/', '?'])) {
        return None;
    }
    let key = format!("{namespace}/{service}");
    let backend = backends.lock().ok().and_then(|backends| backends.get(&key).copied());
    let Some(backend) = backend else {
        let name = service.split(':').next().unwrap_or(service);
        // The API server's words (k8s.io/apiserver proxy, ErrorHandler: "no endpoints available for service").
        let message = format!("no endpoints available for service \"{name}\"");
        return Some(Some(error(503, "ServiceUnavailable", &message, None)));
    };
    let mut forwarded = request.clone();
    forwarded.target = if rest.is_empty() { "/".to_owned() } else { rest.to_owned() };
    forwarded.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    Some(crate::proxy::forward(backend, &forwarded))
}

fn connection(stream: TcpStream, shared: &Shared, answer: &Answer) {
    let _ = stream.set_nodelay(true);
    let Ok(reader_stream) = stream.try_clone() else { return };
    let mut reader = BufReader::new(reader_stream);
    let mut writer = stream;
    loop {
        let Some(request) = read_request(&mut reader) else { return };
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let latency = shared.latency.lock().map(|latency| *latency).unwrap_or_default();
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let denial = shared.faults.lock().ok().and_then(|faults| {
            let request = &request.0;
            faults.denials.iter().find(|d| request.method != "GET" && request.path.contains(&d.path)).cloned()
        });
        if let Some(denial) = denial {
            // The API server's words for a webhook's refusal (k8s.io/apiserver admission/plugin/webhook/errors,
            // ToStatusErr); the code is the one the webhook answers, 403 here.
            let message = format!("admission webhook \"{}\" denied the request: {}", denial.webhook, denial.message);
            if writer.write_all(&error(403, "Forbidden", &message, None)).and_then(|()| writer.flush()).is_err()
                || request.1
            {
                return;
            }
            continue;
        }
        let fault = shared.pick_fault(&request.0);
        if fault.is_some() {
            shared.counters.faults.fetch_add(1, Ordering::Relaxed);
        }
        let response = match fault {
            None | Some(Fault::Slow) => {
                if fault.is_some() {
                    std::thread::sleep(Duration::from_millis(300 + shared.next_random() % 700));
                }
                let Some(bytes) = answer(&request.0) else {
                    reset(&writer);
                    return;
                };
                bytes
            }
            Some(Fault::Internal) => error(500, "InternalError", "injected fault: etcdserver: request timed out", None),
            Some(Fault::Unavailable) => error(
                503,
                "ServiceUnavailable",
                "injected fault: the server is currently unable to handle the request",
                None,
            ),
            Some(Fault::TooMany) => {
                error(429, "TooManyRequests", "injected fault: too many requests, please try again later", Some(1))
            }
            Some(Fault::Conflict) => error(
                409,
                "Conflict",
                "injected fault: Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
                None,
            ),
            Some(Fault::Reset) => {
                reset(&writer);
                return;
            }
            Some(Fault::CommitThenReset) => {
                let _ = answer(&request.0);
                shared.counters.lost_answers.fetch_add(1, Ordering::Relaxed);
                reset(&writer);
                return;
            }
            Some(Fault::Hang) => {
                let hang = shared.faults.lock().map(|faults| faults.hang).unwrap_or_default();
                std::thread::sleep(hang);
                reset(&writer);
                return;
            }
        };
        if writer.write_all(&response).and_then(|()| writer.flush()).is_err() || request.1 {
            return;
        }
    }
}

fn error(code: u16, reason: &str, message: &str, retry_after: Option<u64>) -> Vec<u8> {
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    encode(&Response { status: code, body, retry_after })
}

/// Closes the connection with a TCP reset, as a crashed peer or a
/// middlebox does.
fn reset(stream: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// A request, and whether the client asked to close after it.
pub(crate) fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Request, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let (mut length, mut chunked, mut close) = (0usize, false, false);
    let (mut content_type, mut user_agent) = (String::new(), String::new());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        headers.push((name.to_owned(), value.to_owned()));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "content-type" => content_type = value.to_owned(),
            "user-agent" => user_agent = value.to_owned(),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        body = read_chunked(reader)?;
    } else {
        body.resize(length.min(64 << 20), 0);
        reader.read_exact(&mut body).ok()?;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect();
    let path = decode(path);
    Some((Request { method, target, headers, path, query, content_type, user_agent, body }, close))
}

/// A chunked body (RFC 9112 §7.1), de-chunked; `None` when it is broken
/// or a chunk is over 64 MiB.
pub(crate) fn read_chunked<R: BufRead>(reader: &mut R) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok().filter(|&size| size <= 64 << 20)?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (escaped, bytes[index]) {
            (Some(byte), _) => {
                out.push(byte);
                index += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, byte) => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response as the bytes on the wire.
pub fn encode(response: &Response) -> Vec<u8> {
    let body = serde_json::to_vec(&response.body).unwrap_or_default();
    let reason = match response.status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        response.status,
        body.len()
    );
    if let Some(seconds) = response.retry_after {
        head.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}
