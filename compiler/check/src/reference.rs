//! The language reference (`docs/language.md`), generated from the schema
//! so that the two cannot disagree; a test compares the file with this.

use std::fmt::Write as _;

use crate::schema::{NodeDef, Schema, ValueDef};

/// Renders the whole language reference as Markdown.
#[must_use]
pub fn language_reference(schema: &Schema) -> String {
    let mut out = String::new();
    out.push_str(
        "# The fabric language (v0)\n\n\
         <!-- Generated from stdlib/schema/*.kdl by `UPDATE_DOCS=1 cargo test --test docs`; do not edit by hand. -->\n\n\
         A fabric spec is a KDL 2.0 document.\n\
         Every top-level node declares one named thing; names are unique per kind and references are by name.\n\
         Nested declarations (a site's `node` or `fleet`, a temporal `namespace`) are unique within their parent and referenced as `parent/child`.\n\
         Names are lowercase letters, digits, `-` and `.`, start with a letter, and have at most 63 characters, because they become Kubernetes object names.\n\n\
         Value types: sizes are a number and a unit (`50Gi`, `512GiB`, `1.5TB`); durations are numbers with units (`800ms`, `7d`, `1h30m`);\n\
         schedules are five-field cron expressions; regions and jurisdictions come from `stdlib/catalog/regions.kdl`;\n\
         a `secret` property takes the name of a declared `secret`, never the secret itself.\n\n\
         ## Kinds\n\n",
    );
    for kind in &schema.kinds {
        let _ = writeln!(out, "- [`{}`](#{}) — {}", kind.name, kind.name, first_sentence(&kind.doc));
    }
    out.push('\n');
    for kind in &schema.kinds {
        write_def(&mut out, kind, 3);
    }
    out.push_str("## Jurisdictions and regions\n\n| jurisdiction | meaning | regions |\n| --- | --- | --- |\n");
    for (name, doc) in &schema.jurisdictions {
        let regions: Vec<String> =
            schema.regions.iter().filter(|(_, r)| &r.jurisdiction == name).map(|(n, _)| format!("`{n}`")).collect();
        let _ = writeln!(out, "| `{name}` | {doc} | {} |", regions.join(", "));
    }
    out
}

fn first_sentence(text: &str) -> &str {
    text.split_once(". ").map_or(text, |(first, _)| first).trim_end_matches('.')
}

fn value_line(def: &ValueDef) -> String {
    let mut notes = Vec::new();
    if def.required {
        notes.push("required".to_owned());
    }
    if def.variadic {
        notes.push("one or more".to_owned());
    }
    if let Some(default) = &def.default {
        notes.push(format!("default `{default}`"));
    }
    match (def.min, def.max) {
        (Some(a), Some(b)) => notes.push(format!("{a} to {b}")),
        (Some(a), None) => notes.push(format!("at least {a}")),
        (None, Some(b)) => notes.push(format!("at most {b}")),
        (None, None) => {}
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
    format!("{}{notes}. {}", def.ty.describe(), def.doc)
}

fn write_def(out: &mut String, def: &NodeDef, level: usize) {
    let hashes = "#".repeat(level);
    let _ = writeln!(out, "{hashes} `{}`\n", def.path.replace('/', " › "));
    if !def.doc.is_empty() {
        let _ = writeln!(out, "{}\n", def.doc);
    }
    let mut usage = def.name.clone();
    if def.declares {
        usage.push_str(" \"NAME\"");
    }
    for arg in &def.args {
        usage.push_str(if arg.variadic { " VALUE…" } else { " VALUE" });
    }
    for (key, prop) in &def.props {
        if prop.required {
            let _ = write!(usage, " {key}=…");
        }
    }
    if !def.children.is_empty() {
        usage.push_str(" { … }");
    }
    let _ = writeln!(out, "```kdl\n{usage}\n```\n");
    if def.declares && def.singleton {
        out.push_str("Declared at most once.\n\n");
    }
    for (index, arg) in def.args.iter().enumerate() {
        let _ = writeln!(out, "- argument {}: {}", index + 1, value_line(arg));
    }
    for (key, prop) in &def.props {
        let _ = writeln!(out, "- `{key}`: {}", value_line(prop));
    }
    if !def.children.is_empty() {
        let children: Vec<String> = def
            .children
            .iter()
            .map(|c| {
                let mut s = format!("`{}`", c.node.name);
                match (c.required, c.max) {
                    (true, Some(1)) => s.push_str(" (exactly one)"),
                    (true, _) => s.push_str(" (required)"),
                    (false, Some(1)) => s.push_str(" (at most one)"),
                    (false, Some(n)) => {
                        let _ = write!(s, " (at most {n})");
                    }
                    (false, None) => {}
                }
                s
            })
            .collect();
        let _ = writeln!(out, "- children: {}", children.join(", "));
    }
    out.push('\n');
    for child in &def.children {
        write_def(out, &child.node, (level + 1).min(6));
    }
}
