//! The normal form of the KDL test suite: comments dropped, arguments in
//! order then properties sorted (the rightmost duplicate wins), four-space
//! indents, strings bare where they can be, decimal numbers, empty children
//! blocks dropped. Used to compare parses, never shown to users.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::ast::{Document, Ident, Literal, LiteralKind, Node};
use crate::chars::{is_bare_identifier, is_disallowed};

/// Prints `document` in the suite's normal form.
#[must_use]
pub fn normal_form(document: &Document<'_>) -> String {
    let mut out = String::new();
    for node in &document.nodes {
        write_node(&mut out, node, 0);
    }
    out
}

fn write_node(out: &mut String, node: &Node<'_>, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
    write_annotation(out, node.annotation.as_deref());
    out.push_str(&quote(&node.name.text));
    let mut properties = BTreeMap::new();
    for entry in &node.entries {
        match &entry.key {
            Some(key) => {
                properties.insert(key.text.as_ref(), &entry.value);
            }
            None => {
                out.push(' ');
                write_value(out, &entry.value);
            }
        }
    }
    for (key, value) in properties {
        out.push(' ');
        out.push_str(&quote(key));
        out.push('=');
        write_value(out, value);
    }
    let children = node.child_nodes();
    if !children.is_empty() {
        out.push_str(" {\n");
        for child in children {
            write_node(out, child, depth + 1);
        }
        for _ in 0..depth {
            out.push_str("    ");
        }
        out.push('}');
    }
    out.push('\n');
}

fn write_annotation(out: &mut String, annotation: Option<&Ident<'_>>) {
    if let Some(annotation) = annotation {
        out.push('(');
        out.push_str(&quote(&annotation.text));
        out.push(')');
    }
}

fn write_value(out: &mut String, value: &Literal<'_>) {
    write_annotation(out, value.annotation.as_deref());
    match &value.kind {
        LiteralKind::String(text) => out.push_str(&quote(text)),
        LiteralKind::Number(number) => out.push_str(&number.normal_form()),
        LiteralKind::Bool(true) => out.push_str("#true"),
        LiteralKind::Bool(false) => out.push_str("#false"),
        LiteralKind::Null => out.push_str("#null"),
    }
}

/// Writes a string as a bare identifier when it can be one, else quoted
/// with escapes.
#[must_use]
pub fn quote(text: &str) -> String {
    if is_bare_identifier(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_disallowed(c) || c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
