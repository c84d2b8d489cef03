//! Name resolution: the table of declared names, duplicates, references to
//! nothing or to the wrong kind, `depends-on`, secrets written as literals,
//! and the presence of a `fabric` (`SOV3001`–`SOV3004`, `SOV3006`, `SOV3009`).

use std::collections::BTreeMap;

use sovereign_diagnostics::{Diagnostic, Span, closest, codes};

use crate::ir::{Fabric, ItemId, Typed};

/// Fills `fabric.names` and resolves every reference in place.
pub fn resolve(fabric: &mut Fabric, root_span: Span, diagnostics: &mut Vec<Diagnostic>) {
    declare(fabric, diagnostics);
    if fabric.of_kind("fabric").next().is_none() {
        diagnostics.push(
            Diagnostic::new(codes::MISSING_FABRIC, root_span, "this spec has no `fabric` declaration")
                .with_help("add `fabric \"my-fabric\" { residency \"eu\" }` to the root file"),
        );
    }
    // Reverse index for "wrong kind" and depends-on: name -> declarations.
    let mut by_name: BTreeMap<&str, Vec<(&str, ItemId)>> = BTreeMap::new();
    for ((kind, name), id) in &fabric.names {
        by_name.entry(name.as_str()).or_default().push((kind.as_str(), *id));
    }
    let mut resolutions: Vec<(ItemId, Option<String>, usize, Typed)> = Vec::new();
    for (index, item) in fabric.items.iter().enumerate() {
        let id = ItemId(index as u32);
        let values = item
            .args
            .iter()
            .enumerate()
            .map(|(i, v)| (None, i, v))
            .chain(item.props.iter().map(|(k, v)| (Some(k.to_string()), 0, v)));
        for (key, position, val) in values {
            let resolved = match &val.value {
                Typed::Ref { name, kinds, .. } if kinds.is_empty() => {
                    resolve_any(fabric, &by_name, name, val.span, diagnostics)
                }
                Typed::Ref { name, kinds, .. } => resolve_kind(fabric, &by_name, name, kinds, val.span, diagnostics),
                Typed::Secret { name: Some(name), .. } => {
                    let target = fabric.names.get(&("secret".to_owned(), name.clone())).copied();
                    if target.is_none() {
                        secret_not_declared(fabric, name, val.span, diagnostics);
                    }
                    resolutions.push((id, key, position, Typed::Secret { name: target.map(|_| name.clone()), target }));
                    continue;
                }
                _ => continue,
            };
            if let Typed::Ref { name, kinds, .. } = &val.value {
                resolutions.push((
                    id,
                    key,
                    position,
                    Typed::Ref { name: name.clone(), kinds: kinds.clone(), target: resolved },
                ));
            }
        }
    }
    for (id, key, position, typed) in resolutions {
        let item = &mut fabric.items[id.0 as usize];
        let slot = match key {
            Some(key) => item.props.iter_mut().find(|(k, _)| **k == *key).map(|(_, v)| v),
            None => item.args.get_mut(position),
        };
        if let Some(slot) = slot {
            slot.value = typed;
        }
    }
}

fn declare(fabric: &mut Fabric, diagnostics: &mut Vec<Diagnostic>) {
    let mut singleton_seen: Option<Span> = None;
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
        let key = (item.kind.to_string(), name.qualified.clone());
        if let Some(existing) = fabric.names.get(&key) {
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
        fabric.names.insert(key, crate::ir::ItemId(index as u32));
    }
}

fn kind_word(kind: &str) -> &str {
    kind.rsplit('/').next().unwrap_or(kind)
}

fn resolve_kind(
    fabric: &Fabric,
    by_name: &BTreeMap<&str, Vec<(&str, ItemId)>>,
    name: &str,
    kinds: &[String],
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ItemId> {
    for kind in kinds {
        if let Some(id) = fabric.names.get(&(kind.clone(), name.to_owned())) {
            return Some(*id);
        }
    }
    let wanted = kinds.iter().map(|k| kind_word(k)).collect::<Vec<_>>().join(" or ");
    if let Some(others) = by_name.get(name) {
        let (other_kind, other_id) = others[0];
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
    let candidates: Vec<&str> =
        fabric.names.keys().filter(|(k, _)| kinds.contains(k)).map(|(_, n)| n.as_str()).collect();
    let mut d = Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("no {wanted} named `{name}`"))
        .with_primary_label("not declared");
    d = match closest(name, candidates.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")).with_fix(
            format!("replace with \"{s}\""),
            span,
            format!("\"{s}\""),
        ),
        None if candidates.is_empty() => d.with_help(format!("declare a {wanted} named `{name}`")),
        None => d.with_help(format!("declared {wanted}s: {}", candidates.join(", "))),
    };
    if kinds.iter().any(|k| k.contains('/')) && !name.contains('/') {
        d = d.with_help(format!("nested declarations are named with their parent: `parent/{name}`"));
    }
    diagnostics.push(d);
    None
}

fn resolve_any(
    fabric: &Fabric,
    by_name: &BTreeMap<&str, Vec<(&str, ItemId)>>,
    text: &str,
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ItemId> {
    if let Some((kind, name)) = text.split_once(':') {
        return resolve_kind(fabric, by_name, name, &[kind.to_owned()], span, diagnostics);
    }
    match by_name.get(text).map(Vec::as_slice) {
        Some([(_, id)]) => Some(*id),
        Some(several) => {
            let mut d = Diagnostic::new(
                codes::AMBIGUOUS_REFERENCE,
                span,
                format!("`{text}` names declarations of several kinds"),
            )
            .with_primary_label("ambiguous");
            for (kind, id) in several {
                if let Some(name) = &fabric.item(*id).name {
                    d = d.with_label(name.span, format!("a {}", kind_word(kind)));
                }
            }
            let (first_kind, _) = several[0];
            d = d.with_help(format!("qualify it with its kind, such as \"{first_kind}:{text}\""));
            diagnostics.push(d);
            None
        }
        None => {
            let candidates: Vec<&str> = by_name.keys().copied().collect();
            let mut d =
                Diagnostic::new(codes::UNKNOWN_REFERENCE, span, format!("nothing is declared with the name `{text}`"))
                    .with_primary_label("not declared");
            if let Some(s) = closest(text, candidates) {
                d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                    format!("replace with \"{s}\""),
                    span,
                    format!("\"{s}\""),
                );
            }
            diagnostics.push(d);
            None
        }
    }
}

fn secret_not_declared(fabric: &Fabric, text: &str, span: Span, diagnostics: &mut Vec<Diagnostic>) {
    let secrets: Vec<&str> = fabric.names.keys().filter(|(k, _)| k == "secret").map(|(_, n)| n.as_str()).collect();
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
    diagnostics.push(
        Diagnostic::new(codes::SECRET_LITERAL, span, "a secret must be referenced by the name of a declared `secret`, not written here")
            .with_primary_label("this text is not the name of a declared secret (not shown)")
            .with_help("declare it as `secret \"my-token\" from=\"env:MY_TOKEN\"` and write token=\"my-token\"; if this was a real credential, rotate it")
            .redacted(),
    );
}
