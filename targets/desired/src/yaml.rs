//! YAML from a body's compact JSON, in one pass over the text.
//!
//! Why not serde-saphyr here: it was measured at about 50 MB/s per core,
//! half of a build (docs/benchmarks.md). This writer only has to handle
//! what JSON can say, so it can be small and conservative:
//!
//! - a string is written plain only when no YAML reader could take it for
//!   anything else: it starts with a letter or `/`, holds only letters,
//!   digits and `. _ / -` (so no `: `, `#`, quotes, spaces or flow
//!   characters), and is not one of YAML 1.1's booleans or nulls (`yes`,
//!   `on`, `n`, `null`, …: Go's and PyYAML's readers still apply 1.1);
//! - a string with line breaks and nothing else unusual is a literal block
//!   (`|` or `|-`), as a person would write a config file in a ConfigMap;
//! - every other string is double-quoted, escaping what YAML cannot hold
//!   raw (controls, DEL, C1, U+2028/2029, U+FEFF, U+FFFE/FFFF);
//! - numbers, booleans and null are JSON's words, which YAML 1.1 and 1.2
//!   read the same, but for exponents: `1e300` becomes `1.0e+300`, the
//!   form YAML 1.1 needs for a float.
//!
//! Layout follows `kubectl get -o yaml`: two spaces per level, a sequence
//! at its key's indentation. The tests read the output back with
//! serde-saphyr and compare it with the JSON; `kubernetes-validate` reads
//! every example with PyYAML.

use std::fmt::Write as _;

/// Appends `json` (one compact JSON value, as serde_json writes it) to
/// `out` as a YAML document. Err only for text that is not such JSON.
pub fn append_document(json: &str, out: &mut String) -> Result<(), String> {
    let mut reader = Reader { bytes: json.as_bytes(), at: 0, text: json };
    match reader.peek() {
        Some(b'{') if !reader.is_empty_container() => reader.object(out, 0, false)?,
        Some(b'[') if !reader.is_empty_container() => reader.array(out, 0, false)?,
        _ => {
            reader.scalar(out, 0)?;
            out.push('\n');
        }
    }
    if reader.at == json.len() { Ok(()) } else { Err(reader.error("text after the value")) }
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> String {
        format!("not a body's JSON at byte {}: {what}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", char::from(byte))))
        }
    }

    /// `{}` or `[]` at the cursor.
    fn is_empty_container(&self) -> bool {
        matches!(self.bytes.get(self.at..self.at + 2), Some(b"{}" | b"[]"))
    }

    /// An object whose first line continues the current one when `inline`
    /// (after `- `), else starts at `indent` on a line of its own.
    fn object(&mut self, out: &mut String, indent: usize, inline: bool) -> Result<(), String> {
        self.expect(b'{')?;
        let mut first = true;
        loop {
            if !(first && inline) {
                pad(out, indent);
            }
            first = false;
            let key = self.string()?;
            write_string(out, &key, indent, true);
            self.expect(b':')?;
            self.value_after_key(out, indent)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn value_after_key(&mut self, out: &mut String, indent: usize) -> Result<(), String> {
        match self.peek() {
            Some(b'{') if !self.is_empty_container() => {
                out.push_str(":\n");
                self.object(out, indent + 2, false)
            }
            Some(b'[') if !self.is_empty_container() => {
                out.push_str(":\n");
                self.array(out, indent, false)
            }
            _ => {
                out.push_str(": ");
                self.scalar(out, indent + 2)?;
                out.push('\n');
                Ok(())
            }
        }
    }

    fn array(&mut self, out: &mut String, indent: usize, inline: bool) -> Result<(), String> {
        self.expect(b'[')?;
        let mut first = true;
        loop {
            if !(first && inline) {
                pad(out, indent);
            }
            first = false;
            match self.peek() {
                Some(b'{') if !self.is_empty_container() => {
                    out.push_str("- ");
                    self.object(out, indent + 2, true)?;
                }
                Some(b'[') if !self.is_empty_container() => {
                    out.push_str("- ");
                    self.array(out, indent + 2, true)?;
                }
                _ => {
                    out.push_str("- ");
                    self.scalar(out, indent + 2)?;
                    out.push('\n');
                }
            }
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// A string, number, boolean, null, `{}` or `[]`; `indent` is where a
    /// block scalar's lines go.
    fn scalar(&mut self, out: &mut String, indent: usize) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => {
                let text = self.string()?;
                write_string(out, &text, indent, false);
                Ok(())
            }
            Some(b'{' | b'[') if self.is_empty_container() => {
                out.push_str(&self.text[self.at..self.at + 2]);
                self.at += 2;
                Ok(())
            }
            Some(b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
                let start = self.at;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b':') {
                        break;
                    }
                    self.at += 1;
                }
                let word = &self.text[start..self.at];
                let is_word = matches!(word, "true" | "false" | "null");
                let is_number = word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    && word.bytes().any(|b| b.is_ascii_digit());
                if !(is_word || is_number) {
                    return Err(self.error("expected a value"));
                }
                // YAML 1.1 reads a float only with a `.` and a signed
                // exponent (PyYAML takes `1e300` for a string): `1.0e+300`.
                match word.find(['e', 'E']) {
                    Some(at) if is_number => {
                        let (mantissa, exponent) = (&word[..at], &word[at + 1..]);
                        out.push_str(mantissa);
                        if !mantissa.contains('.') {
                            out.push_str(".0");
                        }
                        out.push('e');
                        if !exponent.starts_with(['+', '-']) {
                            out.push('+');
                        }
                        out.push_str(exponent);
                    }
                    _ => out.push_str(word),
                }
                Ok(())
            }
            _ => Err(self.error("expected a value")),
        }
    }

    /// A JSON string at the cursor, unescaped (borrowed when it has no escapes).
    fn string(&mut self) -> Result<std::borrow::Cow<'a, str>, String> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            // The next quote or backslash, a word at a time (strings are most of a body).
            let Some(offset) = self.bytes.get(self.at..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) else {
                self.at = self.bytes.len();
                return Err(self.error("unterminated string"));
            };
            self.at += offset;
            if self.bytes[self.at] == b'"' {
                break;
            }
            escaped = true;
            self.at += 2;
        }
        let raw = self.text.get(start..self.at).ok_or_else(|| self.error("cut inside a character"))?;
        self.at += 1;
        if !escaped {
            return Ok(std::borrow::Cow::Borrowed(raw));
        }
        let quoted = &self.text[start - 1..self.at];
        serde_json::from_str::<String>(quoted).map(std::borrow::Cow::Owned).map_err(|e| self.error(&e.to_string()))
    }
}

fn pad(out: &mut String, indent: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = indent;
    while left > 0 {
        let step = left.min(SPACES.len());
        out.push_str(&SPACES[..step]);
        left -= step;
    }
}

/// YAML 1.1's booleans and nulls, lowercase: a plain scalar that is one of
/// these (in any case) is not a string to a 1.1 reader.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Whether `text` reads back as the same string when written plain.
fn is_plain(text: &str) -> bool {
    let Some(first) = text.bytes().next() else { return false };
    (first.is_ascii_alphabetic() || first == b'/')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        && (text.len() > 5 || !RESERVED.iter().any(|word| text.eq_ignore_ascii_case(word)))
}

/// Whether a character must be escaped in a double-quoted scalar.
fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// Whether a string with line breaks can be a literal block: every line
/// holds only characters that need no escape, no line ends in a space (a
/// reader keeps them, but editors and diffs lose them), the first line does
/// not start with a space (that would need an indentation indicator), and
/// it ends in at most one line break.
fn is_block(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\n'])
        && !text.ends_with("\n\n")
        && !text.chars().any(|c| c != '\n' && needs_escape(c))
        && !text.split('\n').any(|line| line.ends_with([' ', '\t']))
}

fn write_string(out: &mut String, text: &str, indent: usize, key: bool) {
    if is_plain(text) {
        out.push_str(text);
    } else if !key && is_block(text) {
        out.push_str(if text.ends_with('\n') { "|" } else { "|-" });
        for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                pad(out, indent);
                out.push_str(line);
            }
        }
    } else {
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn yaml(value: &Value) -> String {
        let mut out = String::new();
        append_document(&serde_json::to_string(value).unwrap(), &mut out).unwrap();
        out
    }

    /// Read back by serde-saphyr, the value is the same.
    fn round_trips(value: &Value) {
        let text = yaml(value);
        let back: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, value, "{text}");
    }

    #[test]
    fn writes_objects_and_sequences_as_kubectl_does() {
        let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "chat", "labels": {}},
            "spec": {"ports": [{"name": "http", "port": 8000}], "selector": {"app": "x"}, "empty": []}});
        let mut out = String::new();
        append_document(r#"{"kind":"Service","spec":{"ports":[{"name":"http","port":8000},{"port":9}],"args":["a","--b"],"e":[],"m":{}}}"#, &mut out).unwrap();
        assert_eq!(
            out,
            "kind: Service\nspec:\n  ports:\n  - name: http\n    port: 8000\n  - port: 9\n  args:\n  - a\n  - \"--b\"\n  e: []\n  m: {}\n"
        );
        round_trips(&body);
    }

    #[test]
    fn quotes_every_string_a_reader_could_take_for_something_else() {
        let tricky = [
            "",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "False",
            "null",
            "~",
            "0755",
            "1e3",
            "2026-01-01",
            "0x1F",
            ".inf",
            "-",
            "- a",
            "a: b",
            "a #b",
            "#x",
            "*x",
            "&x",
            "!x",
            "@x",
            "`x",
            "%x",
            "[a]",
            "{a}",
            "a,b",
            "'a'",
            "\"a\"",
            " a",
            "a ",
            "1:20",
            "+1",
            "-1",
            "3.5",
            "a\tb",
            "é",
            "\u{7f}",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "x\u{0}y",
            "back\\slash",
            "| a",
            "> a",
            "?",
            ": a",
            "0 2 * * *",
            "Authorization: x",
        ];
        for text in tricky {
            round_trips(&json!({ text: text, "list": [text] }));
        }
        for plain in ["vllm", "nvidia.com/mig-3g.40gb", "/health", "app.kubernetes.io/managed-by", "RuntimeDefault"] {
            assert_eq!(yaml(&json!({ "k": plain })), format!("k: {plain}\n"));
        }
    }

    #[test]
    fn writes_text_with_line_breaks_as_a_literal_block() {
        let config = "version: v1\nmig-configs:\n  a:\n  - devices: [0]\n";
        let out = yaml(&json!({"data": {"config.yaml": config}}));
        assert_eq!(out, "data:\n  config.yaml: |\n    version: v1\n    mig-configs:\n      a:\n      - devices: [0]\n");
        for text in [config, "a\nb", "a\n\nb\n", " lead\nx", "trail \nx", "a\n\n", "a\r\nb", "\n", "x\n\u{1}"] {
            round_trips(&json!({ "k": text, "s": [text] }));
        }
    }

    #[test]
    fn numbers_booleans_and_null_keep_their_types() {
        round_trips(&json!({"a": 1, "b": -2.5, "c": 1e300, "d": true, "e": false, "f": null, "g": [0, 1.0]}));
        // The float forms YAML 1.1 readers (PyYAML, Go's yaml.v2) take for floats.
        assert_eq!(yaml(&json!({"c": 1e300, "d": 1.5e-7})), "c: 1.0e+300\nd: 1.5e-7\n");
        round_trips(&json!([[1, [2]], {"x": [[]]}, "s"]));
        round_trips(&json!("top"));
    }

    #[test]
    fn random_strings_round_trip() {
        // Strings drawn from the characters YAML gives meaning to, with a
        // fixed-seed generator: every failure reproduces.
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '9', ' ', '\n', '\t', '\r', ':', '#', '-', '?', '|', '>', '\'', '"', '\\', '[', ']', '{',
            '}', ',', '&', '*', '!', '%', '@', '`', '.', '/', '_', '~', '+', '=', 'é', '\u{85}', '\u{2028}',
            '\u{feff}', '\0',
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            usize::try_from(seed >> 33).unwrap_or(0) % bound
        };
        for _ in 0..3000 {
            let len = next(12);
            let text: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            round_trips(&json!({ text.clone(): text.clone(), "nested": { "list": [text.clone(), { "k": text }] } }));
        }
    }

    #[test]
    fn refuses_text_that_is_not_json() {
        for bad in ["{", "{\"a\"}", "[1,", "\"x", "{\"a\":tru}", "1 2"] {
            assert!(append_document(bad, &mut String::new()).is_err(), "{bad}");
        }
    }
}
