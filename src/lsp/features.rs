//! What the editor asks about a position: the schema context under the
//! cursor (from a fresh, error-recovering parse of the buffer, so a broken
//! spec still gets hover and completion), and the names the latest
//! snapshot resolved (definition, references, rename, symbols).
//!
//! Pure functions of a buffer, the schema and a snapshot: the protocol
//! glue is in `mod.rs`.

use std::fmt::Write as _;

use sovereign_analyze::placement::Devices;
use sovereign_catalog::EntryKind;
use sovereign_check::Schema;
use sovereign_check::schema::{Field, NodeDef, Type};
use sovereign_diagnostics::{FileId, Span};
use sovereign_ir::{ItemId, ValueKind};
use sovereign_syntax::ast::{LiteralKind, Node};

use super::workspace::Snapshot;

/// What the cursor is on.
#[derive(Debug)]
pub(crate) enum Target {
    /// A node name (being typed, perhaps): kinds valid here.
    NodeName { span: Span },
    /// A property key.
    Key { span: Span, key: String },
    /// An argument (`key: None`, with its position) or a property value.
    Value { span: Span, key: Option<String>, index: usize },
    /// Space inside a node's head: its properties.
    Head,
    /// Space between nodes: kinds valid here.
    Between,
}

/// The schema context of a position.
#[derive(Debug)]
pub(crate) struct Context<'s> {
    /// The definition of the node the cursor is in, if any (and known).
    pub(crate) node: Option<&'s NodeDef>,
    /// The definition whose children block holds the cursor (`None`: top level).
    pub(crate) parent: Option<&'s NodeDef>,
    pub(crate) target: Target,
}

/// The context at `offset` of `text`.
pub(crate) fn context<'s>(schema: &'s Schema, text: &str, offset: usize) -> Context<'s> {
    let parse = sovereign_syntax::parse(FileId(0), text);
    walk(schema, text, &parse.document.nodes, None, offset)
}

fn contains(span: Span, offset: usize) -> bool {
    span.start as usize <= offset && offset <= span.end as usize
}

fn walk<'s>(
    schema: &'s Schema,
    text: &str,
    nodes: &[Node<'_>],
    parent: Option<&'s NodeDef>,
    offset: usize,
) -> Context<'s> {
    for node in nodes {
        let def = match parent {
            Some(p) => p.child(&node.name.text).map(|c| &c.node),
            None => schema.kind(&node.name.text),
        };
        let head_end = node.children.as_ref().map_or(node.span.end, |c| c.span.start) as usize;
        // Space right after the head on the same line still belongs to the node.
        let line_end = text[head_end.min(text.len())..].find(['\n', '\r', ';']).map_or(text.len(), |i| head_end + i);
        let in_head = node.span.start as usize <= offset && offset <= line_end.max(head_end);
        // An unclosed block runs to the end of the text, the cursor included.
        let unclosed = |c: &sovereign_syntax::ast::Children<'_>| !text[..c.span.end as usize].ends_with('}');
        if let Some(children) = &node.children
            && (children.span.start as usize) < offset
            && (offset < children.span.end as usize || (offset == children.span.end as usize && unclosed(children)))
        {
            let mut inner = walk(schema, text, &children.nodes, def, offset);
            if inner.parent.is_none() && inner.node.is_none() && matches!(inner.target, Target::Between) {
                inner.parent = def;
            }
            return inner;
        }
        if !in_head {
            continue;
        }
        if contains(node.name.span, offset) {
            return Context { node: def, parent, target: Target::NodeName { span: node.name.span } };
        }
        let mut index = 0;
        for entry in &node.entries {
            match &entry.key {
                Some(key) if contains(key.span, offset) => {
                    return Context {
                        node: def,
                        parent,
                        target: Target::Key { span: key.span, key: key.text.to_string() },
                    };
                }
                Some(key) if contains(entry.value.span, offset) => {
                    return Context {
                        node: def,
                        parent,
                        target: Target::Value { span: entry.value.span, key: Some(key.text.to_string()), index: 0 },
                    };
                }
                None if contains(entry.value.span, offset) => {
                    // A bare word being typed after the name is a property key in the making.
                    let bare = matches!(entry.value.kind, LiteralKind::String(_))
                        && !text[entry.value.span.range()].starts_with(['"', '#']);
                    if bare && entry.value.span.end as usize == offset {
                        return Context {
                            node: def,
                            parent,
                            target: Target::Key { span: entry.value.span, key: String::new() },
                        };
                    }
                    return Context {
                        node: def,
                        parent,
                        target: Target::Value { span: entry.value.span, key: None, index },
                    };
                }
                None => index += 1,
                Some(_) => {}
            }
        }
        return Context { node: def, parent, target: Target::Head };
    }
    Context { node: None, parent, target: Target::Between }
}

/// The definition of argument `index` of a node (the name of a declaring node is argument 0).
fn arg_def(def: &NodeDef, index: usize) -> Option<&Field> {
    let index = if def.declares { index.checked_sub(1)? } else { index };
    def.args.get(index).or_else(|| def.args.last().filter(|a| a.variadic))
}

/// The value definition under the cursor, if it is a value.
pub(crate) fn value_def<'s>(context: &Context<'s>) -> Option<&'s Field> {
    let def = context.node?;
    match &context.target {
        Target::Value { key: Some(key), .. } => def.prop(key),
        Target::Value { key: None, index, .. } => arg_def(def, *index),
        _ => None,
    }
}

/// One completion: the label and the text that replaces `span` (or is inserted).
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) label: String,
    pub(crate) insert: String,
    pub(crate) detail: String,
    pub(crate) doc: String,
    pub(crate) kind: CompletionKind,
    /// What the insertion replaces; `None`: insert at the cursor.
    pub(crate) replace: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompletionKind {
    Node,
    Property,
    Value,
    Reference,
}

/// Completions at the cursor.
pub(crate) fn completions(schema: &Schema, snapshot: Option<&Snapshot>, context: &Context<'_>) -> Vec<Completion> {
    let kinds = |replace: Option<Span>| -> Vec<Completion> {
        let defs: Vec<&NodeDef> = match context.parent {
            Some(p) => p.children.iter().map(|c| &c.node).collect(),
            None => schema.kinds.iter().collect(),
        };
        defs.into_iter()
            .map(|d| Completion {
                label: d.name.clone(),
                insert: if d.declares { format!("{} \"\"", d.name) } else { d.name.clone() },
                detail: d.path.to_string(),
                doc: d.doc.clone(),
                kind: CompletionKind::Node,
                replace,
            })
            .collect()
    };
    let properties = |replace: Option<Span>| -> Vec<Completion> {
        context
            .node
            .map(|def| {
                def.props
                    .iter()
                    .map(|(key, v)| Completion {
                        label: key.to_string(),
                        insert: if v.ty.is_string_like() { format!("{key}=\"\"") } else { format!("{key}=") },
                        detail: v.ty.describe(),
                        doc: v.doc.clone(),
                        kind: CompletionKind::Property,
                        replace,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    match &context.target {
        Target::NodeName { span } => kinds(Some(*span)),
        Target::Between => kinds(None),
        Target::Key { span, .. } => properties(Some(*span)),
        Target::Head => properties(None),
        Target::Value { span, .. } => {
            value_def(context).map_or_else(Vec::new, |def| values(schema, snapshot, def, *span))
        }
    }
}

/// The values a value definition accepts: enum values, declared names of the kinds a reference needs, catalog names.
fn values(schema: &Schema, snapshot: Option<&Snapshot>, def: &Field, span: Span) -> Vec<Completion> {
    let quoted = |label: &str, detail: &str, kind| Completion {
        label: label.to_owned(),
        insert: format!("\"{label}\""),
        detail: detail.to_owned(),
        doc: String::new(),
        kind,
        replace: Some(span),
    };
    let declared = |kinds: Option<&[String]>| -> Vec<Completion> {
        let Some(snapshot) = snapshot else { return Vec::new() };
        let mut names: Vec<(&str, &str)> =
            snapshot.fabric.declarations(kinds).into_iter().map(|(kind, name)| (name, kind)).collect();
        names.sort_unstable();
        names.into_iter().map(|(name, kind)| quoted(name, kind, CompletionKind::Reference)).collect()
    };
    let catalog = |kind: EntryKind| -> Vec<Completion> {
        schema.catalog.names(kind).into_iter().map(|n| quoted(n, kind.word(), CompletionKind::Value)).collect()
    };
    match &def.ty {
        Type::Enum(values) => values.iter().map(|v| quoted(v, "", CompletionKind::Value)).collect(),
        Type::Ref(kinds) => declared(Some(kinds)),
        Type::AnyRef => declared(None),
        Type::Secret => declared(Some(&["secret".to_owned()])),
        Type::Region => catalog(EntryKind::Region),
        Type::Jurisdiction => catalog(EntryKind::Jurisdiction),
        Type::Catalog(kinds) => kinds.iter().flat_map(|k| catalog(*k)).collect(),
        Type::Bool => ["#true", "#false"]
            .iter()
            .map(|b| Completion {
                label: (*b).to_owned(),
                insert: (*b).to_owned(),
                detail: String::new(),
                doc: String::new(),
                kind: CompletionKind::Value,
                replace: Some(span),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Hover text (Markdown) at the cursor.
pub(crate) fn hover(
    snapshot: Option<&Snapshot>,
    context: &Context<'_>,
    file: Option<FileId>,
    offset: usize,
) -> Option<String> {
    // A reference or a declared name: what it names.
    if let (Some(snapshot), Some(file)) = (snapshot, file)
        && let Some(id) = item_at(snapshot, file, offset)
    {
        let mut text = summary(snapshot, id);
        if let Some(def) = value_def(context).filter(|d| !d.doc.is_empty()) {
            let _ = write!(text, "\n\n---\n{}", def.doc);
        }
        return Some(text);
    }
    match &context.target {
        Target::NodeName { .. } | Target::Head => {
            let def = context.node?;
            let mut text = format!("**{}** (`{}`)\n\n{}", def.name, def.path, def.doc);
            if !def.props.is_empty() {
                text.push_str("\n\nProperties:");
                for (key, v) in &def.props {
                    let _ = write!(text, "\n- `{key}`: {} {}", v.ty.describe(), v.doc);
                }
            }
            if !def.children.is_empty() {
                let children: Vec<String> = def.children.iter().map(|c| format!("`{}`", c.node.name)).collect();
                let _ = write!(text, "\n\nChildren: {}", children.join(", "));
            }
            Some(text)
        }
        Target::Key { key, .. } => {
            let def = context.node?.prop(key)?;
            let default = def.default.as_ref().map(|d| format!(" (default `{d}`)")).unwrap_or_default();
            Some(format!("**{key}**: {}{default}\n\n{}", def.ty.describe(), def.doc))
        }
        Target::Value { .. } => {
            let def = value_def(context)?;
            Some(format!("{}\n\n{}", def.ty.describe(), def.doc))
        }
        Target::Between => None,
    }
}

/// A reference value or declared name of file `file` at `offset`: the item it names.
pub(crate) fn item_at(snapshot: &Snapshot, file: FileId, offset: usize) -> Option<ItemId> {
    for (index, item) in snapshot.fabric.items.iter().enumerate() {
        if item.span.file != file || !contains(item.span, offset) {
            continue;
        }
        if let Some(name) = &item.name
            && contains(name.span, offset)
        {
            return Some(ItemId(index as u32));
        }
        for val in item.args.iter().chain(item.props.iter().map(|(_, v)| v)) {
            if contains(val.span, offset) {
                match val.kind {
                    ValueKind::Ref { target: Some(t), .. } | ValueKind::Secret { target: Some(t), .. } => {
                        return Some(t);
                    }
                    _ => {}
                }
            }
        }
    }
    None
}

/// What a declaration is, for hover: its kind and name, and for a serve its placement and memory.
fn summary(snapshot: &Snapshot, id: ItemId) -> String {
    let fabric = &snapshot.fabric;
    let item = fabric.item(id);
    let name = fabric.name_of(id);
    let mut text = format!("**{}** `{name}`", item.kind.rsplit('/').next().unwrap_or(&item.kind));
    let props: Vec<String> = item
        .props
        .iter()
        .filter(|(_, v)| !v.defaulted)
        .filter_map(|(k, v)| match &v.kind {
            ValueKind::Str(s) => Some(format!("{k}={s}")),
            ValueKind::Ref { name, .. } => Some(format!("{k}={name}")),
            ValueKind::Int(i) => Some(format!("{k}={i}")),
            _ => None,
        })
        .collect();
    if !props.is_empty() {
        let _ = write!(text, " — {}", props.join(", "));
    }
    let Some(analysis) = &snapshot.analysis else { return text };
    if let Some(plan) = analysis.serves.iter().find(|p| p.item == id) {
        let _ = write!(
            text,
            "\n\n{} in {}: {} of {} replicas placed",
            plan.base,
            plan.dtype,
            plan.placements.len(),
            plan.replicas
        );
        for p in &plan.placements {
            let place = match &p.devices {
                Devices::Mig { gpu, profile, start, size } => {
                    format!("GPU {gpu}, {profile} at slices {start}-{}", start + size - 1)
                }
                Devices::Gpus { indices } => format!("GPUs {:?}", indices),
                Devices::Tpu { machine, chips } => format!("machine {machine}, {chips} chips"),
            };
            let memory = plan.memory_on(&p.accelerator).map_or_else(String::new, |m| {
                format!(
                    "; {} free after weights, {} sequences of {} tokens",
                    sovereign_analyze::memory::gib(m.headroom()),
                    m.concurrent_sequences(),
                    m.max_len
                )
            });
            let _ =
                write!(text, "\n- replica {}: {}/{}, {place}{memory}", p.replica, analysis.sites[p.site].name, p.node);
        }
    }
    text
}

/// Every reference to `id` (and its declaration), as spans.
pub(crate) fn references(snapshot: &Snapshot, id: ItemId, include_declaration: bool) -> Vec<Span> {
    let mut spans = Vec::new();
    if include_declaration && let Some(name) = &snapshot.fabric.item(id).name {
        spans.push(name.span);
    }
    for item in &snapshot.fabric.items {
        for val in item.args.iter().chain(item.props.iter().map(|(_, v)| v)) {
            match val.kind {
                ValueKind::Ref { target: Some(t), .. } | ValueKind::Secret { target: Some(t), .. } if t == id => {
                    spans.push(val.span)
                }
                _ => {}
            }
        }
    }
    spans
}

/// The edits that rename declaration `id` to `new_name`: its name, every
/// reference to it, and every reference through it (`site/fleet` when a site is renamed).
pub(crate) fn rename(snapshot: &Snapshot, id: ItemId, new_name: &str) -> Result<Vec<(Span, String)>, String> {
    sovereign_ir::values::check_name(new_name)
        .map_err(|reason| format!("`{new_name}` is not a valid name: {reason}"))?;
    let fabric = &snapshot.fabric;
    let item = fabric.item(id);
    let name = item.name.as_ref().ok_or("only declared names can be renamed")?;
    let old = name.qualified.to_string();
    let new = format!("{}{new_name}", &old[..name.offset as usize]);
    let mut edits = vec![(name.span, format!("\"{new_name}\""))];
    for other in &fabric.items {
        for val in other.args.iter().chain(other.props.iter().map(|(_, v)| v)) {
            // A relative name (`runs-on … namespace="evals"`) is written without its parent.
            if let ValueKind::Ref { target: Some(t), relative_to: Some(_), .. } = &val.kind {
                if *t == id {
                    edits.push((val.span, format!("\"{new_name}\"")));
                }
                continue;
            }
            let (ValueKind::Ref { name: text, target: Some(t), .. }
            | ValueKind::Secret { name: Some(text), target: Some(t) }) = &val.kind
            else {
                continue;
            };
            let through = *t == id || fabric_ancestor(fabric, *t, id);
            if !through {
                continue;
            }
            let (prefix, bare) = match text.split_once(':') {
                Some((kind, rest)) => (format!("{kind}:"), rest),
                None => (String::new(), &**text),
            };
            let replaced = if bare == old {
                new.clone()
            } else if let Some(rest) = bare.strip_prefix(&format!("{old}/")) {
                format!("{new}/{rest}")
            } else {
                continue;
            };
            edits.push((val.span, format!("\"{prefix}{replaced}\"")));
        }
    }
    Ok(edits)
}

fn fabric_ancestor(fabric: &sovereign_ir::Fabric, mut id: ItemId, ancestor: ItemId) -> bool {
    while let Some(parent) = fabric.item(id).parent {
        if parent == ancestor {
            return true;
        }
        id = parent;
    }
    false
}

/// The declarations of one file, nested: (kind, name, node span, name span, children).
pub(crate) struct Symbol {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) name_span: Span,
    pub(crate) children: Vec<Symbol>,
}

pub(crate) fn symbols(snapshot: &Snapshot, file: FileId) -> Vec<Symbol> {
    fn symbol(snapshot: &Snapshot, id: ItemId) -> Option<Symbol> {
        let item = snapshot.fabric.item(id);
        let name = item.name.as_ref()?;
        Some(Symbol {
            kind: item.kind.rsplit('/').next().unwrap_or(&item.kind).to_owned(),
            name: name.text().to_owned(),
            span: item.span,
            name_span: name.span,
            children: item.children.iter().filter_map(|&c| symbol(snapshot, c)).collect(),
        })
    }
    snapshot
        .fabric
        .items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.parent.is_none() && i.span.file == file)
        .filter_map(|(index, _)| symbol(snapshot, ItemId(index as u32)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        sovereign_check::Stdlib::embedded().0.schema
    }

    fn at(text: &str) -> (String, usize) {
        let offset = text.find('|').expect("a cursor");
        (text.replacen('|', "", 1), offset)
    }

    #[test]
    fn contexts() {
        let schema = schema();
        let (text, offset) = at("site \"fra\" tier=\"server\" {\n    no|\n}\n");
        let c = context(&schema, &text, offset);
        assert!(matches!(c.target, Target::NodeName { .. }), "{c:?}");
        assert_eq!(c.parent.map(|p| p.name.as_str()), Some("site"));
        let names: Vec<String> = completions(&schema, None, &c).into_iter().map(|c| c.label).collect();
        assert!(names.contains(&"node".to_owned()) && names.contains(&"cluster".to_owned()), "{names:?}");

        let (text, offset) = at("serve \"chat\" ti|\n");
        let c = context(&schema, &text, offset);
        assert!(matches!(c.target, Target::Key { .. }), "{c:?}");
        let names: Vec<String> = completions(&schema, None, &c).into_iter().map(|c| c.label).collect();
        assert!(names.contains(&"tier".to_owned()) && names.contains(&"model".to_owned()), "{names:?}");

        let (text, offset) = at("site \"fra\" tier=\"s|\"\n");
        let c = context(&schema, &text, offset);
        let names: Vec<String> = completions(&schema, None, &c).into_iter().map(|c| c.label).collect();
        assert_eq!(names, ["cloud", "server", "device"]);

        // At the end of an unclosed block: its children.
        let (text, offset) = at("site \"fra\" {\n  no|");
        let c = context(&schema, &text, offset);
        assert_eq!(c.parent.map(|p| p.name.as_str()), Some("site"), "{c:?}");

        // A broken spec still has a context.
        let (text, offset) = at("site \"fra\" tier=\"server\" {\n    node \"a\" gpu=\"|\n");
        let c = context(&schema, &text, offset);
        let names: Vec<String> = completions(&schema, None, &c).into_iter().map(|c| c.label).collect();
        assert!(names.contains(&"h100-80gb".to_owned()), "{names:?}");

        let (text, offset) = at("|\nfabric \"a\"\n");
        let c = context(&schema, &text, offset);
        assert!(matches!(c.target, Target::Between));
        assert!(completions(&schema, None, &c).iter().any(|c| c.label == "serve"));
    }
}
