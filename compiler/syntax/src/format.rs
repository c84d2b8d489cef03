//! The canonical layout of a KDL document: `sovereign fmt`.
//!
//! One node per line; children indented four spaces, `{` on the node's
//! line and `}` on its own; entries separated by one space, properties as
//! `key=value`; no `;` and no line continuations; at most one blank line
//! between nodes, none at the start of a block; one newline at the end.
//! Names, keys and values are copied exactly as written (quoting, raw and
//! multi-line strings, number spelling), so nothing changes what the
//! document means.
//!
//! Comments are kept. A comment on its own line stays on its own line
//! before the next node; one after a node on the same line stays there;
//! block comments and `/-` comments inside a node stay inline. A `//`
//! comment inside a node (possible only after a `\` line continuation)
//! moves to its own line before the node, because the continuation is gone.
//!
//! The result is checked before it is returned: it must parse without
//! errors to the same normal form as the input. A document with syntax
//! errors is not formatted.

use sovereign_diagnostics::{Diagnostic, FileId, Span};

use crate::ast::{Entry, Literal, Node};
use crate::normal::normal_form;
use crate::parser::parse;

const INDENT: &str = "    ";

/// Why a document was not formatted.
#[derive(Debug)]
pub enum FormatError {
    /// The input has syntax errors; they are returned, and the text is left alone.
    Syntax(Vec<Diagnostic>),
    /// The formatter would have changed the document's meaning (a bug); the text is left alone.
    Unstable(String),
}

/// Formats a KDL document in the one canonical style.
///
/// # Errors
/// [`FormatError::Syntax`] when the document does not parse cleanly, and
/// [`FormatError::Unstable`] if the output would not mean the same.
pub fn format(text: &str) -> Result<String, FormatError> {
    let parsed = parse(FileId(0), text);
    if !parsed.diagnostics.is_empty() {
        return Err(FormatError::Syntax(parsed.diagnostics));
    }
    // Outermost comments only: comments inside a `/-` comment are part of its text.
    let mut comments = parsed.comments.clone();
    comments.sort_by_key(|c| (c.start, std::cmp::Reverse(c.end)));
    let mut outer: Vec<Span> = Vec::with_capacity(comments.len());
    for c in comments {
        if outer.last().is_none_or(|last| c.start >= last.end) {
            outer.push(c);
        }
    }
    let mut printer =
        Printer { text, comments: &outer, next: 0, out: String::with_capacity(text.len() + 64), marks: Vec::new() };
    printer.nodes(&parsed.document.nodes, 0, text.len());
    let mut out = align_trailing_comments(&printer.out, &printer.marks);
    // One newline at the end; nothing for an empty document.
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    let reparsed = parse(FileId(0), &out);
    if !reparsed.diagnostics.is_empty() || normal_form(&reparsed.document) != normal_form(&parsed.document) {
        return Err(FormatError::Unstable(out));
    }
    Ok(out)
}

struct Printer<'t, 'c> {
    text: &'t str,
    /// Comment (and `/-`) spans in source order, none inside another.
    comments: &'c [Span],
    /// The first comment not yet printed.
    next: usize,
    out: String,
    /// Where in `out` a line's trailing comment begins (at its separating space).
    marks: Vec<usize>,
}

impl Printer<'_, '_> {
    fn slice(&self, span: Span) -> &str {
        &self.text[span.range()]
    }

    /// A comment's text without the line end a `/-` node comment swallows.
    /// A `;` it swallowed stays: after a line continuation it is what ends
    /// the commented-out node, and dropping it would let the node run on
    /// into the next line.
    fn comment_text(&self, span: Span) -> String {
        self.slice(span).trim_end().to_owned()
    }

    /// Where a comment's text ends (a `/-` node comment's span runs past its line end).
    fn comment_end(&self, span: Span) -> usize {
        span.start as usize + self.comment_text(span).len()
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
    }

    /// Whether the source between `from` and `to` holds a blank line (two line breaks, CRLF counted once).
    fn blank_line_between(&self, from: usize, to: usize) -> bool {
        let gap = &self.text[from.min(to)..to];
        gap.replace("\r\n", "\n")
            .chars()
            .filter(|&c| matches!(c, '\n' | '\r' | '\u{0085}' | '\u{2028}' | '\u{2029}' | '\u{000B}' | '\u{000C}'))
            .count()
            >= 2
    }

    /// Whether `[from, to)` holds a line break.
    fn newline_between(&self, from: usize, to: usize) -> bool {
        self.text[from.min(to)..to].contains(['\n', '\r', '\u{0085}', '\u{2028}', '\u{2029}', '\u{000B}', '\u{000C}'])
    }

    /// Prints the comments that start before `limit`, each on its own line at `depth`.
    fn own_line_comments(
        &mut self,
        depth: usize,
        limit: usize,
        mut previous_end: usize,
        first_in_block: bool,
    ) -> usize {
        let mut first = first_in_block;
        while let Some(&c) = self.comments.get(self.next) {
            if c.start as usize >= limit {
                break;
            }
            self.next += 1;
            if !first && self.blank_line_between(previous_end, c.start as usize) {
                self.blank_line();
            }
            first = false;
            self.indent(depth);
            let text = self.comment_text(c);
            self.out.push_str(&text);
            self.out.push('\n');
            if ends_in_continuation(&text) {
                self.out.push('\n');
            }
            previous_end = self.comment_end(c);
        }
        previous_end
    }

    /// Prints `nodes` (and the comments among them) at `depth`; the block's content ends at `end`.
    fn nodes(&mut self, nodes: &[Node<'_>], depth: usize, end: usize) {
        let mut previous_end = self.comments.get(self.next).map_or(0, |c| c.start as usize);
        let mut first = true;
        for node in nodes {
            let start = node.span.start as usize;
            if self.comments.get(self.next).is_some_and(|c| (c.start as usize) < start) {
                previous_end = self.own_line_comments(depth, start, previous_end, first);
                first = false;
            }
            if !first && self.blank_line_between(previous_end, start) {
                self.blank_line();
            }
            first = false;
            previous_end = self.node(node, depth);
        }
        self.own_line_comments(depth, end, previous_end, first);
    }

    /// Prints one node; returns where it ended in the source (after any trailing comment).
    fn node(&mut self, node: &Node<'_>, depth: usize) -> usize {
        let head_end = node.children.as_ref().map_or(node.span.end, |c| c.span.start) as usize;
        // `//` comments inside the head (after a line continuation) go before the node.
        let mut line = String::new();
        let mut hoisted: Vec<String> = Vec::new();
        if let Some(annotation) = &node.annotation {
            line.push('(');
            line.push_str(self.slice(annotation.span));
            line.push(')');
        }
        line.push_str(self.slice(node.name.span));
        let mut inline = |printer: &mut Self, line: &mut String, before: usize| {
            while let Some(&c) = printer.comments.get(printer.next) {
                if c.start as usize >= before {
                    break;
                }
                printer.next += 1;
                let text = printer.comment_text(c);
                if text.starts_with("//") {
                    hoisted.push(text);
                } else {
                    line.push(' ');
                    line.push_str(&text);
                }
            }
        };
        for entry in &node.entries {
            inline(self, &mut line, entry.span.start as usize);
            line.push(' ');
            self.entry(&mut line, entry);
        }
        inline(self, &mut line, head_end);
        for comment in hoisted {
            self.indent(depth);
            self.out.push_str(&comment);
            self.out.push('\n');
        }
        self.indent(depth);
        self.out.push_str(&line);
        let mut end = node.span.end as usize;
        if let Some(children) = &node.children {
            let open = children.span.start as usize;
            let close = (children.span.end as usize).saturating_sub(1);
            let has_content =
                !children.nodes.is_empty() || self.comments.get(self.next).is_some_and(|c| (c.start as usize) < close);
            if has_content {
                self.out.push_str(" {");
                // A comment right after `{` stays on that line.
                self.trailing(open + 1);
                self.out.push('\n');
                self.nodes(&children.nodes, depth + 1, close);
                self.indent(depth);
                self.out.push('}');
            } else {
                self.out.push_str(" {}");
            }
            end = children.span.end as usize;
        }
        // Block and `/-` comments after the children block on the node's line.
        end = self.trailing(end);
        self.out.push('\n');
        end
    }

    /// Prints the comments that follow a node on the same source line; returns the new end.
    fn trailing(&mut self, mut end: usize) -> usize {
        let mut marked = false;
        while let Some(&c) = self.comments.get(self.next) {
            let start = c.start as usize;
            let gap = &self.text[end..start];
            if self.newline_between(end, start) || !gap.trim_matches([' ', '\t', ';']).is_empty() {
                break;
            }
            // After a `;`, a `/-` comments out a node, not an entry of this one.
            if gap.contains(';') && self.slice(c).starts_with("/-") {
                break;
            }
            self.next += 1;
            let text = self.comment_text(c);
            // The line's `//` comment is aligned with its neighbours', even
            // after block comments on the same line.
            if !marked && text.starts_with("//") {
                self.marks.push(self.out.len());
                marked = true;
            }
            self.out.push(' ');
            self.out.push_str(&text);
            end = self.comment_end(c);
            if ends_in_continuation(&text) {
                // The commented-out node continues onto the next line: an
                // empty line must end it, as one did in the source.
                self.out.push('\n');
                break;
            }
        }
        end
    }

    /// One empty line, never two in a row.
    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn entry(&mut self, line: &mut String, entry: &Entry<'_>) {
        if let Some(key) = &entry.key {
            line.push_str(self.slice(key.span));
            line.push('=');
        }
        self.value(line, &entry.value);
    }

    fn value(&self, line: &mut String, value: &Literal<'_>) {
        if let Some(annotation) = &value.annotation {
            line.push('(');
            line.push_str(self.slice(annotation.span));
            line.push(')');
        }
        line.push_str(self.slice(value.span));
    }
}

/// Whether a `/-` comment's text ends in a line continuation (`\`, maybe
/// followed by a `//` comment): the node it comments out then runs on into
/// the next line unless that line is empty.
fn ends_in_continuation(text: &str) -> bool {
    if !text.starts_with("/-") {
        return false;
    }
    let last = text.rsplit(['\n', '\r']).next().unwrap_or(text);
    let code = last.find("//").map_or(last, |i| &last[..i]);
    code.trim_end().ends_with('\\')
}

/// Aligns the trailing `//` comments of consecutive lines one space after
/// the longest line of the run, as the examples are written by hand.
fn align_trailing_comments(out: &str, marks: &[usize]) -> String {
    // (line start, mark) for each marked line.
    let lines: Vec<(usize, usize)> = marks.iter().map(|&m| (out[..m].rfind('\n').map_or(0, |i| i + 1), m)).collect();
    let mut widths = vec![0usize; lines.len()];
    let mut run_start = 0;
    for i in 0..=lines.len() {
        let continues = i < lines.len()
            && i > 0
            && out[lines[i - 1].1..].find('\n').map(|n| lines[i - 1].1 + n + 1) == Some(lines[i].0);
        if i == lines.len() || (i > 0 && !continues) {
            let width = (run_start..i).map(|j| out[lines[j].0..lines[j].1].chars().count()).max().unwrap_or(0);
            for w in &mut widths[run_start..i] {
                *w = width;
            }
            run_start = i;
        }
    }
    let mut result = String::with_capacity(out.len() + marks.len() * 8);
    let mut copied = 0;
    for (&(start, mark), &width) in lines.iter().zip(&widths) {
        result.push_str(&out[copied..mark]);
        let code = out[start..mark].chars().count();
        result.extend(std::iter::repeat_n(' ', width - code));
        copied = mark;
    }
    result.push_str(&out[copied..]);
    result
}
