//! Reading the typed model from a resolved IR.
//!
//! Ids are given first (every declaration of a kind in load order), so a
//! reference to something declared later (a serve's `uses`) is typed like
//! any other. The IR is error-free here and its defaults are filled in, so
//! a missing value or an unknown enum word can only come from a `--stdlib`
//! schema this binary does not match: `SOV2019`, and no model.

use std::sync::Arc;

use sovereign_diagnostics::{Diagnostic, Span, codes};
use sovereign_ir::{Fabric, Item, ItemId, Value, ValueKind};

use crate::*;

/// Reads the model of a fabric that checked without errors.
pub fn read(fabric: &Fabric) -> Result<Spec, Vec<Diagnostic>> {
    let mut reader = Reader { fabric, decls: Decls::with_items(fabric.items.len()), problems: Vec::new() };
    reader.assign_ids();
    let mut spec = Spec::default();
    reader.read_all(&mut spec);
    if reader.problems.is_empty() {
        spec.decls = reader.decls;
        Ok(spec)
    } else {
        Err(reader.problems)
    }
}

struct Reader<'f> {
    fabric: &'f Fabric,
    decls: Decls,
    problems: Vec<Diagnostic>,
}

/// A value's payload, if it is of the expected shape.
type Extract<T> = fn(&ValueKind) -> Option<T>;

fn text(kind: &ValueKind) -> Option<Arc<str>> {
    match kind {
        ValueKind::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn count(kind: &ValueKind) -> Option<u32> {
    match kind {
        ValueKind::Int(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

fn long(kind: &ValueKind) -> Option<u64> {
    match kind {
        ValueKind::Int(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}

fn number(kind: &ValueKind) -> Option<f64> {
    match kind {
        ValueKind::Num(v) => Some(*v),
        ValueKind::Int(v) => Some(*v as f64),
        _ => None,
    }
}

fn flag(kind: &ValueKind) -> Option<bool> {
    match kind {
        ValueKind::Bool(b) => Some(*b),
        _ => None,
    }
}

fn bytes(kind: &ValueKind) -> Option<u64> {
    match kind {
        ValueKind::Bytes(b) => Some(*b),
        _ => None,
    }
}

fn millis(kind: &ValueKind) -> Option<u64> {
    match kind {
        ValueKind::Millis(ms) => Some(*ms),
        _ => None,
    }
}

fn uri(kind: &ValueKind) -> Option<Uri> {
    match kind {
        ValueKind::Uri(uri) => Some((**uri).clone()),
        _ => None,
    }
}

fn spanned<T>(value: T, from: &Value) -> Spanned<T> {
    Spanned { value, span: from.span, defaulted: from.defaulted }
}

impl<'f> Reader<'f> {
    fn assign_ids(&mut self) {
        let fabric = self.fabric;
        let top = |kind: &'static str| fabric.of_kind(kind).enumerate();
        for (_, (id, _)) in top("fabric") {
            self.decls.insert(id, Decl::Fabric);
        }
        for (i, (id, item)) in top("site") {
            let site = Id::from_index(i);
            self.decls.insert(id, Decl::Site(site));
            let mut counts = [0u32; 3];
            for &child in &item.children {
                let slot = match &*fabric.item(child).kind {
                    "site/node" => 0,
                    "site/pool" => 1,
                    "site/fleet" => 2,
                    _ => continue,
                };
                let index = counts[slot];
                counts[slot] += 1;
                let decl = match slot {
                    0 => Decl::Node(NodeId { parent: site, index }),
                    1 => Decl::Pool(PoolId { parent: site, index }),
                    _ => Decl::Fleet(FleetId { parent: site, index }),
                };
                self.decls.insert(child, decl);
            }
        }
        macro_rules! top_level {
            ($kind:literal, $variant:ident) => {
                for (i, (id, _)) in top($kind) {
                    self.decls.insert(id, Decl::$variant(Id::from_index(i)));
                }
            };
        }
        top_level!("model", Model);
        top_level!("secret", Secret);
        top_level!("ledger", Ledger);
        top_level!("dataset", Dataset);
        top_level!("serve", Serve);
        top_level!("edge", Edge);
        macro_rules! with_children {
            ($kind:literal, $variant:ident, $child:literal, $child_variant:ident, $child_id:ident) => {
                for (i, (id, item)) in top($kind) {
                    let parent = Id::from_index(i);
                    self.decls.insert(id, Decl::$variant(parent));
                    let children = item.children.iter().filter(|&&c| &*fabric.item(c).kind == $child);
                    for (index, &child) in children.enumerate() {
                        let index = u32::try_from(index).unwrap_or(u32::MAX);
                        self.decls.insert(child, Decl::$child_variant($child_id { parent, index }));
                    }
                }
            };
        }
        with_children!("temporal", Temporal, "temporal/namespace", Namespace, NamespaceId);
        with_children!("observe", Observe, "observe/export", Export, ExportId);
        with_children!("vectorstore", VectorStore, "vectorstore/collection", Collection, CollectionId);
        with_children!("eval", Eval, "eval/metric", Metric, MetricId);
    }

    fn read_all(&mut self, spec: &mut Spec) {
        let fabric = self.fabric;
        if let Some((id, item)) = fabric.of_kind("fabric").next() {
            spec.fabric = self.fabric_decl(id, item);
        }
        macro_rules! read_kind {
            ($kind:literal, $arena:ident, $read:ident) => {
                // Sized exactly: a doubling arena wastes up to half of a large spec's model.
                spec.$arena = Arena::with_capacity(fabric.by_kind.get($kind).map_or(0, Vec::len));
                for (id, item) in fabric.of_kind($kind) {
                    if let Some(value) = self.$read(id, item) {
                        spec.$arena.push(value);
                    }
                }
            };
        }
        read_kind!("site", sites, site);
        read_kind!("model", models, model);
        read_kind!("secret", secrets, secret);
        read_kind!("ledger", ledgers, ledger);
        read_kind!("dataset", datasets, dataset);
        read_kind!("temporal", temporals, temporal);
        read_kind!("observe", observes, observe);
        read_kind!("serve", serves, serve);
        read_kind!("vectorstore", vectorstores, vectorstore);
        read_kind!("eval", evals, eval);
        read_kind!("edge", edges, edge);
    }

    // --- Reading values -------------------------------------------------

    fn mismatch(&mut self, span: Span, message: String) {
        self.problems.push(Diagnostic::new(codes::SCHEMA_MISMATCH, span, message).with_help(
            "use the stdlib of this sovereign version (drop --stdlib), or a sovereign that knows this schema",
        ));
    }

    fn describe(item: &Item) -> String {
        let kind = item.kind.rsplit('/').next().unwrap_or(&item.kind);
        match &item.name {
            Some(name) => format!("{kind} \"{}\"", name.qualified),
            None => format!("`{kind}`"),
        }
    }

    /// An optional value; a value of the wrong shape is a mismatch.
    fn optional<T>(
        &mut self,
        item: &Item,
        value: Option<&Value>,
        what: &str,
        extract: Extract<T>,
    ) -> Option<Spanned<T>> {
        let value = value?;
        match extract(&value.kind) {
            Some(v) => Some(spanned(v, value)),
            None => {
                let message = format!("{}: `{what}` is not of the type sovereign reads it as", Self::describe(item));
                self.mismatch(value.span, message);
                None
            }
        }
    }

    /// The value, or a mismatch when the schema let it be left out.
    fn present<'v>(&mut self, item: &Item, value: Option<&'v Value>, what: &str) -> Option<&'v Value> {
        if value.is_none() {
            let message = format!(
                "{} has no `{what}`: the schema lets it be left out, but sovereign needs it",
                Self::describe(item)
            );
            self.mismatch(item.keyword_span, message);
        }
        value
    }

    fn required<T>(
        &mut self,
        item: &Item,
        value: Option<&Value>,
        what: &str,
        extract: Extract<T>,
    ) -> Option<Spanned<T>> {
        let value = self.present(item, value, what)?;
        self.optional(item, Some(value), what, extract)
    }

    fn prop<T>(&mut self, item: &Item, key: &str, extract: Extract<T>) -> Option<Spanned<T>> {
        self.optional(item, item.prop(key), key, extract)
    }

    fn required_prop<T>(&mut self, item: &Item, key: &str, extract: Extract<T>) -> Option<Spanned<T>> {
        self.required(item, item.prop(key), key, extract)
    }

    /// An enum word the binary must know.
    fn word<E>(
        &mut self,
        item: &Item,
        value: Option<&Value>,
        what: &str,
        parse: fn(&str) -> Option<E>,
    ) -> Option<Spanned<E>> {
        let word = self.optional(item, value, what, text)?;
        match parse(&word.value) {
            Some(e) => Some(Spanned { value: e, span: word.span, defaulted: word.defaulted }),
            None => {
                let message = format!(
                    "`{}` is allowed for `{what}` by the schema, but this version of sovereign gives it no meaning",
                    word.value
                );
                self.mismatch(word.span, message);
                None
            }
        }
    }

    fn required_word<E>(
        &mut self,
        item: &Item,
        value: Option<&Value>,
        what: &str,
        parse: fn(&str) -> Option<E>,
    ) -> Option<Spanned<E>> {
        let value = self.present(item, value, what)?;
        self.word(item, Some(value), what, parse)
    }

    /// The first child of kind `kind` (a full schema path).
    fn child(&self, item: &Item, kind: &str) -> Option<(ItemId, &'f Item)> {
        let fabric = self.fabric;
        item.children.iter().map(|&c| (c, fabric.item(c))).find(|(_, c)| &*c.kind == kind)
    }

    fn children(&self, item: &'f Item, kind: &'f str) -> impl Iterator<Item = (ItemId, &'f Item)> + 'f {
        let fabric = self.fabric;
        item.children.iter().map(move |&c| (c, fabric.item(c))).filter(move |(_, c)| &*c.kind == kind)
    }

    /// The first argument of the `max=1` child `kind` (a full schema path), or its default.
    fn child_arg(&self, item: ItemId, kind: &str) -> Option<Value> {
        self.fabric.child_value(item, kind)
    }

    /// The declaration a reference resolved to.
    fn target(&mut self, item: &Item, value: &Value, what: &str) -> Option<Decl> {
        let decl = value.target().and_then(|t| self.decls.get(t));
        if decl.is_none() {
            let message = format!("{}: `{what}` does not name a declaration sovereign reads", Self::describe(item));
            self.mismatch(value.span, message);
        }
        decl
    }

    /// A reference that must resolve to declarations of one kind.
    fn reference<T>(
        &mut self,
        item: &Item,
        value: Option<&Value>,
        what: &str,
        pick: fn(Decl) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let value = value?;
        let decl = self.target(item, value, what)?;
        match pick(decl) {
            Some(id) => Some(spanned(id, value)),
            None => {
                let message = format!("{}: `{what}` names a declaration of another kind", Self::describe(item));
                self.mismatch(value.span, message);
                None
            }
        }
    }

    fn required_reference<T>(
        &mut self,
        item: &Item,
        value: Option<&Value>,
        what: &str,
        pick: fn(Decl) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let value = self.present(item, value, what)?;
        self.reference(item, Some(value), what, pick)
    }

    fn depends_on(&mut self, item: &'f Item, kind: &'f str) -> Vec<Spanned<ItemId>> {
        let mut out = Vec::with_capacity(self.children(item, kind).map(|(_, c)| c.args.len()).sum());
        for (_, child) in self.children(item, kind) {
            for value in &child.args {
                if let Some(target) = value.target() {
                    out.push(spanned(target, value));
                }
            }
        }
        out
    }

    fn name(item: &Item) -> Name {
        match &item.name {
            Some(name) => Name { qualified: name.qualified.clone(), span: name.span },
            None => Name { qualified: item.kind.clone(), span: item.keyword_span },
        }
    }
}

mod kinds;
