//! Fuzzes the guard in front of the language server with arbitrary bytes
//! from the editor: it must end, pass on only well-formed JSON-RPC
//! messages, and answer everything else with well-formed JSON-RPC errors.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/lsp/framing.rs"]
#[allow(dead_code, unreachable_pub)]
mod framing;

fn frames(bytes: &[u8]) -> Vec<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(async {
        let mut reader = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        while let Some(frame) = framing::read_frame(&mut reader).await.expect("in-memory reads do not fail") {
            match frame {
                framing::Frame::Body(body) => out.push(serde_json::from_slice(&body).expect("a frame we wrote is JSON")),
                framing::Frame::Bad(reason) => panic!("we wrote a bad frame: {reason}"),
            }
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let (server, output) = runtime.block_on(async {
        let output = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let mut server = Vec::new();
        let session = Arc::new(framing::Session::default());
        let input = tokio::io::BufReader::new(data);
        framing::guard_input(input, &mut server, output.clone(), session).await.ok();
        let output = output.lock().await.clone();
        (server, output)
    });
    for message in frames(&server) {
        assert_eq!(message["jsonrpc"], "2.0", "{message}");
        assert!(message.get("method").is_some_and(serde_json::Value::is_string) || message.get("result").is_some() || message.get("error").is_some());
    }
    for error in frames(&output) {
        assert_eq!(error["jsonrpc"], "2.0");
        assert!(error["error"]["code"].is_i64(), "{error}");
    }
});
