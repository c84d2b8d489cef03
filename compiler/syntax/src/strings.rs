//! String bodies: escapes and multi-line dedentation (KDL 2.0 §3.11–3.13).
//!
//! Multi-line strings are processed in the order the spec gives:
//! whitespace escapes are removed first, then lines are dedented by the
//! literal whitespace of the closing line, then the other escapes resolve.

use crate::chars::{is_disallowed, is_newline, is_unicode_space};

/// A problem inside a string body, with byte offsets into the body.
#[derive(Debug)]
pub(crate) struct BodyError {
    pub(crate) kind: BodyErrorKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyErrorKind {
    Escape,
    Disallowed,
    Multiline,
}

/// What the escapes pass should do with whitespace escapes and the others.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EscapeMode {
    /// Resolve every escape (single-line strings).
    All,
    /// Drop whitespace escapes, keep the others verbatim (multi-line, pass 1).
    WhitespaceOnly,
}

fn escape_pass(body: &str, mode: EscapeMode, errors: &mut Vec<BodyError>) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            if is_disallowed(c) {
                errors.push(BodyError {
                    kind: BodyErrorKind::Disallowed,
                    start: at,
                    end: at + c.len_utf8(),
                    message: format!("the code point U+{:04X} may not appear in a KDL document", c as u32),
                });
            }
            out.push(c);
            continue;
        }
        let Some(&(next_at, next)) = chars.peek() else {
            errors.push(BodyError {
                kind: BodyErrorKind::Escape,
                start: at,
                end: at + 1,
                message: "a `\\` at the end of a string escapes nothing".into(),
            });
            break;
        };
        if is_unicode_space(next) || is_newline(next) {
            while chars.peek().is_some_and(|&(_, c)| is_unicode_space(c) || is_newline(c)) {
                chars.next();
            }
            continue;
        }
        chars.next();
        let resolved = match next {
            '"' => '"',
            '\\' => '\\',
            'b' => '\u{08}',
            'f' => '\u{0C}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            's' => ' ',
            'u' => {
                let mut hex = String::new();
                let mut closed = false;
                if chars.peek().is_some_and(|&(_, c)| c == '{') {
                    chars.next();
                    while let Some(&(_, c)) = chars.peek() {
                        chars.next();
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        hex.push(c);
                        if hex.len() > 6 {
                            break;
                        }
                    }
                }
                let end = chars.peek().map_or(body.len(), |&(i, _)| i);
                let value = (closed && !hex.is_empty() && hex.len() <= 6 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                match value {
                    Some(c) => c,
                    None => {
                        errors.push(BodyError {
                            kind: BodyErrorKind::Escape,
                            start: at,
                            end,
                            message: "a unicode escape is `\\u{` and 1 to 6 hex digits of a scalar value (not a surrogate, at most 10FFFF), then `}`".into(),
                        });
                        continue;
                    }
                }
            }
            other => {
                errors.push(BodyError {
                    kind: BodyErrorKind::Escape,
                    start: at,
                    end: next_at + other.len_utf8(),
                    message: format!(
                        "`\\{other}` is not an escape; KDL 2.0 knows \\\" \\\\ \\b \\f \\n \\r \\t \\s and \\u{{…}}"
                    ),
                });
                out.push(other);
                continue;
            }
        };
        if mode == EscapeMode::WhitespaceOnly {
            out.push_str(&body[at..next_at + next.len_utf8()]);
            if next == 'u' {
                // Copy the braces and digits verbatim too.
                let end = chars.peek().map_or(body.len(), |&(i, _)| i);
                out.push_str(&body[next_at + 1..end]);
            }
        } else {
            out.push(resolved);
        }
    }
    out
}

/// Resolves the escapes of a single-line string body.
pub(crate) fn unescape(body: &str, errors: &mut Vec<BodyError>) -> String {
    escape_pass(body, EscapeMode::All, errors)
}

/// Splits text into lines at any KDL newline (CRLF counts once).
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if is_newline(c) {
            lines.push(&text[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r' && iter.peek().is_some_and(|&(_, n)| n == '\n') {
                iter.next();
                next += 1;
            }
            start = next;
        }
    }
    lines.push(&text[start..]);
    lines
}

/// Processes a multi-line string body: the text between the newline after
/// the opening `"""` and the closing `"""` (so its last line is the closing
/// line's indentation). `raw` strings have no escapes.
pub(crate) fn multiline(body: &str, raw: bool, errors: &mut Vec<BodyError>) -> String {
    let stage1 = if raw {
        for (at, c) in body.char_indices() {
            if is_disallowed(c) {
                errors.push(BodyError {
                    kind: BodyErrorKind::Disallowed,
                    start: at,
                    end: at + c.len_utf8(),
                    message: format!("the code point U+{:04X} may not appear in a KDL document", c as u32),
                });
            }
        }
        body.to_owned()
    } else {
        escape_pass(body, EscapeMode::WhitespaceOnly, errors)
    };
    let lines = split_lines(&stage1);
    let (prefix, content) = lines.split_last().expect("split_lines returns at least one line");
    let whole = (0, body.len());
    if !prefix.chars().all(is_unicode_space) {
        errors.push(BodyError {
            kind: BodyErrorKind::Multiline,
            start: whole.0,
            end: whole.1,
            message: "the closing `\"\"\"` of a multi-line string must be on its own line, after whitespace only"
                .into(),
        });
        return stage1;
    }
    let mut out = String::with_capacity(stage1.len());
    for (index, line) in content.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        if line.chars().all(is_unicode_space) {
            continue;
        }
        match line.strip_prefix(prefix) {
            Some(rest) => out.push_str(rest),
            None => {
                errors.push(BodyError {
                    kind: BodyErrorKind::Multiline,
                    start: whole.0,
                    end: whole.1,
                    message: format!(
                        "line {} of this multi-line string does not start with the closing line's indentation ({} whitespace characters)",
                        index + 1,
                        prefix.chars().count()
                    ),
                });
                out.push_str(line);
            }
        }
    }
    if raw { out } else { escape_pass(&out, EscapeMode::All, &mut Vec::new()) }
}
