//! The recursive-descent KDL 2.0 parser.
//!
//! It works on bytes with ASCII fast paths and decodes UTF-8 only where a
//! non-ASCII character appears. It never gives up: every error becomes a
//! diagnostic, the parser skips the offending token and goes on, so a
//! broken spec still yields a tree and all of its errors. Every loop
//! consumes at least one byte per turn, so it always terminates.

use std::borrow::Cow;

use sovereign_diagnostics::{Code, Diagnostic, FileId, Span, codes};

use crate::ast::{Children, Document, Entry, Ident, Literal, LiteralKind, Node};
use crate::chars::{is_disallowed, is_newline, is_unicode_space};
use crate::strings::{BodyError, BodyErrorKind};

mod tokens;

/// Children blocks nested deeper than this are reported and skipped, so
/// hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// The result of parsing one file: always a document, plus what went wrong.
#[derive(Debug)]
pub struct Parse<'a> {
    pub document: Document<'a>,
    pub diagnostics: Vec<Diagnostic>,
    /// Spans of comments and slashdashed text, in source order, for the formatter.
    pub comments: Vec<Span>,
}

/// Parses a KDL 2.0 document.
#[must_use]
pub fn parse(file: FileId, text: &str) -> Parse<'_> {
    let mut parser = Parser::new(file, text);
    let nodes = parser.nodes(false);
    Parse { document: Document { nodes }, diagnostics: parser.diagnostics, comments: parser.comments }
}

/// What [`parse_each`] leaves after handing over the nodes.
#[derive(Debug)]
pub struct ParseRest {
    pub diagnostics: Vec<Diagnostic>,
    pub comments: Vec<Span>,
}

/// Parses a KDL 2.0 document and hands each top-level node to `sink` as
/// soon as it is complete, so that a caller can lower a large file without
/// the whole tree in memory at once. Same nodes, same diagnostics as [`parse`].
pub fn parse_each<'a>(file: FileId, text: &'a str, mut sink: impl FnMut(Node<'a>)) -> ParseRest {
    let mut parser = Parser::new(file, text);
    parser.nodes_into(false, &mut sink);
    ParseRest { diagnostics: parser.diagnostics, comments: parser.comments }
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    file: FileId,
    diagnostics: Vec<Diagnostic>,
    comments: Vec<Span>,
    depth: usize,
}

/// A string, number or keyword token, before it is known to be a key or a value.
struct Token<'a> {
    kind: LiteralKind<'a>,
    span: Span,
    is_string: bool,
}

impl<'a> Parser<'a> {
    fn new(file: FileId, text: &'a str) -> Self {
        // A byte-order mark is not part of the document.
        let pos = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
        Parser { src: text, bytes: text.as_bytes(), pos, file, diagnostics: Vec::new(), comments: Vec::new(), depth: 0 }
    }

    // ------------------------------------------------------------ helpers

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn peek_char(&self) -> Option<char> {
        let byte = *self.bytes.get(self.pos)?;
        if byte < 0x80 { Some(byte as char) } else { self.src[self.pos..].chars().next() }
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn error(&mut self, code: Code, start: usize, end: usize, message: impl Into<String>) -> &mut Diagnostic {
        let span = self.span(start, end);
        self.diagnostics.push(Diagnostic::new(code, span, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn body_errors(&mut self, offset: usize, errors: Vec<BodyError>) {
        for error in errors {
            let (code, help) = match error.kind {
                BodyErrorKind::Escape => (
                    codes::INVALID_ESCAPE,
                    "KDL 2.0 escapes are \\n \\r \\t \\\\ \\\" \\b \\f \\s and \\u{…}; write \\\\ for a backslash",
                ),
                BodyErrorKind::Disallowed => (
                    codes::DISALLOWED_CHARACTER,
                    "remove it, or write it as an escape such as \\u{202e} if it is meant to be in the string",
                ),
                BodyErrorKind::Multiline => (
                    codes::INVALID_MULTILINE_STRING,
                    "start every line of the string with the closing line's indentation, or move the closing quotes left",
                ),
            };
            let diagnostic = self.error(code, offset + error.start, offset + error.end, error.message);
            if diagnostic.help.is_none() {
                diagnostic.help = Some(help.into());
            }
        }
    }

    fn at_newline(&self) -> bool {
        match self.peek() {
            Some(b'\n' | b'\r' | 0x0B | 0x0C) => true,
            Some(b) if b >= 0x80 => self.peek_char().is_some_and(is_newline),
            _ => false,
        }
    }

    fn eat_newline(&mut self) -> bool {
        match self.peek() {
            Some(b'\r') => {
                self.pos += 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                true
            }
            Some(b'\n' | 0x0B | 0x0C) => {
                self.pos += 1;
                true
            }
            Some(b) if b >= 0x80 => match self.peek_char() {
                Some(c) if is_newline(c) => {
                    self.pos += c.len_utf8();
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Reports a disallowed code point at the cursor, if there is one, and skips it.
    fn check_disallowed_at(&mut self, at: usize, c: char) {
        if is_disallowed(c) {
            let message = if c == '\u{FEFF}' {
                "a byte-order mark (U+FEFF) is allowed only at the very start of a file".to_owned()
            } else {
                format!("the code point U+{:04X} may not appear in a KDL document", c as u32)
            };
            self.error(codes::DISALLOWED_CHARACTER, at, at + c.len_utf8(), message).help =
                Some("delete it; control and bidirectional-override characters can hide what the text says".into());
        }
    }

    // ------------------------------------------------------------ trivia

    /// `ws*`: unicode spaces and block comments. Returns whether any was eaten.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment(),
                Some(b) if b >= 0x80 => match self.peek_char() {
                    Some(c) if is_unicode_space(c) => self.pos += c.len_utf8(),
                    _ => break,
                },
                _ => break,
            }
        }
        self.pos > start
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        let mut depth = 1usize;
        while depth > 0 {
            match self.peek() {
                None => {
                    self.error(codes::UNTERMINATED_COMMENT, start, start + 2, "block comment is never closed")
                        .with_primary_label_mut("opened here")
                        .help = Some("close it with `*/` (block comments nest: every `/*` needs its own `*/`)".into());
                    break;
                }
                Some(b'*') if self.peek_at(1) == Some(b'/') => {
                    depth -= 1;
                    self.pos += 2;
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    depth += 1;
                    self.pos += 2;
                }
                Some(b) if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0B | 0x0C) || b == 0x7F => {
                    self.check_disallowed_at(self.pos, b as char);
                    self.pos += 1;
                }
                Some(b) if b >= 0x80 => {
                    let c = self.peek_char().unwrap_or('\u{FFFD}');
                    self.check_disallowed_at(self.pos, c);
                    self.pos += c.len_utf8();
                }
                Some(_) => self.pos += 1,
            }
        }
        self.comments.push(self.span(start, self.pos));
    }

    /// `// …` up to and including the newline.
    fn line_comment(&mut self) {
        let start = self.pos;
        self.pos += 2;
        loop {
            match self.peek() {
                None => break,
                Some(b'\n' | b'\r' | 0x0B | 0x0C) => break,
                Some(b) if b < 0x20 && b != b'\t' || b == 0x7F => {
                    self.check_disallowed_at(self.pos, b as char);
                    self.pos += 1;
                }
                Some(b) if b >= 0x80 => {
                    let c = self.peek_char().unwrap_or('\u{FFFD}');
                    if is_newline(c) {
                        break;
                    }
                    self.check_disallowed_at(self.pos, c);
                    self.pos += c.len_utf8();
                }
                Some(_) => self.pos += 1,
            }
        }
        self.comments.push(self.span(start, self.pos));
        self.eat_newline();
    }

    /// An escaped line: `\` ws* (comment | newline | eof).
    fn escline(&mut self) {
        let start = self.pos;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'/') && self.peek_at(1) == Some(b'/') {
            self.line_comment();
        } else if !self.eat_newline() && self.peek().is_some() {
            self.error(
                codes::INVALID_SYNTAX,
                start,
                start + 1,
                "a `\\` outside a string continues the line, so only whitespace or a comment may follow it",
            )
            .help = Some("to use a backslash in a name or value, put it in a quoted string: \"a\\\\b\"".into());
        }
    }

    /// `node-space*`. Returns whether any was eaten.
    fn skip_node_space(&mut self) -> bool {
        let start = self.pos;
        loop {
            self.skip_ws();
            if self.peek() == Some(b'\\') {
                self.escline();
            } else {
                break;
            }
        }
        self.pos > start
    }

    /// `line-space*`: node space, newlines and line comments.
    fn skip_line_space(&mut self) {
        loop {
            self.skip_node_space();
            if self.eat_newline() {
                continue;
            }
            if self.peek() == Some(b'/') && self.peek_at(1) == Some(b'/') {
                self.line_comment();
                continue;
            }
            break;
        }
    }

    /// Skips one malformed token so parsing can go on after an error.
    fn skip_bad_token(&mut self) {
        let start = self.pos;
        while let Some(c) = self.peek_char() {
            if self.pos > start && (is_unicode_space(c) || is_newline(c) || matches!(c, ';' | '{' | '}')) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    // ------------------------------------------------------------ structure

    fn nodes(&mut self, nested: bool) -> Vec<Node<'a>> {
        let mut nodes = Vec::new();
        self.nodes_into(nested, &mut |node| nodes.push(node));
        nodes
    }

    fn nodes_into(&mut self, nested: bool, sink: &mut dyn FnMut(Node<'a>)) {
        loop {
            self.skip_line_space();
            match self.peek() {
                None => break,
                Some(b'}') if nested => break,
                Some(b'}') => {
                    self.error(codes::UNBALANCED_BRACE, self.pos, self.pos + 1, "this `}` closes no children block")
                        .help = Some("delete it, or add the `{` it was meant to close".into());
                    self.pos += 1;
                }
                Some(b';') => {
                    self.error(
                        codes::INVALID_SYNTAX,
                        self.pos,
                        self.pos + 1,
                        "a `;` ends a node, but there is no node before it",
                    )
                    .help = Some("delete the extra `;`".into());
                    self.pos += 1;
                }
                Some(b'/') if self.peek_at(1) == Some(b'-') => {
                    let start = self.pos;
                    self.pos += 2;
                    self.skip_line_space();
                    if matches!(self.peek(), None | Some(b'}')) {
                        self.dangling_slashdash(start);
                        continue;
                    }
                    let _ = self.node();
                    self.comments.push(self.span(start, self.pos));
                }
                Some(_) => {
                    if let Some(node) = self.node() {
                        sink(node);
                    }
                }
            }
        }
    }

    fn dangling_slashdash(&mut self, start: usize) {
        self.error(
            codes::DANGLING_SLASHDASH,
            start,
            start + 2,
            "`/-` comments out the next node, argument, property or children block, but nothing follows it",
        )
        .help = Some("delete the `/-`, or put it right before the item to comment out".into());
    }

    fn node(&mut self) -> Option<Node<'a>> {
        let start = self.pos;
        let errors_before = self.diagnostics.len();
        let annotation = if self.peek() == Some(b'(') {
            let annotation = self.annotation();
            self.skip_node_space();
            annotation
        } else {
            None
        };
        let Some(name) = self.token() else {
            self.skip_bad_token();
            self.skip_rest_of_node();
            return None;
        };
        let name = self.ident(name, "a node name");
        let mut node = Node {
            annotation,
            name,
            entries: Vec::new(),
            children: None,
            span: self.span(start, start),
            has_errors: false,
        };
        let mut end = node.name.span.end as usize;
        // Set by any children block, slashdashed or not: entries may not follow one.
        let mut after_block = false;
        loop {
            let had_space = self.skip_node_space();
            match self.peek() {
                None | Some(b'}') => break,
                Some(b';') => {
                    self.pos += 1;
                    break;
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    self.line_comment();
                    break;
                }
                Some(b'/') if self.peek_at(1) == Some(b'-') => {
                    let slash = self.pos;
                    self.pos += 2;
                    self.skip_line_space();
                    match self.peek() {
                        None | Some(b'}' | b';') => self.dangling_slashdash(slash),
                        Some(b'{') => {
                            let _ = self.children();
                            after_block = true;
                        }
                        Some(_) => {
                            if after_block {
                                self.entry_after_children();
                            }
                            let _ = self.entry();
                        }
                    }
                    self.comments.push(self.span(slash, self.pos));
                }
                Some(b'{') => {
                    let children = self.children();
                    after_block = true;
                    if node.children.is_some() {
                        self.error(
                            codes::INVALID_SYNTAX,
                            children.span.start as usize,
                            children.span.end as usize,
                            "a node has at most one children block",
                        )
                        .help = Some("merge the blocks into one, or comment this one out with `/-`".into());
                    } else {
                        end = children.span.end as usize;
                        node.children = Some(children);
                    }
                }
                Some(_) if self.at_newline() => {
                    self.eat_newline();
                    break;
                }
                Some(_) => {
                    if after_block {
                        self.entry_after_children();
                        self.skip_bad_token();
                        continue;
                    }
                    if !had_space {
                        self.error(
                            codes::MISSING_SPACE,
                            self.pos,
                            self.pos + self.peek_char().map_or(1, char::len_utf8),
                            "missing whitespace before this argument or property",
                        )
                        .help = Some("separate entries with a space".into());
                    }
                    if let Some(entry) = self.entry() {
                        end = entry.span.end as usize;
                        node.entries.push(entry);
                    }
                }
            }
        }
        node.span = self.span(start, end);
        node.has_errors = self.diagnostics.len() > errors_before;
        Some(node)
    }

    fn entry_after_children(&mut self) {
        self.error(
            codes::INVALID_SYNTAX,
            self.pos,
            self.pos + self.peek_char().map_or(1, char::len_utf8),
            "arguments and properties must come before the children block, and a node ends after it",
        )
        .help = Some("end the node with a newline or `;` after `}`, or move this entry before the `{`".into());
    }

    /// After a node that could not be parsed: skip to its terminator.
    fn skip_rest_of_node(&mut self) {
        loop {
            self.skip_node_space();
            match self.peek() {
                None | Some(b'}') => return,
                Some(b';') => {
                    self.pos += 1;
                    return;
                }
                Some(b'{') => {
                    let _ = self.children();
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    self.line_comment();
                    return;
                }
                Some(_) if self.at_newline() => {
                    self.eat_newline();
                    return;
                }
                Some(_) => {
                    if self.token().is_none() {
                        self.skip_bad_token();
                    }
                }
            }
        }
    }

    fn children(&mut self) -> Children<'a> {
        let open = self.pos;
        self.pos += 1;
        if self.depth >= MAX_DEPTH {
            self.error(
                codes::UNBALANCED_BRACE,
                open,
                open + 1,
                format!("children blocks are nested more than {MAX_DEPTH} deep"),
            )
            .help = Some("flatten the structure".into());
            self.skip_nested_block();
            return Children { nodes: Vec::new(), span: self.span(open, self.pos) };
        }
        self.depth += 1;
        let nodes = self.nodes(true);
        self.depth -= 1;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            self.error(codes::UNBALANCED_BRACE, open, open + 1, "this children block is never closed")
                .with_primary_label_mut("opened here")
                .help = Some("add the missing `}`".into());
        }
        Children { nodes, span: self.span(open, self.pos) }
    }

    /// Skips a block too deep to parse, counting braces only.
    fn skip_nested_block(&mut self) {
        let mut depth = 1usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
        while !self.src.is_char_boundary(self.pos) {
            self.pos -= 1;
        }
    }

    fn entry(&mut self) -> Option<Entry<'a>> {
        let start = self.pos;
        if self.peek() == Some(b'(') {
            let annotation = self.annotation();
            self.skip_node_space();
            let token = self.value_token_after_annotation(start)?;
            if self.peek() == Some(b'=') {
                self.error(
                    codes::INVALID_TYPE_ANNOTATION,
                    start,
                    self.pos + 1,
                    "a type annotation goes on a property's value, not on its name",
                )
                .help = Some("write key=(type)value".into());
                self.pos += 1;
                self.skip_node_space();
                let _ = self.value();
                return None;
            }
            let value = Literal { annotation, kind: token.kind, span: token.span };
            return Some(Entry { key: None, span: self.span(start, self.pos), value });
        }
        let Some(token) = self.token() else {
            self.skip_bad_token();
            return None;
        };
        let after_token = self.pos;
        let (diagnostics, comments) = (self.diagnostics.len(), self.comments.len());
        self.skip_node_space();
        if self.peek() == Some(b'=') {
            self.pos += 1;
            if !token.is_string {
                self.error(
                    codes::INVALID_SYNTAX,
                    token.span.start as usize,
                    token.span.end as usize,
                    "a property name must be a string",
                )
                .help = Some("quote the name, or remove the `=` to make it an argument".into());
            }
            self.skip_node_space();
            if self.peek() == Some(b'/') && self.peek_at(1) == Some(b'-') {
                self.error(
                    codes::DANGLING_SLASHDASH,
                    self.pos,
                    self.pos + 2,
                    "`/-` cannot comment out only the value of a property",
                )
                .help = Some("comment out the whole property: /-key=value".into());
                self.pos += 2;
                self.skip_node_space();
            }
            let value = self.value()?;
            let key = self.ident(token, "a property name");
            return Some(Entry { span: key.span.cover(value.span), key: Some(key), value });
        }
        // Not a property: rewind the lookahead so trivia is recorded once.
        self.pos = after_token;
        self.diagnostics.truncate(diagnostics);
        self.comments.truncate(comments);
        Some(Entry {
            key: None,
            span: token.span,
            value: Literal { annotation: None, kind: token.kind, span: token.span },
        })
    }

    fn value(&mut self) -> Option<Literal<'a>> {
        let start = self.pos;
        if self.peek() == Some(b'(') {
            let annotation = self.annotation();
            self.skip_node_space();
            let token = self.value_token_after_annotation(start)?;
            return Some(Literal { annotation, kind: token.kind, span: token.span });
        }
        let Some(token) = self.token() else {
            // Skip the malformed value so the node's loop does not see it again.
            if !(self.at_newline() || matches!(self.peek(), None | Some(b';' | b'}'))) {
                self.skip_bad_token();
            }
            return None;
        };
        Some(Literal { annotation: None, kind: token.kind, span: token.span })
    }

    fn value_token_after_annotation(&mut self, start: usize) -> Option<Token<'a>> {
        if self.peek() == Some(b'/') && self.peek_at(1) == Some(b'-') {
            self.error(
                codes::INVALID_TYPE_ANNOTATION,
                start,
                self.pos + 2,
                "a type annotation must be followed by its value, not by `/-`",
            )
            .help = Some("put `/-` before the type annotation to comment out the whole value".into());
            self.pos += 2;
            self.skip_node_space();
            let _ = self.token();
            return None;
        }
        let token = self.token();
        if token.is_none() {
            self.error(
                codes::INVALID_TYPE_ANNOTATION,
                start,
                self.pos,
                "a type annotation must be followed by a value",
            )
            .help = Some("add the value right after `)`, or remove the annotation".into());
            self.skip_bad_token();
        }
        token
    }

    fn annotation(&mut self) -> Option<Box<Ident<'a>>> {
        let open = self.pos;
        self.pos += 1;
        self.skip_node_space();
        if self.peek() == Some(b'/') && self.peek_at(1) == Some(b'-') {
            self.error(
                codes::INVALID_TYPE_ANNOTATION,
                self.pos,
                self.pos + 2,
                "`/-` cannot be used inside a type annotation",
            )
            .help = Some("remove the `/-`, or put it before the annotation".into());
            self.pos += 2;
            self.skip_node_space();
        }
        let ident = match self.peek() {
            Some(b')') => {
                self.error(codes::INVALID_TYPE_ANNOTATION, open, self.pos + 1, "empty type annotation").help =
                    Some("write a type name inside the parentheses, or remove them".into());
                None
            }
            _ => match self.token() {
                Some(token) => Some(Box::new(self.ident(token, "a type annotation"))),
                None => {
                    self.error(
                        codes::INVALID_TYPE_ANNOTATION,
                        open,
                        self.pos,
                        "a type annotation must contain a string",
                    )
                    .help = Some("write `(name)` before the value".into());
                    None
                }
            },
        };
        self.skip_node_space();
        if self.peek() == Some(b')') {
            self.pos += 1;
        } else {
            self.error(codes::INVALID_TYPE_ANNOTATION, open, self.pos, "type annotation is missing its closing `)`")
                .help = Some("close it with `)`".into());
            // Skip to the `)` on this line, if there is one.
            while let Some(c) = self.peek_char() {
                if is_newline(c) || matches!(c, ';' | '{' | '}') {
                    break;
                }
                self.pos += c.len_utf8();
                if c == ')' {
                    break;
                }
            }
        }
        ident
    }

    fn ident(&mut self, token: Token<'a>, what: &str) -> Ident<'a> {
        match token.kind {
            LiteralKind::String(text) => Ident { text, span: token.span },
            other => {
                self.error(
                    codes::INVALID_SYNTAX,
                    token.span.start as usize,
                    token.span.end as usize,
                    format!("{what} must be a string, not {}", other.type_name()),
                )
                .help = Some("quote it: \"…\"".into());
                let text = Cow::Borrowed(&self.src[token.span.range()]);
                Ident { text, span: token.span }
            }
        }
    }
}

/// Small builder helper on diagnostics created in place.
trait LabelMut {
    fn with_primary_label_mut(&mut self, message: &str) -> &mut Self;
}

impl LabelMut for Diagnostic {
    fn with_primary_label_mut(&mut self, message: &str) -> &mut Self {
        self.primary.message = message.to_owned();
        self
    }
}
