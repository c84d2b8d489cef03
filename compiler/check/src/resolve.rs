//! Name resolution: the table of declared names, duplicates, references to
//! nothing or to the wrong kind, `depends-on`, secrets written as literals,
//! and the presence of a `fabric` (`SOV3001`–`SOV3004`, `SOV3006`, `SOV3009`).

use std::sync::Arc;

use sovereign_diagnostics::{Diagnostic, Span, closest, codes};

use sovereign_ir::{DeclKey, Fabric, ItemId, ValueKind};

use crate::lower::SecretNames;

/// Fills `fabric.names` and resolves every reference in place. A secret's
/// name is taken from `secret_names` (lowering keeps it there, not in the
/// IR) and enters the IR only when it names a declared `secret`.
pub fn resolve(fabric: &mut Fabric, secret_names: &SecretNames, root_span: Span, diagnostics: &mut Vec<Diagnostic>) {
    declare(fabric, diagnostics);
    if fabric.of_kind("fabric").next().is_none() {
        diagnostics.push(
            Diagnostic::new(codes::MISSING_FABRIC, root_span, "this spec has no `fabric` declaration")
                .with_help("add `fabric \"my-fabric\" { residency \"eu\" }` to the root file"),
        );
    }
    let declared = Declared::new(fabric);
    let mut lists = NameLists::default();
    // Found first, written after: the fabric is borrowed while resolving.
    let mut resolutions: Vec<(ItemId, Slot, Option<ItemId>)> = Vec::new();
    let mut secrets: Vec<(ItemId, Slot, ItemId, String)> = Vec::new();
    for (index, item) in fabric.items.iter().enumerate() {
        let id = ItemId(index as u32);
        for (slot, val) in slots(item) {
            let target = match &val.kind {
                // Resolved below, once the declaration it is relative to is known.
                ValueKind::Ref { relative_to: Some(_), .. } => continue,
                ValueKind::Ref { name, kinds, .. } if kinds.is_empty() => {
                    resolve_any(fabric, &mut lists, &declared, name, val.span, diagnostics)
                }
                ValueKind::Ref { name, kinds, .. } => {
                    resolve_kind(fabric, &mut lists, &declared, name, kinds, val.span, diagnostics)
                }
                ValueKind::Secret { name: None, target: None } => {
                    let Some(name) = secret_names.0.get(&val.span) else { continue };
                    match fabric.lookup("secret", name) {
                        Some(target) => secrets.push((id, slot, target, name.clone())),
                        None => secret_not_declared(fabric, &mut lists, name, val.span, diagnostics),
                    }
                    continue;
                }
                _ => continue,
            };
            resolutions.push((id, slot, target));
        }
    }
    apply(fabric, resolutions);
    for (id, slot, resolved, name) in secrets {
        slot.of(&mut fabric.items[id.0 as usize]).kind =
            ValueKind::Secret { name: Some(Arc::from(name)), target: Some(resolved) };
    }
    let relative = resolve_relative(fabric, diagnostics);
    apply(fabric, relative);
}

/// Writes resolved targets into the IR.
fn apply(fabric: &mut Fabric, resolutions: Vec<(ItemId, Slot, Option<ItemId>)>) {
    for (id, slot, resolved) in resolutions {
        if let ValueKind::Ref { target, .. } = &mut slot.of(&mut fabric.items[id.0 as usize]).kind {
            *target = resolved;
        }
    }
}

/// References relative to the declaration another argument names (the
/// schema's `relative-to=`): `runs-on "metabolism" namespace="evals"` names
/// `metabolism/evals`. Nothing is reported when that argument did not
/// resolve: it already was.
fn resolve_relative(fabric: &Fabric, diagnostics: &mut Vec<Diagnostic>) -> Vec<(ItemId, Slot, Option<ItemId>)> {
    let mut resolutions = Vec::new();
    for (index, item) in fabric.items.iter().enumerate() {
        for (slot, val) in slots(item) {
            let ValueKind::Ref { name, kinds, relative_to: Some(base), .. } = &val.kind else { continue };
            let Some(parent) = item.args.get(*base as usize).and_then(sovereign_ir::Value::target) else { continue };
            let Some(parent_name) = &fabric.item(parent).name else { continue };
            let qualified = format!("{}/{name}", parent_name.qualified);
            let target = kinds.iter().find_map(|kind| fabric.lookup(kind, &qualified));
            if target.is_none() {
                diagnostics.push(not_declared_within(fabric, parent, name, kinds, val.span));
            }
            resolutions.push((ItemId(index as u32), slot, target));
        }
    }
    resolutions
}

/// SOV3002 for a relative name its declaration does not have.
fn not_declared_within(fabric: &Fabric, parent: ItemId, name: &str, kinds: &[String], span: Span) -> Diagnostic {
    let wanted = kinds.iter().map(|k| kind_word(k)).collect::<Vec<_>>().join(" or ");
    let declared: Vec<&str> = fabric
        .item(parent)
        .children
        .iter()
        .map(|&c| fabric.item(c))
        .filter(|c| kinds.iter().any(|k| **k == *c.kind))
        .filter_map(|c| c.name.as_ref().map(|n| n.text()))
        .collect();
    let owner = fabric.describe(parent);
    let d = Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("{owner} has no {wanted} `{name}`"))
        .with_primary_label(format!("not declared in {owner}"));
    match did_you_mean(d, name, declared.iter().copied(), span) {
        (d, true) => d,
        (d, false) if declared.is_empty() => {
            d.with_help(format!("declare it inside: {owner} {{ {wanted} \"{name}\" }}"))
        }
        (d, false) => d.with_help(format!("its {wanted}s: {}", declared.join(", "))),
    }
}

/// `d` with the closest of `candidates` as help and fix, and whether one was close.
fn did_you_mean<'a>(
    d: Diagnostic,
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    span: Span,
) -> (Diagnostic, bool) {
    match closest(name, candidates) {
        Some(s) => {
            let d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("replace with \"{s}\""),
                span,
                format!("\"{s}\""),
            );
            (d, true)
        }
        None => (d, false),
    }
}

/// Where a value sits in its item.
#[derive(Clone, Copy)]
enum Slot {
    Arg(usize),
    Prop(usize),
}

impl Slot {
    fn of(self, item: &mut sovereign_ir::Item) -> &mut sovereign_ir::Value {
        match self {
            Slot::Arg(i) => &mut item.args[i],
            Slot::Prop(i) => &mut item.props[i].1,
        }
    }
}

/// Every value of an item with its slot: arguments, then properties.
fn slots(item: &sovereign_ir::Item) -> impl Iterator<Item = (Slot, &sovereign_ir::Value)> {
    let args = item.args.iter().enumerate().map(|(i, v)| (Slot::Arg(i), v));
    args.chain(item.props.iter().enumerate().map(|(i, (_, v))| (Slot::Prop(i), v)))
}

/// The kinds that declare names, sorted: a bare `depends-on "x"` may name any of them.
struct Declared {
    kinds: Vec<Arc<str>>,
}

impl Declared {
    fn new(fabric: &Fabric) -> Self {
        let mut kinds: Vec<Arc<str>> = Vec::new();
        for key in fabric.names.keys() {
            if !kinds.contains(&key.kind) {
                kinds.push(key.kind.clone());
            }
        }
        kinds.sort();
        Declared { kinds }
    }

    /// Every declaration named `name`, by kind.
    fn named<'a>(&'a self, fabric: &'a Fabric, name: &'a str) -> impl Iterator<Item = (&'a str, ItemId)> + 'a {
        self.kinds.iter().filter_map(move |kind| fabric.lookup(kind, name).map(|id| (&**kind, id)))
    }
}

/// The declared names of the given kinds (all kinds when `None`), sorted and
/// without repeats; only built for a diagnostic.
/// Declared names by kinds, sorted, each list made once per resolution:
/// collecting and sorting every declaration again for each unknown
/// reference made a spec with many of them quadratic.
#[derive(Default)]
struct NameLists<'a> {
    by_kinds: std::collections::BTreeMap<Vec<String>, Vec<&'a str>>,
    all: Option<Vec<&'a str>>,
}

impl<'a> NameLists<'a> {
    fn get(&mut self, fabric: &'a Fabric, kinds: Option<&[String]>) -> &[&'a str] {
        match kinds {
            None => self.all.get_or_insert_with(|| {
                let mut names: Vec<&str> = fabric.declarations(None).into_iter().map(|(_, name)| name).collect();
                names.sort_unstable();
                names.dedup();
                names
            }),
            Some(kinds) => {
                if !self.by_kinds.contains_key(kinds) {
                    let names = fabric.declarations(Some(kinds)).into_iter().map(|(_, name)| name).collect();
                    self.by_kinds.insert(kinds.to_vec(), names);
                }
                &self.by_kinds[kinds]
            }
        }
    }
}

/// A list for a help text: at most a dozen names, and how many more.
fn some_of(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    let mut text = names.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn declare(fabric: &mut Fabric, diagnostics: &mut Vec<Diagnostic>) {
    let mut singleton_seen: Option<Span> = None;
    // Sized once: rehashing a growing table was a tenth of a large check.
    fabric.names.reserve(fabric.items.iter().filter(|i| i.name.is_some()).count());
    for (index, item) in fabric.items.iter().enumerate() {
        let Some(name) = &item.name else { continue };
        if &*item.kind == "fabric" {
            if let Some(first) = singleton_seen {
                diagnostics.push(
                    Diagnostic::new(
                        codes::DUPLICATE_NAME,
                        name.span,
                        "a spec declares one `fabric`; this is a second one",
                    )
                    .with_label(first, "the fabric is declared here")
                    .with_help("remove one, or merge them"),
                );
                continue;
            }
            singleton_seen = Some(name.span);
        }
        if let Some(existing) = fabric.lookup(&item.kind, &name.qualified) {
            let first = fabric.items[existing.0 as usize].name.as_ref().map_or(Span::default(), |n| n.span);
            let kind = item.kind.rsplit('/').next().unwrap_or(&item.kind);
            diagnostics.push(
                Diagnostic::new(
                    codes::DUPLICATE_NAME,
                    name.span,
                    format!("a {kind} named `{}` is already declared", name.qualified),
                )
                .with_primary_label("declared again here")
                .with_label(first, "first declared here")
                .with_help(format!(
                    "rename one of them; names are unique per kind{}",
                    if item.parent.is_some() { " within their parent" } else { "" }
                )),
            );
            continue;
        }
        let key = DeclKey { kind: item.kind.clone(), name: name.qualified.clone() };
        fabric.names.insert(key, ItemId(index as u32));
    }
}

fn kind_word(kind: &str) -> &str {
    kind.rsplit('/').next().unwrap_or(kind)
}

fn resolve_kind<'a>(
    fabric: &'a Fabric,
    lists: &mut NameLists<'a>,
    declared: &Declared,
    name: &str,
    kinds: &[String],
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ItemId> {
    for kind in kinds {
        if let Some(id) = fabric.lookup(kind, name) {
            return Some(id);
        }
    }
    let wanted = kinds.iter().map(|k| kind_word(k)).collect::<Vec<_>>().join(" or ");
    if let Some((other_kind, other_id)) = declared.named(fabric, name).next() {
        let declared = fabric.item(other_id).name.as_ref().map_or(span, |n| n.span);
        diagnostics.push(
            Diagnostic::new(
                codes::WRONG_REFERENCE_KIND,
                span,
                format!("`{name}` is a {}, but a {wanted} is required here", kind_word(other_kind)),
            )
            .with_primary_label(format!("must name a {wanted}"))
            .with_label(declared, format!("`{name}` is declared here as a {}", kind_word(other_kind)))
            .with_help(format!("name a declared {wanted}")),
        );
        return None;
    }
    let candidates = lists.get(fabric, Some(kinds));
    let mut d = Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("no {wanted} named `{name}`"))
        .with_primary_label("not declared");
    d = match did_you_mean(d, name, candidates.iter().copied(), span) {
        (d, true) => d,
        (d, false) if candidates.is_empty() => d.with_help(format!("declare a {wanted} named `{name}`")),
        (d, false) => d.with_help(format!("declared {wanted}s: {}", some_of(candidates))),
    };
    if kinds.iter().any(|k| k.contains('/')) && !name.contains('/') {
        d = d.with_help(format!("nested declarations are named with their parent: `parent/{name}`"));
    }
    diagnostics.push(d);
    None
}

fn resolve_any<'a>(
    fabric: &'a Fabric,
    lists: &mut NameLists<'a>,
    declared: &Declared,
    text: &str,
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ItemId> {
    if let Some((kind, name)) = text.split_once(':') {
        let mut kinds: Vec<&str> = fabric.names.keys().map(|k| &*k.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let problem = if kind.is_empty() || name.is_empty() {
            Some(format!("`{text}` names no declaration: write `kind:name`, both parts given"))
        } else if !kinds.contains(&kind) {
            Some(format!("`{kind}` is not a kind of declaration in this fabric"))
        } else {
            None
        };
        if let Some(message) = problem {
            let mut d = Diagnostic::new(codes::UNKNOWN_REFERENCE, span, message).with_primary_label("not `kind:name`");
            d = match closest(kind, kinds.iter().copied()).filter(|_| !kind.is_empty()) {
                Some(s) => d.with_help(format!("did you mean `{s}:{name}`?")).with_fix(
                    format!("replace with \"{s}:{name}\""),
                    span,
                    format!("\"{s}:{name}\""),
                ),
                None => d.with_help(format!(
                    "write the name alone, or `kind:name` with a kind declared here: {}",
                    kinds.join(", ")
                )),
            };
            diagnostics.push(d);
            return None;
        }
        return resolve_kind(fabric, lists, declared, name, &[kind.to_owned()], span, diagnostics);
    }
    let several: Vec<(&str, ItemId)> = declared.named(fabric, text).collect();
    match several.as_slice() {
        [(_, id)] => Some(*id),
        [_, _, ..] => {
            let mut d = Diagnostic::new(
                codes::AMBIGUOUS_REFERENCE,
                span,
                format!("`{text}` names declarations of several kinds"),
            )
            .with_primary_label("ambiguous");
            for (kind, id) in &several {
                if let Some(name) = &fabric.item(*id).name {
                    d = d.with_label(name.span, format!("a {}", kind_word(kind)));
                }
            }
            let (first_kind, _) = several[0];
            d = d.with_help(format!("qualify it with its kind, such as \"{first_kind}:{text}\""));
            diagnostics.push(d);
            None
        }
        [] => {
            let candidates = lists.get(fabric, None);
            let d =
                Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("nothing is declared with the name `{text}`"))
                    .with_primary_label("not declared");
            diagnostics.push(match did_you_mean(d, text, candidates.iter().copied(), span) {
                (d, true) => d,
                (d, false) => d.with_help(format!("declare `{text}`, or remove it from `depends-on`")),
            });
            None
        }
    }
}

fn secret_not_declared<'a>(
    fabric: &'a Fabric,
    lists: &mut NameLists<'a>,
    text: &str,
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let secrets = lists.get(fabric, Some(&["secret".to_owned()]));
    // A near miss of a declared name is a typo, safe to show; anything else
    // may be the secret itself and is never echoed.
    if let Some(s) = closest(text, secrets.iter().copied()) {
        diagnostics.push(
            Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("no secret named `{text}`"))
                .with_primary_label("not declared")
                .with_help(format!("did you mean `{s}`?"))
                .with_fix(format!("replace with \"{s}\""), span, format!("\"{s}\"")),
        );
        return;
    }
    diagnostics.push(crate::lower::secret_literal(span));
}
