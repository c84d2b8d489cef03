//! A fault-injecting HTTP proxy in front of any Kubernetes API server
//! reachable over plain HTTP on loopback: the double, or a real cluster
//! through `kubectl proxy` (which holds the credentials and the TLS). The
//! faults and the latency are the double's ([`Faults`]): 500, 503, 429,
//! 409, resets before and after the upstream answered, slow and hung
//! requests. What it does not do: TLS, watches, upgrades.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::api::Request;
use crate::server::{self, Faults, Shared};

pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr, faults: Faults, latency: Duration) -> Result<FaultProxy, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot listen: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared::new(faults, latency));
        let answer: Arc<server::Answer> = Arc::new(move |request: &Request| forward(upstream, request));
        {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || server::serve(listener, shared, answer));
        }
        Ok(FaultProxy { address, shared })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig whose current context is this proxy.
    pub fn kubeconfig(&self, context: &str) -> String {
        crate::kubeconfig(&self.url(), context)
    }

    pub fn faults_injected(&self) -> u64 {
        self.shared.counters.faults.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.shared.counters.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.address);
    }
}

/// Hop-by-hop headers, and those the proxy sets itself.
fn passed(name: &str) -> bool {
    !["connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te"]
        .contains(&name.to_ascii_lowercase().as_str())
}

/// The request sent upstream on a connection of its own, and its response
/// re-framed with a Content-Length; `None` when the upstream failed.
pub(crate) fn forward(upstream: SocketAddr, request: &Request) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in request.headers.iter().filter(|(name, _)| passed(name)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", request.body.len()));
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(&request.body).ok()?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).ok()?;
    let mut headers = Vec::new();
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            _ => {}
        }
        if passed(name) {
            headers.push(line.to_owned());
        }
    }
    let mut body = Vec::new();
    // A HEAD answer's Content-Length is the GET's: no body follows it.
    let bodiless =
        request.method == "HEAD" || status.split(' ').nth(1).is_some_and(|code| code == "204" || code == "304");
    if bodiless {
    } else if chunked {
        body = server::read_chunked(&mut reader)?;
    } else if let Some(length) = length {
        body.resize(length.min(256 << 20), 0);
        reader.read_exact(&mut body).ok()?;
    } else {
        reader.read_to_end(&mut body).ok()?;
    }
    let mut out = status.trim_end().to_owned();
    out.push_str("\r\n");
    for header in headers {
        out.push_str(&header);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Some(bytes)
}
