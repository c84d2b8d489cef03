//! The Fabric IR: every node of every file, lowered against the schema.
//!
//! Each item keeps the schema path of its kind, its declared name (if it
//! declares one), its typed values with their spans, and its place in the
//! tree. References are resolved to item ids by the checker's `resolve`.
//!
//! Architecture Invariant: the IR says what the spec means. Values are
//! parsed (sizes, durations, cron schedules, conditions, URIs, MIG profiles,
//! secret sources), schema defaults are filled in, and no secret literal is
//! ever stored: a value in a secret position is the name of a declared
//! `secret` or nothing.

pub mod registry;
pub mod values;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};

use sovereign_diagnostics::Span;

/// Index of an item in [`Fabric::items`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId(pub u32);

/// The checked spec.
#[derive(Clone, Debug, Default)]
pub struct Fabric {
    /// Items in load order: files depth-first by import, nodes in source order.
    pub items: Vec<Item>,
    /// Declarations by kind path (`site`, `site/fleet`) and qualified name
    /// (`fra`, `field/tablets`). Look up with [`Fabric::lookup`]; its
    /// iteration order is unspecified, so sort before showing anything.
    pub names: HashMap<DeclKey, ItemId>,
    /// Items by kind path, in load order: passes visit the kinds they need
    /// instead of scanning every item (which streamed the whole IR through
    /// memory once per kind).
    pub by_kind: BTreeMap<Arc<str>, Vec<ItemId>>,
    /// The schema's defaults for `max=1` children a node leaves out
    /// (`replicas 1` of a serve), by child kind path (`serve/replicas`):
    /// read with [`Fabric::child_value`]. One entry per kind, not per item,
    /// and no synthetic items (a fifth more items made every pass slower).
    pub default_children: HashMap<Arc<str>, ValueKind>,
}

/// The key of a declaration: its kind path and qualified name, shared with the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclKey {
    pub kind: Arc<str>,
    pub name: Arc<str>,
}

impl Hash for DeclKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        DeclQuery(&self.kind, &self.name).hash(state);
    }
}

/// A borrowed [`DeclKey`], so that lookups allocate nothing.
#[derive(Hash)]
struct DeclQuery<'a>(&'a str, &'a str);

impl Equivalent<DeclKey> for DeclQuery<'_> {
    fn equivalent(&self, key: &DeclKey) -> bool {
        *self.0 == *key.kind && *self.1 == *key.name
    }
}

/// One node of the spec.
#[derive(Clone, Debug)]
pub struct Item {
    /// The schema path of the node's kind, such as `serve` or `site/node`.
    pub kind: Arc<str>,
    pub name: Option<Name>,
    pub parent: Option<ItemId>,
    pub children: Box<[ItemId]>,
    /// Positional values after the name.
    pub args: Box<[Value]>,
    /// Properties sorted by key (the last one given wins). A slice, not a
    /// map: nodes have few properties and there are many nodes. Boxed
    /// slices (not vectors) keep an item at 136 bytes.
    pub props: Box<[(Arc<str>, Value)]>,
    /// The node's span.
    pub span: Span,
    /// The span of the node's name (its kind keyword).
    pub keyword_span: Span,
}

/// A declared name.
#[derive(Clone, Debug)]
pub struct Name {
    /// `parent/name` for nested declarations, else the name.
    pub qualified: Arc<str>,
    /// Where the name itself starts in `qualified` (one string, not two).
    pub offset: u32,
    pub span: Span,
}

impl Name {
    /// The name as written, without its parent.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.qualified[self.offset as usize..]
    }
}

/// A typed value and where it was written (for a schema default, the
/// node's keyword: where the value would have been written).
#[derive(Clone, Debug)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
    /// `true` when the spec left it out and the schema's default was used.
    pub defaulted: bool,
}

/// A value after type checking.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// A string, an enum value, a path or a catalog name. Shared: the
    /// words of enums and catalogs are interned while lowering (a large
    /// spec says `eu-central` thousands of times), and the model shares them.
    Str(Arc<str>),
    Int(i64),
    Num(f64),
    Bool(bool),
    /// A memory or storage size in bytes.
    Bytes(u64),
    /// A duration in milliseconds.
    Millis(u64),
    /// A reference by name; `target` is filled in by name resolution.
    Ref {
        name: Arc<str>,
        kinds: Arc<[String]>,
        target: Option<ItemId>,
        /// The argument of the same item whose target the name is relative
        /// to: `runs-on "metabolism" namespace="evals"` is `metabolism/evals`.
        relative_to: Option<u32>,
    },
    /// A secret reference. The text is kept only when it names a declared
    /// secret, so a literal secret never survives into the IR.
    Secret {
        name: Option<Arc<str>>,
        target: Option<ItemId>,
    },
    Cron(Box<values::Cron>),
    Condition(Box<values::Condition>),
    Uri(Box<values::Uri>),
    MigProfile(values::MigProfile),
    SecretSource(Box<values::SecretSource>),
}

impl Value {
    #[must_use]
    pub fn new(kind: ValueKind, span: Span) -> Value {
        Value { kind, span, defaulted: false }
    }

    /// The text of a string, enum, path or catalog value.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The resolved target of a reference.
    #[must_use]
    pub fn target(&self) -> Option<ItemId> {
        match self.kind {
            ValueKind::Ref { target, .. } | ValueKind::Secret { target, .. } => target,
            _ => None,
        }
    }
}

impl Item {
    /// The span of the item's name, or of its keyword when it declares none.
    #[must_use]
    pub fn name_span(&self) -> Span {
        self.name.as_ref().map_or(self.keyword_span, |n| n.span)
    }

    /// The value of property `key`, if given.
    #[must_use]
    pub fn prop(&self, key: &str) -> Option<&Value> {
        self.props.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &self.props[i].1)
    }
}

impl Fabric {
    #[must_use]
    pub fn item(&self, id: ItemId) -> &Item {
        &self.items[id.0 as usize]
    }

    /// The top-level declaration an item belongs to (itself when top-level).
    #[must_use]
    pub fn root_of(&self, mut id: ItemId) -> ItemId {
        while let Some(parent) = self.item(id).parent {
            id = parent;
        }
        id
    }

    /// The declaration of kind path `kind` named `name` (qualified).
    #[must_use]
    pub fn lookup(&self, kind: &str, name: &str) -> Option<ItemId> {
        self.names.get(&DeclQuery(kind, name)).copied()
    }

    /// The declarations of the given kind paths (every kind when `None`), as
    /// (kind, qualified name), sorted: for messages and completion lists.
    #[must_use]
    pub fn declarations(&self, kinds: Option<&[String]>) -> Vec<(&str, &str)> {
        let mut keys: Vec<(&str, &str)> = self
            .names
            .keys()
            .filter(|k| kinds.is_none_or(|kinds| kinds.iter().any(|wanted| **wanted == *k.kind)))
            .map(|k| (&*k.kind, &*k.name))
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Items of a kind path, in load order.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (ItemId, &'a Item)> + 'a {
        self.by_kind.get(kind).into_iter().flatten().map(|&id| (id, self.item(id)))
    }

    /// Items of every kind path whose last segment is `name` (`depends-on`
    /// under any kind), in load order.
    #[must_use]
    pub fn of_kind_named(&self, name: &str) -> Vec<ItemId> {
        let mut ids: Vec<ItemId> = self
            .by_kind
            .iter()
            .filter(|(kind, _)| kind.rsplit('/').next() == Some(name))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The first argument of the `max=1` child of kind path `kind` (`serve/replicas`):
    /// as written, or the schema's default when the child is left out
    /// (marked `defaulted`, spanned at the parent's keyword).
    #[must_use]
    pub fn child_value(&self, parent: ItemId, kind: &str) -> Option<Value> {
        let item = self.item(parent);
        match item.children.iter().map(|&c| self.item(c)).find(|c| *c.kind == *kind) {
            Some(child) => child.args.first().cloned(),
            None => self.default_children.get(kind).map(|default| Value {
                kind: default.clone(),
                span: item.keyword_span,
                defaulted: true,
            }),
        }
    }

    /// Appends an item, keeping the kind index.
    pub fn push(&mut self, item: Item) -> ItemId {
        let id = ItemId(u32::try_from(self.items.len()).unwrap_or(u32::MAX));
        match self.by_kind.get_mut(&*item.kind) {
            Some(ids) => ids.push(id),
            None => {
                self.by_kind.insert(item.kind.clone(), vec![id]);
            }
        }
        self.items.push(item);
        id
    }

    /// The name of an item for people: its qualified name when it declares
    /// one; for an unnamed one (an `export "logfire"`), its parent's name
    /// and its first argument (`autopilot/logfire`); else its kind.
    #[must_use]
    pub fn name_of(&self, id: ItemId) -> String {
        let item = self.item(id);
        if let Some(name) = &item.name {
            return name.qualified.to_string();
        }
        match (item.parent, item.args.first().and_then(Value::as_str)) {
            (Some(parent), Some(arg)) => format!("{}/{arg}", self.name_of(parent)),
            (None, Some(arg)) => arg.to_owned(),
            _ => item.kind.to_string(),
        }
    }

    /// A readable label such as `serve "chat"`.
    #[must_use]
    pub fn describe(&self, id: ItemId) -> String {
        let item = self.item(id);
        let kind = item.kind.rsplit('/').next().unwrap_or(&item.kind);
        match &item.name {
            Some(name) => format!("{kind} \"{}\"", name.qualified),
            None => kind.to_owned(),
        }
    }
}
