//! `sovereign lsp` under malformed JSON-RPC: every bad frame is answered
//! with a JSON-RPC error and the server keeps serving; the exit code
//! follows the protocol (`exit` without `shutdown` is 1).

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};

/// `sovereign lsp ARGS` with pipes for its standard input and output.
fn server(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sovereign"))
        .arg("lsp")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends each batch of frames after the server answered the id that ends
/// the previous one (as an editor would), then collects everything it wrote.
fn session(batches: &[(Vec<u8>, Option<i64>)]) -> (Option<i32>, Vec<serde_json::Value>) {
    let mut child = server(&[]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut messages = Vec::new();
    for (input, wait_for) in batches {
        stdin.write_all(input).unwrap();
        stdin.flush().unwrap();
        while let Some(id) = wait_for {
            let message = read_message(&mut stdout).expect("the server answers");
            let done = message["id"] == *id;
            messages.push(message);
            if done {
                break;
            }
        }
    }
    drop(stdin);
    while let Some(message) = read_message(&mut stdout) {
        messages.push(message);
    }
    (child.wait().unwrap().code(), messages)
}

fn read_message(reader: &mut impl BufRead) -> Option<serde_json::Value> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).expect("every frame the server writes is JSON"))
}

const INITIALIZE: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#;
const SHUTDOWN: &[u8] = br#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#;
const EXIT: &[u8] = br#"{"jsonrpc":"2.0","method":"exit"}"#;

#[test]
fn malformed_messages_get_errors_and_the_server_keeps_serving() {
    let mut input = Vec::new();
    for bad in [&b"{not json"[..], b"[1, 2]", br#"{"jsonrpc":"1.0","id":5,"method":"x"}"#, b"\xff\xfe", b""] {
        input.extend(frame(bad));
    }
    input.extend(b"Content-Length: twelve\r\n\r\n");
    input.extend(b"X-Nothing: 1\r\n\r\n");
    input.extend(frame(INITIALIZE));
    let (code, messages) = session(&[(input, Some(1)), (frame(SHUTDOWN), Some(2)), (frame(EXIT), None)]);
    assert_eq!(code, Some(0), "{messages:?}");
    let errors: Vec<i64> = messages.iter().filter_map(|m| m["error"]["code"].as_i64()).collect();
    assert_eq!(errors, vec![-32700, -32600, -32600, -32700, -32700, -32700, -32700], "{messages:?}");
    assert!(messages.iter().any(|m| m["id"] == 1 && m["result"]["capabilities"].is_object()), "{messages:?}");
    assert!(messages.iter().any(|m| m["id"] == 5), "the id of an invalid request is answered: {messages:?}");
}

#[test]
fn exit_without_shutdown_is_exit_code_1() {
    assert_eq!(session(&[(frame(INITIALIZE), Some(1)), (frame(EXIT), None)]).0, Some(1));
    let (code, _) = session(&[(frame(INITIALIZE), Some(1)), (frame(SHUTDOWN), Some(2)), (frame(EXIT), None)]);
    assert_eq!(code, Some(0));
}

/// A buffer whose root imports a FIFO and a 2,000-file chain: the server
/// publishes the errors (without blocking on the FIFO or overflowing its
/// stack) and keeps answering.
#[test]
fn hostile_imports_neither_hang_nor_crash_the_server() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fabric.kdl");
    assert!(Command::new("mkfifo").arg(dir.path().join("pipe.kdl")).status().unwrap().success());
    let text = "fabric \"t\"\nimport \"pipe.kdl\"\nimport \"c1.kdl\"\n";
    std::fs::write(&root, text).unwrap();
    for i in 1..2000 {
        std::fs::write(dir.path().join(format!("c{i}.kdl")), format!("import \"c{}.kdl\"\n", i + 1)).unwrap();
    }
    std::fs::write(dir.path().join("c2000.kdl"), "").unwrap();
    let uri = format!("file://{}", root.display());
    let mut child = server(&[]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        while let Some(message) = read_message(&mut reader) {
            if tx.send(message).is_err() {
                break;
            }
        }
    });
    let mut send = |body: serde_json::Value| stdin.write_all(&frame(body.to_string().as_bytes())).unwrap();
    send(serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}));
    // A client waits for the answer to `initialize` before anything else.
    while rx.recv_timeout(Duration::from_secs(30)).expect("initialize is answered")["id"] != 1 {}
    send(serde_json::json!({"jsonrpc":"2.0","method":"initialized","params":{}}));
    send(
        serde_json::json!({"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":uri,"languageId":"kdl","version":1,"text":text}}}),
    );
    send(
        serde_json::json!({"jsonrpc":"2.0","id":3,"method":"textDocument/documentSymbol","params":{"textDocument":{"uri":uri}}}),
    );
    let mut codes = Vec::new();
    let mut answered = false;
    while !(answered && ["SOV3011", "SOV3012"].iter().all(|want| codes.iter().any(|c| c == want))) {
        let message = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no answer within 30 s; so far {codes:?}, answered: {answered}"));
        answered |= message["id"] == 3;
        if message["method"] == "textDocument/publishDiagnostics" {
            // Each file's errors come in a notification of their own (SOV3012 on the chain's file).
            codes.extend(
                message["params"]["diagnostics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["code"].as_str().unwrap_or_default().to_owned()),
            );
        }
    }
    assert!(codes.iter().any(|c| c == "SOV3011"), "{codes:?}");
    send(serde_json::json!({"jsonrpc":"2.0","id":2,"method":"shutdown"}));
    while rx.recv_timeout(Duration::from_secs(30)).expect("shutdown is answered")["id"] != 2 {}
    send(serde_json::json!({"jsonrpc":"2.0","method":"exit"}));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn the_server_takes_a_stdlib_like_check() {
    let bad = Command::new(env!("CARGO_BIN_EXE_sovereign")).args(["lsp", "--stdlib", "no/such/dir"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no/such/dir"));
    let stdlib = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib");
    let mut child = server(&["--stdlib", stdlib]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(&frame(INITIALIZE)).unwrap();
    assert_eq!(read_message(&mut stdout).expect("initialize is answered")["id"], 1);
    stdin.write_all(&frame(SHUTDOWN)).unwrap();
    assert_eq!(read_message(&mut stdout).expect("shutdown is answered")["id"], 2);
    stdin.write_all(&frame(EXIT)).unwrap();
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
