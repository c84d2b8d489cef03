//! Name resolution: the table of declared names, duplicates, references to
//! nothing or to the wrong kind, `depends-on`, secrets written as literals,
//! and the presence of a `fabric` (`SOV3001`–`SOV3004`, `SOV3006`, `SOV3009`).

use std::sync::Arc;

use sovereign_diagnostics::{Diagnostic, Span, closest, codes};

use crate::ir::{DeclKey, Fabric, ItemId, Typed};

/// Fills `fabric.names` and resolves every reference in place.
pub fn resolve(fabric: &mut Fabric, root_span: Span, diagnostics: &mut Vec<Diagnostic>) {
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
    for (index, item) in fabric.items.iter().enumerate() {
        let id = ItemId(index as u32);
        let values = item
            .args
            .iter()
            .enumerate()
            .map(|(i, v)| (Slot::Arg(i), v))
            .chain(item.props.iter().enumerate().map(|(i, (_, v))| (Slot::Prop(i), v)));
        for (slot, val) in values {
            let target = match &val.value {
                Typed::Ref { name, kinds, .. } if kinds.is_empty() => {
                    resolve_any(fabric, &mut lists, &declared, name, val.span, diagnostics)
                }
                Typed::Ref { name, kinds, .. } => {
                    resolve_kind(fabric, &mut lists, &declared, name, kinds, val.span, diagnostics)
                }
                Typed::Secret { name: Some(name), .. } => {
                    let target = fabric.lookup("secret", name);
                    if target.is_none() {
                        secret_not_declared(fabric, &mut lists, name, val.span, diagnostics);
                    }
                    target
                }
                _ => continue,
            };
            resolutions.push((id, slot, target));
        }
    }
    for (id, slot, resolved) in resolutions {
        let item = &mut fabric.items[id.0 as usize];
        let val = match slot {
            Slot::Arg(i) => &mut item.args[i],
            Slot::Prop(i) => &mut item.props[i].1,
        };
        match &mut val.value {
            Typed::Ref { target, .. } => *target = resolved,
            Typed::Secret { name, target } => {
                *target = resolved;
                // A literal secret does not survive into the IR.
                if resolved.is_none() {
                    *name = None;
                }
            }
            _ => {}
        }
    }
    check_runs_on_namespaces(fabric, diagnostics);
}

/// `runs-on "temporal" namespace="evals"` names a namespace of that Temporal
/// cluster, relative to it: the one reference the schema cannot express as a
/// plain `ref` (its target depends on the argument beside it).
fn check_runs_on_namespaces(fabric: &Fabric, diagnostics: &mut Vec<Diagnostic>) {
    for item in fabric.of_kind_named("runs-on").into_iter().map(|id| fabric.item(id)) {
        let (Some(Typed::Ref { target: Some(temporal), .. }), Some(val)) =
            (item.args.first().map(|v| &v.value), item.prop("namespace"))
        else {
            continue;
        };
        let Typed::Str(namespace) = &val.value else { continue };
        let Some(temporal_name) = &fabric.item(*temporal).name else { continue };
        if fabric.lookup("temporal/namespace", &format!("{}/{namespace}", temporal_name.qualified)).is_some() {
            continue;
        }
        let declared: Vec<&str> = fabric
            .item(*temporal)
            .children
            .iter()
            .filter_map(|&c| fabric.item(c).name.as_ref().filter(|_| &*fabric.item(c).kind == "temporal/namespace"))
            .map(|n| n.text())
            .collect();
        let mut d = Diagnostic::new(
            codes::UNKNOWN_REFERENCE,
            val.span,
            format!("temporal \"{}\" has no namespace `{namespace}`", temporal_name.qualified),
        )
        .with_primary_label("not declared in that Temporal cluster");
        d = match closest(namespace, declared.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("replace with \"{s}\""),
                val.span,
                format!("\"{s}\""),
            ),
            None if declared.is_empty() => d.with_help(format!(
                "declare it inside the cluster: temporal \"{}\" {{ namespace \"{namespace}\" }}",
                temporal_name.qualified
            )),
            None => d.with_help(format!("its namespaces: {}", declared.join(", "))),
        };
        diagnostics.push(d);
    }
}

/// Where a value sits in its item.
#[derive(Clone, Copy)]
enum Slot {
    Arg(usize),
    Prop(usize),
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
    d = match closest(name, candidates.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")).with_fix(
            format!("replace with \"{s}\""),
            span,
            format!("\"{s}\""),
        ),
        None if candidates.is_empty() => d.with_help(format!("declare a {wanted} named `{name}`")),
        None => d.with_help(format!("declared {wanted}s: {}", some_of(candidates))),
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
            let mut d =
                Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("nothing is declared with the name `{text}`"))
                    .with_primary_label("not declared");
            d = match closest(text, candidates.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")).with_fix(
                    format!("replace with \"{s}\""),
                    span,
                    format!("\"{s}\""),
                ),
                None => d.with_help(format!("declare `{text}`, or remove it from `depends-on`")),
            };
            diagnostics.push(d);
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
