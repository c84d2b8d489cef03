//! The JSON-RPC framing between the editor and the server, guarded.
//!
//! tower-lsp-server ends the session on a message it cannot decode; an
//! editor plugin with a bug, or a hostile peer, must not be able to do
//! that. Every frame from the editor is read here first: a frame whose body
//! is not a JSON-RPC message is answered with a JSON-RPC error (`-32700`
//! parse error, `-32600` invalid request) and not passed on; the server
//! sees only well-formed messages. The protocol's exit code is kept here
//! too: `exit` after `shutdown` is 0, `exit` (or the end of input) without
//! it is 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Mutex;

/// The largest message accepted (an editor sends whole buffers; a spec is at most 1 GiB).
const MAX_BODY: usize = 1 << 30;

/// One frame, or why it is not one.
#[derive(Debug)]
pub(crate) enum Frame {
    Body(Vec<u8>),
    /// A header block without a usable `Content-Length`, or a body too large;
    /// already skipped.
    Bad(String),
}

/// Reads the next frame; `None` at the end of input.
pub(crate) async fn read_frame<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Frame>> {
    let mut length: Option<Result<usize, String>> = None;
    let mut line = Vec::new();
    let mut any_header = false;
    loop {
        line.clear();
        // Header lines are short; a run of bytes without a line break is not a header.
        let n = (&mut *reader).take(8192).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(if any_header { Some(Frame::Bad("the input ended inside a header".into())) } else { None });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if !any_header {
                // Blank lines between frames are tolerated.
                continue;
            }
            break;
        }
        any_header = true;
        if let Some((name, value)) = text.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = Some(value.trim().parse::<usize>().map_err(|_| format!("bad Content-Length `{}`", value.trim())));
        }
    }
    let length = match length {
        None => return Ok(Some(Frame::Bad("a header without Content-Length".into()))),
        Some(Err(reason)) => return Ok(Some(Frame::Bad(reason))),
        Some(Ok(n)) => n,
    };
    if length > MAX_BODY {
        tokio::io::copy(&mut (&mut *reader).take(length as u64), &mut tokio::io::sink()).await?;
        return Ok(Some(Frame::Bad(format!("a message of {length} bytes is larger than 1 GiB"))));
    }
    // Grown as bytes arrive: a header that lies about the length must not
    // make the server allocate a gigabyte up front.
    let mut body = Vec::with_capacity(length.min(1 << 16));
    (&mut *reader).take(length as u64).read_to_end(&mut body).await?;
    if body.len() < length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(Frame::Body(body)))
}

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> std::io::Result<()> {
    writer.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

/// Whether the top-level object of `body` repeats a key: `serde_json::Value`
/// keeps the last, but the server's decoder refuses the message and ends
/// the session, so such a message must not reach it.
fn repeats_a_key(body: &[u8]) -> bool {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut seen = std::collections::BTreeSet::new();
            let mut repeated = false;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                repeated |= !seen.insert(key);
            }
            Ok(repeated)
        }
    }
    struct Check(bool);
    impl<'de> serde::Deserialize<'de> for Check {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(Keys).map(Check)
        }
    }
    serde_json::from_slice::<Check>(body).is_ok_and(|c| c.0)
}

/// Why a body is not a message, as a JSON-RPC error object and the id to answer.
fn validate(body: &[u8]) -> Result<&'static str, (i64, String, Value)> {
    let value: Value = serde_json::from_slice(body).map_err(|e| (-32700, format!("Parse error: {e}"), Value::Null))?;
    let Some(object) = value.as_object() else {
        return Err((-32600, "Invalid Request: a message is a JSON object".into(), Value::Null));
    };
    if repeats_a_key(body) {
        return Err((-32600, "Invalid Request: a key is given twice".into(), Value::Null));
    }
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    // The server's ids are 64-bit integers or strings.
    let id_ok = match object.get("id") {
        None | Some(Value::String(_) | Value::Null) => true,
        Some(Value::Number(n)) => n.as_i64().is_some(),
        Some(_) => false,
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || !id_ok {
        let id = if id_ok { id } else { Value::Null };
        return Err((-32600, "Invalid Request: not a JSON-RPC 2.0 message".into(), id));
    }
    let error_ok = |e: &Value| {
        e.get("code").is_some_and(|c| c.as_i64().is_some()) && e.get("message").is_some_and(Value::is_string)
    };
    match object.get("method") {
        // Only a request (with an id) is a shutdown that counts for the exit code.
        Some(Value::String(method)) if method == "shutdown" && object.contains_key("id") => Ok("shutdown"),
        Some(Value::String(method)) if method == "exit" => Ok("exit"),
        Some(Value::String(_)) => Ok(""),
        Some(_) => Err((-32600, "Invalid Request: `method` must be a string".into(), id)),
        // A response to a request of the server.
        None => match (object.get("result"), object.get("error")) {
            (Some(_), None) => Ok(""),
            (None, Some(e)) if error_ok(e) => Ok(""),
            _ => Err((-32600, "Invalid Request: a response has a result or a well-formed error".into(), id)),
        },
    }
}

/// What the session ended with.
#[derive(Default)]
pub(crate) struct Session {
    pub(crate) shutdown: AtomicBool,
}

/// Copies frames from `input` to `server`, answering bad ones on `output`.
pub(crate) async fn guard_input<R, S, W>(
    mut input: R,
    mut server: S,
    output: Arc<Mutex<W>>,
    session: Arc<Session>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    S: AsyncWrite + Unpin,
    W: AsyncWrite + Unpin,
{
    while let Some(frame) = read_frame(&mut input).await? {
        let (code, message, id) = match frame {
            Frame::Body(body) => match validate(&body) {
                Ok(method) => {
                    if method == "shutdown" {
                        session.shutdown.store(true, Ordering::SeqCst);
                    }
                    write_frame(&mut server, &body).await?;
                    if method == "exit" {
                        return Ok(());
                    }
                    continue;
                }
                Err(error) => error,
            },
            Frame::Bad(reason) => (-32700, format!("Parse error: {reason}"), Value::Null),
        };
        let error = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } });
        write_frame(&mut *output.lock().await, error.to_string().as_bytes()).await?;
    }
    Ok(())
}

/// Copies the server's frames to `output`, a whole frame at a time.
pub(crate) async fn forward_output<R, W>(mut server: R, output: Arc<Mutex<W>>) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while let Some(frame) = read_frame(&mut server).await? {
        if let Frame::Body(body) = frame {
            write_frame(&mut *output.lock().await, &body).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_validated() {
        assert_eq!(validate(br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#).ok(), Some("shutdown"));
        assert_eq!(validate(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).ok(), Some(""));
        assert_eq!(validate(b"{not json").err().map(|e| e.0), Some(-32700));
        assert_eq!(validate(b"[1,2]").err().map(|e| e.0), Some(-32600));
        assert_eq!(validate(br#"{"jsonrpc":"1.0","method":"x"}"#).err().map(|e| e.0), Some(-32600));
        assert_eq!(validate(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).err().map(|e| e.0), Some(-32600));
        assert_eq!(validate(br#"{"jsonrpc":"2.0","id":7,"method":3}"#).err().map(|e| e.2), Some(json!(7)));
        // What the server's own decoder would refuse, ending the session.
        for bad in [
            &br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#[..],
            br#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            assert_eq!(validate(bad).err().map(|e| e.0), Some(-32600), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(validate(br#"{"jsonrpc":"2.0","method":"shutdown"}"#).ok(), Some(""));
    }

    #[tokio::test]
    async fn frames_survive_garbage_between_them() {
        let input: &[u8] = b"Content-Length: 2\r\n\r\n{}Content-Length: x\r\n\r\nContent-Length: 5\r\n\r\nhello";
        let mut reader = tokio::io::BufReader::new(input);
        assert!(matches!(read_frame(&mut reader).await.unwrap(), Some(Frame::Body(b)) if b == b"{}"));
        assert!(matches!(read_frame(&mut reader).await.unwrap(), Some(Frame::Bad(_))));
        assert!(matches!(read_frame(&mut reader).await.unwrap(), Some(Frame::Body(b)) if b == b"hello"));
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }
}
