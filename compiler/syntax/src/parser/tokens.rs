//! Tokens: strings (quoted, raw, multi-line), numbers, keywords and bare
//! identifiers. A second `impl` block of the parser, split out so each part
//! reads in one sitting.

use std::borrow::Cow;

use sovereign_diagnostics::codes;

use super::{LabelMut as _, Parser, Token};
use crate::ast::{LiteralKind, Number, NumberForm};
use crate::chars::{RESERVED_IDENTIFIERS, is_disallowed, is_identifier_char, is_newline, is_unicode_space};
use crate::number;
use crate::strings;

impl<'a> Parser<'a> {
    // ------------------------------------------------------------ tokens

    /// A string, number or keyword at the cursor; `None` (with a diagnostic)
    /// when something else is there.
    pub(super) fn token(&mut self) -> Option<Token<'a>> {
        let start = self.pos;
        let Some(first) = self.peek() else {
            self.error(codes::INVALID_SYNTAX, start, start, "expected a name or value, found the end of the file");
            return None;
        };
        match first {
            b'"' => Some(self.quoted_string()),
            b'#' if matches!(self.peek_at(1), Some(b'#' | b'"')) => Some(self.raw_string()),
            b'#' => self.keyword(),
            _ => {
                let c = self.peek_char()?;
                if is_identifier_char(c) {
                    return self.bare();
                }
                if is_disallowed(c) {
                    self.check_disallowed_at(start, c);
                } else if is_newline(c) || is_unicode_space(c) {
                    self.error(codes::INVALID_SYNTAX, start, start, "expected a name or value here");
                } else {
                    let hint = match c {
                        '[' | ']' => "KDL has no lists: give each item as its own argument, or quote the text",
                        '=' => "a property needs a name before `=`",
                        _ => "quote the text if it is meant as a string",
                    };
                    self.error(codes::INVALID_SYNTAX, start, start + c.len_utf8(), format!("unexpected `{c}`")).help =
                        Some(hint.into());
                }
                None
            }
        }
    }

    pub(super) fn keyword(&mut self) -> Option<Token<'a>> {
        let start = self.pos;
        self.pos += 1;
        while let Some(c) = self.peek_char() {
            if !is_identifier_char(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        let word = &self.src[start + 1..self.pos];
        let span = self.span(start, self.pos);
        let kind = match word {
            "true" => LiteralKind::Bool(true),
            "false" => LiteralKind::Bool(false),
            "null" => LiteralKind::Null,
            "inf" => LiteralKind::Number(Number { raw: &self.src[start..self.pos], form: NumberForm::Inf }),
            "-inf" => LiteralKind::Number(Number { raw: &self.src[start..self.pos], form: NumberForm::NegInf }),
            "nan" => LiteralKind::Number(Number { raw: &self.src[start..self.pos], form: NumberForm::NaN }),
            _ => {
                self.error(
                    codes::INVALID_SYNTAX,
                    start,
                    self.pos.max(start + 1),
                    format!("`#{word}` is not a keyword"),
                )
                .help = Some(
                    "the keywords are #true, #false, #null, #inf, #-inf and #nan; quote the text to make it a string"
                        .into(),
                );
                return None;
            }
        };
        Some(Token { kind, span, is_string: false })
    }

    pub(super) fn bare(&mut self) -> Option<Token<'a>> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b < 0x80 {
                if !is_identifier_char(b as char) {
                    break;
                }
                self.pos += 1;
            } else {
                let c = self.peek_char().unwrap_or('\u{FFFD}');
                if !is_identifier_char(c) {
                    break;
                }
                self.pos += c.len_utf8();
            }
        }
        let text = &self.src[start..self.pos];
        let span = self.span(start, self.pos);
        let bytes = text.as_bytes();
        let after_sign = if matches!(bytes[0], b'+' | b'-') { &bytes[1..] } else { bytes };
        let starts_numeric = after_sign.first().is_some_and(u8::is_ascii_digit);
        let dot_digit = after_sign.first() == Some(&b'.') && after_sign.get(1).is_some_and(u8::is_ascii_digit);
        if starts_numeric {
            return match number::classify(text) {
                Ok(form) => {
                    Some(Token { kind: LiteralKind::Number(Number { raw: text, form }), span, is_string: false })
                }
                Err(reason) => {
                    self.error(
                        codes::INVALID_NUMBER,
                        start,
                        self.pos,
                        format!("`{text}` is not a valid number: {reason}"),
                    )
                    .help = Some("fix the number, or quote it to make it a string".into());
                    None
                }
            };
        }
        if dot_digit {
            self.error(
                codes::INVALID_NUMBER,
                start,
                self.pos,
                format!("`{text}` is not a valid number: a number needs a digit before the decimal point"),
            )
            .help = Some("write 0.5 rather than .5, or quote it to make it a string".into());
            return None;
        }
        if RESERVED_IDENTIFIERS.contains(&text) {
            let kind = match text {
                "true" => LiteralKind::Bool(true),
                "false" => LiteralKind::Bool(false),
                "null" => LiteralKind::Null,
                "inf" => LiteralKind::Number(Number { raw: text, form: NumberForm::Inf }),
                "-inf" => LiteralKind::Number(Number { raw: text, form: NumberForm::NegInf }),
                _ => LiteralKind::Number(Number { raw: text, form: NumberForm::NaN }),
            };
            let diagnostic = self.error(
                codes::BARE_KEYWORD,
                start,
                self.pos,
                format!("`{text}` must be written `#{text}` in KDL 2.0"),
            );
            diagnostic.help = Some(format!("write #{text} for the keyword, or \"{text}\" for the string"));
            let fix_span = diagnostic.primary.span;
            diagnostic.fixes.push(sovereign_diagnostics::Fix {
                title: format!("write #{text}"),
                span: fix_span,
                replacement: format!("#{text}"),
            });
            return Some(Token { kind, span, is_string: false });
        }
        Some(Token { kind: LiteralKind::String(Cow::Borrowed(text)), span, is_string: true })
    }

    pub(super) fn quoted_string(&mut self) -> Token<'a> {
        let start = self.pos;
        if self.peek_at(1) == Some(b'"') && self.peek_at(2) == Some(b'"') {
            return self.multiline_quoted();
        }
        self.pos += 1;
        let body_start = self.pos;
        let mut needs_processing = false;
        let body_end;
        loop {
            match self.peek() {
                Some(b'"') => {
                    body_end = self.pos;
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    needs_processing = true;
                    self.pos += 1;
                    match self.peek_char() {
                        Some(c) if is_unicode_space(c) || is_newline(c) => {
                            while let Some(c) = self.peek_char() {
                                if !(is_unicode_space(c) || is_newline(c)) {
                                    break;
                                }
                                self.pos += c.len_utf8();
                            }
                        }
                        Some(c) => self.pos += c.len_utf8(),
                        None => {}
                    }
                }
                None => {
                    body_end = self.pos;
                    self.unterminated_string(start);
                    break;
                }
                Some(b'\n' | b'\r' | 0x0B | 0x0C) => {
                    body_end = self.pos;
                    self.unterminated_string(start);
                    break;
                }
                Some(b) if b < 0x20 && b != b'\t' || b == 0x7F => {
                    needs_processing = true;
                    self.pos += 1;
                }
                Some(b) if b >= 0x80 => {
                    let c = self.peek_char().unwrap_or('\u{FFFD}');
                    if is_newline(c) {
                        body_end = self.pos;
                        self.unterminated_string(start);
                        break;
                    }
                    needs_processing |= is_disallowed(c);
                    self.pos += c.len_utf8();
                }
                Some(_) => self.pos += 1,
            }
        }
        let body = &self.src[body_start..body_end];
        let text = if needs_processing {
            let mut errors = Vec::new();
            let text = strings::unescape(body, &mut errors);
            self.body_errors(body_start, errors);
            Cow::Owned(text)
        } else {
            Cow::Borrowed(body)
        };
        self.string_token(start, text)
    }

    pub(super) fn unterminated_string(&mut self, start: usize) {
        self.error(codes::UNTERMINATED_STRING, start, self.pos, "string is not closed before the end of the line")
            .help = Some(
            "close it with `\"`; for text over several lines use a multi-line string: \"\"\" on its own line".into(),
        );
    }

    pub(super) fn multiline_quoted(&mut self) -> Token<'a> {
        let start = self.pos;
        self.pos += 3;
        let opened_on_own_line = self.eat_newline();
        let body_start = self.pos;
        let body_end;
        loop {
            match self.peek() {
                None => {
                    body_end = self.pos;
                    self.error(codes::UNTERMINATED_STRING, start, start + 3, "multi-line string is never closed")
                        .with_primary_label_mut("opened here")
                        .help = Some("close it with `\"\"\"` on its own line".into());
                    break;
                }
                Some(b'"') if self.peek_at(1) == Some(b'"') && self.peek_at(2) == Some(b'"') => {
                    body_end = self.pos;
                    self.pos += 3;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek_char() {
                        self.pos += c.len_utf8();
                    }
                }
                Some(b) if b < 0x80 => self.pos += 1,
                Some(_) => self.pos += self.peek_char().map_or(1, char::len_utf8),
            }
        }
        let body = &self.src[body_start..body_end];
        if !opened_on_own_line {
            self.multiline_needs_newline(start);
            let mut errors = Vec::new();
            let text = strings::unescape(body, &mut errors);
            return self.string_token(start, Cow::Owned(text));
        }
        let mut errors = Vec::new();
        let text = strings::multiline(body, false, &mut errors);
        self.body_errors(body_start, errors);
        self.string_token(start, Cow::Owned(text))
    }

    /// A string token from `start` to the cursor.
    fn string_token(&self, start: usize, text: Cow<'a, str>) -> Token<'a> {
        Token { kind: LiteralKind::String(text), span: self.span(start, self.pos), is_string: true }
    }

    pub(super) fn multiline_needs_newline(&mut self, start: usize) {
        self.error(
            codes::INVALID_MULTILINE_STRING,
            start,
            self.pos,
            "a multi-line string must start with a newline right after its opening quotes",
        )
        .help = Some(
            "put the text on the lines between the opening and closing quotes, or use a single-line string \"…\""
                .into(),
        );
    }

    pub(super) fn raw_string(&mut self) -> Token<'a> {
        let start = self.pos;
        let mut hashes = 0;
        while self.peek() == Some(b'#') {
            hashes += 1;
            self.pos += 1;
        }
        if self.peek() != Some(b'"') {
            self.error(
                codes::INVALID_SYNTAX,
                start,
                self.pos,
                "a raw string is `#` signs, then a quoted string, then as many `#` signs",
            )
            .help = Some("write #\"text\"#".into());
            return self.string_token(start, Cow::Borrowed(""));
        }
        let closing_matches = |parser: &Parser<'_>, at: usize| -> bool {
            parser.bytes.get(at + 1..at + 1 + hashes).is_some_and(|h| h.iter().all(|&b| b == b'#'))
        };
        let multiline = self.peek_at(1) == Some(b'"') && self.peek_at(2) == Some(b'"');
        if multiline {
            self.pos += 3;
            let opened_on_own_line = self.eat_newline();
            let body_start = self.pos;
            let body_end;
            loop {
                match self.peek() {
                    None => {
                        body_end = self.pos;
                        self.error(
                            codes::UNTERMINATED_STRING,
                            start,
                            start + hashes + 3,
                            "raw multi-line string is never closed",
                        )
                        .help = Some(format!("close it with `\"\"\"{}` on its own line", "#".repeat(hashes)));
                        break;
                    }
                    Some(b'"')
                        if self.peek_at(1) == Some(b'"')
                            && self.peek_at(2) == Some(b'"')
                            && closing_matches(self, self.pos + 2) =>
                    {
                        body_end = self.pos;
                        self.pos += 3 + hashes;
                        break;
                    }
                    Some(b) if b < 0x80 => self.pos += 1,
                    Some(_) => self.pos += self.peek_char().map_or(1, char::len_utf8),
                }
            }
            let body = &self.src[body_start..body_end];
            if !opened_on_own_line {
                self.multiline_needs_newline(start);
                return self.string_token(start, Cow::Borrowed(body));
            }
            let mut errors = Vec::new();
            let text = strings::multiline(body, true, &mut errors);
            self.body_errors(body_start, errors);
            return self.string_token(start, Cow::Owned(text));
        }
        self.pos += 1;
        let body_start = self.pos;
        let mut disallowed = false;
        let body_end;
        loop {
            match self.peek() {
                None => {
                    body_end = self.pos;
                    self.unterminated_string(start);
                    break;
                }
                Some(b'"') if closing_matches(self, self.pos) => {
                    body_end = self.pos;
                    self.pos += 1 + hashes;
                    break;
                }
                Some(_) if self.at_newline() => {
                    body_end = self.pos;
                    self.unterminated_string(start);
                    break;
                }
                Some(b) if b < 0x20 && b != b'\t' || b == 0x7F => {
                    disallowed = true;
                    self.pos += 1;
                }
                Some(b) if b < 0x80 => self.pos += 1,
                Some(_) => {
                    let c = self.peek_char().unwrap_or('\u{FFFD}');
                    disallowed |= is_disallowed(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        if disallowed {
            let body = &self.src[body_start..body_end];
            for (at, c) in body.char_indices() {
                self.check_disallowed_at(body_start + at, c);
            }
        }
        self.string_token(start, Cow::Borrowed(&self.src[body_start..body_end]))
    }
}
