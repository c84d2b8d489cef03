//! Lowering: one KDL document to IR items, checked against the schema.
//!
//! Reports unknown nodes and properties, wrong types, missing values,
//! disallowed values, malformed quantities, durations, schedules, regions,
//! names, URIs and conditions (`SOV2xxx`). References stay unresolved here.

use std::collections::BTreeMap;
use std::sync::Arc;

use sovereign_catalog::EntryKind;
use sovereign_diagnostics::{Diagnostic, Span, closest, codes};
use sovereign_syntax::ast::{Literal, LiteralKind, Node, NumberForm};

use crate::schema::{Field, NodeDef, Schema, Type};
use sovereign_ir::values::{self, Condition, Cron, MigProfile, SecretSource, Uri};
use sovereign_ir::{Fabric, Item, ItemId, Name, Value, ValueKind};

/// An `import` found while lowering: the path as written and its span.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub path: String,
    pub span: Span,
}

/// Texts written where a declared secret's name belongs, by the span of
/// their value, kept beside the IR (never in it) until resolution tells a
/// declared secret's name from a literal credential: so a literal never
/// enters the IR, not even between lowering and resolution.
#[derive(Debug, Default)]
pub struct SecretNames(pub(crate) hashbrown::HashMap<Span, String>);

/// The words of enums and catalogs, one allocation each however often a
/// spec repeats them.
#[derive(Debug, Default)]
pub struct Words(hashbrown::HashSet<Arc<str>>);

impl Words {
    fn intern(&mut self, word: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(word) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(word);
        self.0.insert(shared.clone());
        shared
    }
}

/// Lowers top-level nodes one at a time, so that the loader can drop each
/// node's tree as soon as it is lowered (see `sovereign_syntax::parse_each`).
pub struct Lower<'s, 'f> {
    schema: &'s Schema,
    fabric: &'f mut Fabric,
    diagnostics: &'f mut Vec<Diagnostic>,
    secret_names: &'f mut SecretNames,
    words: &'f mut Words,
    imports: Vec<ImportRequest>,
}

impl<'s, 'f> Lower<'s, 'f> {
    pub fn new(
        schema: &'s Schema,
        fabric: &'f mut Fabric,
        diagnostics: &'f mut Vec<Diagnostic>,
        secret_names: &'f mut SecretNames,
        words: &'f mut Words,
    ) -> Self {
        Lower { schema, fabric, diagnostics, secret_names, words, imports: Vec::new() }
    }

    /// Lowers one top-level node.
    pub fn top_level(&mut self, node: &Node<'_>) {
        self.annotations(node);
        match self.schema.kind(&node.name.text) {
            Some(def) => {
                let id = self.node(node, def, None);
                if node.name.text == "import"
                    && let Some(Value { kind: ValueKind::Str(path), span, .. }) = self.fabric.item(id).args.first()
                {
                    self.imports.push(ImportRequest { path: path.to_string(), span: *span });
                }
            }
            None => {
                let schema = self.schema;
                self.unknown_node(node, schema.kinds.iter().map(|k| k.name.as_str()), "at the top of a spec");
            }
        }
    }

    /// The imports the lowered nodes asked for, in order.
    #[must_use]
    pub fn into_imports(self) -> Vec<ImportRequest> {
        self.imports
    }
}

impl Lower<'_, '_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn annotations(&mut self, node: &Node<'_>) {
        let mut spans: Vec<Span> = node.annotation.iter().map(|a| a.span).collect();
        spans.extend(node.entries.iter().filter_map(|e| e.value.annotation.as_ref().map(|a| a.span)));
        for span in spans {
            self.push(
                Diagnostic::new(
                    codes::IGNORED_TYPE_ANNOTATION,
                    span,
                    "type annotations have no meaning in a fabric spec",
                )
                .with_primary_label("ignored")
                .with_help("remove the `(…)`; the schema already fixes every value's type"),
            );
        }
    }

    fn unknown_node<'c>(
        &mut self,
        node: &Node<'_>,
        candidates: impl IntoIterator<Item = &'c str> + Clone,
        place: &str,
    ) {
        let name = node.name.text.as_ref();
        let mut diagnostic =
            Diagnostic::new(codes::UNKNOWN_NODE, node.name.span, format!("unknown node `{name}` {place}"))
                .with_primary_label("not defined by the schema here");
        let known: Vec<&str> = candidates.clone().into_iter().collect();
        if let Some(suggestion) = closest(name, candidates) {
            diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?")).with_fix(
                format!("replace with `{suggestion}`"),
                node.name.span,
                suggestion,
            );
        } else if known.is_empty() {
            diagnostic = diagnostic.with_help("this node takes no children");
        } else {
            diagnostic = diagnostic.with_help(format!("expected one of: {}", known.join(", ")));
        }
        self.push(diagnostic);
    }

    fn node(&mut self, node: &Node<'_>, def: &NodeDef, parent: Option<ItemId>) -> ItemId {
        let id = ItemId(u32::try_from(self.fabric.items.len()).unwrap_or(u32::MAX));
        let mut item = Item {
            kind: def.path.clone(),
            name: None,
            parent,
            children: Box::default(),
            args: Box::default(),
            props: Box::default(),
            span: node.span,
            keyword_span: node.name.span,
        };
        // Sized exactly: most nodes have one or two of each, and the default
        // growth would reserve four.
        let mut args: Vec<Value> = Vec::with_capacity(
            node.entries.iter().filter(|e| e.key.is_none()).count().saturating_sub(usize::from(def.declares)),
        );
        let mut props: Vec<(Arc<str>, Value)> =
            Vec::with_capacity(node.entries.iter().filter(|e| e.key.is_some()).count());
        let mut arguments = node.arguments().peekable();
        if def.declares {
            match arguments.next() {
                Some(value) => match &value.kind {
                    LiteralKind::String(text) => {
                        if let Err(reason) = values::check_name(text) {
                            let mut d = Diagnostic::new(codes::INVALID_NAME, value.span, format!("`{text}` is not a valid name: {reason}"))
                                .with_help("names become Kubernetes object names: lowercase letters, digits, `-` and `.`, starting with a letter, at most 63 characters");
                            if let Some(fixed) = values::suggest_name(text) {
                                d = d.with_fix(format!("rename to `{fixed}`"), value.span, format!("\"{fixed}\""));
                            }
                            self.push(d);
                        }
                        let (qualified, offset) = match parent.and_then(|p| self.fabric.item(p).name.as_ref()) {
                            Some(parent_name) => {
                                let offset = u32::try_from(parent_name.qualified.len() + 1).unwrap_or(u32::MAX);
                                (format!("{}/{text}", parent_name.qualified).into(), offset)
                            }
                            None => (Arc::from(&**text), 0),
                        };
                        item.name = Some(Name { qualified, offset, span: value.span });
                    }
                    other => self.push(
                        Diagnostic::new(
                            codes::WRONG_TYPE,
                            value.span,
                            format!("the name of a `{}` must be a string, not {}", def.name, other.type_name()),
                        )
                        .with_help(format!("write {} \"my-name\"", def.name)),
                    ),
                },
                None if node.has_errors => {}
                None => self.push(
                    Diagnostic::new(codes::MISSING_VALUE, node.name.span, format!("`{}` needs a name", def.name))
                        .with_primary_label("no name given")
                        .with_help(format!("write {} \"my-name\" …", def.name)),
                ),
            }
        }
        // Positional arguments.
        let mut index = 0;
        for value in arguments {
            let Some(arg_def) = def.args.get(index).or_else(|| def.args.last().filter(|a| a.variadic)) else {
                let takes = match def.args.len() {
                    0 if def.declares => "only a name".to_owned(),
                    0 => "no arguments".to_owned(),
                    1 => "one argument".to_owned(),
                    n => format!("{n} arguments"),
                };
                self.push(
                    Diagnostic::new(
                        codes::UNEXPECTED_ARGUMENT,
                        value.span,
                        format!("unexpected argument: `{}` takes {takes}", def.name),
                    )
                    .with_primary_label("extra argument")
                    .with_help("remove it, or give it as a property (key=value)"),
                );
                continue;
            };
            if let Some(val) = self.value(value, arg_def, What::Argument(&def.name)) {
                args.push(val);
            }
            index += 1;
        }
        if !node.has_errors
            && index < def.args.len()
            && def.args[index].required
            && !(index > 0 && def.args[index].variadic)
        {
            let arg = &def.args[index];
            self.push(
                Diagnostic::new(
                    codes::MISSING_VALUE,
                    node.name.span,
                    format!("`{}` needs an argument: {}", def.name, arg.ty.describe()),
                )
                .with_primary_label("argument missing")
                .with_help(if arg.doc.is_empty() {
                    format!("add it after `{}`", def.name)
                } else {
                    arg.doc.clone()
                }),
            );
        }
        // Properties.
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for entry in &node.entries {
            let Some(key) = &entry.key else { continue };
            let Some((prop_key, prop_def)) = def.props.iter().find(|(k, _)| **k == *key.text) else {
                let mut d = Diagnostic::new(
                    codes::UNKNOWN_PROPERTY,
                    key.span,
                    format!("`{}` has no property `{}`", def.name, key.text),
                )
                .with_primary_label("unknown property");
                if let Some(suggestion) = closest(&key.text, def.props.iter().map(|(k, _)| &**k)) {
                    d = d.with_help(format!("did you mean `{suggestion}`?")).with_fix(
                        format!("replace with `{suggestion}`"),
                        key.span,
                        suggestion,
                    );
                } else if def.props.is_empty() {
                    d = d.with_help(format!("`{}` takes no properties", def.name));
                } else {
                    d = d.with_help(format!(
                        "its properties are: {}",
                        def.props.iter().map(|(k, _)| &**k).collect::<Vec<_>>().join(", ")
                    ));
                }
                self.push(d);
                continue;
            };
            if let Some(first) = seen.insert(key.text.as_ref(), key.span) {
                self.push(
                    Diagnostic::new(
                        codes::DUPLICATE_PROPERTY,
                        key.span,
                        format!("property `{}` is given twice", key.text),
                    )
                    .with_primary_label("given again")
                    .with_label(first, "first given here")
                    .with_help("keep one of them: a fabric spec gives each property once, so no value silently overrides another"),
                );
            }
            if let Some(val) = self.value(&entry.value, prop_def, What::Property(&key.text)) {
                // Sorted by key. A repeated key (an error) is kept beside the
                // first, so that later passes still see every value: a secret
                // literal must be found wherever it stands.
                let at = props.partition_point(|(k, _)| **k <= **prop_key);
                props.insert(at, (prop_key.clone(), val));
            }
        }
        for (key, prop_def) in &def.props {
            if !node.has_errors && prop_def.required && !seen.contains_key(&**key) {
                let example = match &prop_def.ty {
                    Type::Enum(values) => format!("{key}=\"{}\"", values.first().map_or("", String::as_str)),
                    Type::Integer | Type::Number => format!("{key}=1"),
                    _ => format!("{key}=\"…\""),
                };
                self.push(
                    Diagnostic::new(
                        codes::MISSING_VALUE,
                        node.name.span,
                        format!("`{}` needs the property `{key}`", def.name),
                    )
                    .with_primary_label(format!("`{key}` missing"))
                    .with_help(format!("add {example}: {}", prop_def.doc)),
                );
            }
        }
        // The schema's defaults, so the IR says what the spec means. A value
        // given but invalid (already an error) gets no default.
        for &index in &def.defaulted_props {
            let (key, prop_def) = &def.props[index];
            if let Some(default) = &prop_def.default_value
                && !seen.contains_key(&**key)
            {
                let at = props.partition_point(|(k, _)| **k <= **key);
                let value = Value { kind: default.clone(), span: node.name.span, defaulted: true };
                props.insert(at, (key.clone(), value));
            }
        }
        item.args = args.into_boxed_slice();
        item.props = props.into_boxed_slice();
        self.fabric.push(item);
        // Children.
        let mut children: Vec<ItemId> = Vec::with_capacity(node.child_nodes().len());
        let mut counts: BTreeMap<&str, (u32, Span)> = BTreeMap::new();
        for child in node.child_nodes() {
            self.annotations(child);
            let Some(child_def) = def.child(&child.name.text) else {
                let names: Vec<&str> = def.children.iter().map(|c| c.node.name.as_str()).collect();
                self.unknown_node(child, names.iter().copied(), &format!("inside `{}`", def.name));
                continue;
            };
            let count = counts.entry(child_def.node.name.as_str()).or_insert((0, child.name.span));
            count.0 += 1;
            if child_def.max.is_some_and(|max| count.0 > max) {
                let first = count.1;
                self.push(
                    Diagnostic::new(
                        codes::TOO_MANY_CHILDREN,
                        child.name.span,
                        format!(
                            "`{}` may appear at most {} time(s) in `{}`",
                            child.name.text,
                            child_def.max.unwrap_or(0),
                            def.name
                        ),
                    )
                    .with_label(first, "first given here")
                    .with_help("remove the extra one"),
                );
                continue;
            }
            let child_id = self.node(child, &child_def.node, Some(id));
            children.push(child_id);
        }
        // An absent `max=1` child whose argument has a default (`replicas 1`)
        // reads as that default (`Fabric::child_value`): recorded once per kind.
        for &i in &def.defaulted_children {
            let child = &def.children[i].node;
            if !counts.contains_key(child.name.as_str())
                && !self.fabric.default_children.contains_key(&child.path)
                && let Some(default) = child.args.first().and_then(|a| a.default_value.as_ref())
            {
                self.fabric.default_children.insert(child.path.clone(), default.clone());
            }
        }
        self.fabric.items[id.0 as usize].children = children.into_boxed_slice();
        for child_def in &def.children {
            if !node.has_errors && child_def.required && !counts.contains_key(child_def.node.name.as_str()) {
                self.push(
                    Diagnostic::new(
                        codes::MISSING_VALUE,
                        node.name.span,
                        format!("`{}` needs a `{}` child", def.name, child_def.node.name),
                    )
                    .with_primary_label(format!("no `{}` inside", child_def.node.name))
                    .with_help(format!("add `{} …` inside the braces: {}", child_def.node.name, child_def.node.doc)),
                );
            }
        }
        id
    }

    fn wrong_type(&mut self, value: &Literal<'_>, def: &Field, what: What<'_>) {
        let mut d = Diagnostic::new(
            codes::WRONG_TYPE,
            value.span,
            format!("{what} must be {}, not {}", def.ty.describe(), value.kind.type_name()),
        )
        .with_primary_label(format!("expected {}", def.ty.describe()));
        d = match (&def.ty, &value.kind) {
            (ty, LiteralKind::Number(n)) if ty.is_string_like() => {
                d.with_help("quote it to make it a string").with_fix("quote it", value.span, format!("\"{}\"", n.raw))
            }
            (Type::Integer | Type::Number, LiteralKind::String(s)) if s.parse::<f64>().is_ok() => {
                d.with_help("remove the quotes").with_fix("remove the quotes", value.span, s.to_string())
            }
            (Type::Bool, LiteralKind::String(s)) if *s == "true" || *s == "false" => {
                d.with_help(format!("write #{s}")).with_fix(format!("write #{s}"), value.span, format!("#{s}"))
            }
            _ => d.with_help(format!("write {}", def.ty.describe())),
        };
        self.push(d);
    }

    fn invalid(&mut self, code: sovereign_diagnostics::Code, span: Span, message: String, help: &str) {
        self.push(Diagnostic::new(code, span, message).with_help(help));
    }

    fn value(&mut self, value: &Literal<'_>, def: &Field, what: What<'_>) -> Option<Value> {
        let span = value.span;
        let text = value.kind.as_str();
        let typed = match (&def.ty, &value.kind) {
            (Type::Integer, LiteralKind::Number(n)) if matches!(n.form, NumberForm::Integer { .. }) => {
                let Some(v) = n.as_i64() else {
                    self.invalid(
                        codes::VALUE_OUT_OF_RANGE,
                        span,
                        format!("{what} does not fit in a 64-bit integer"),
                        "use a smaller number",
                    );
                    return None;
                };
                self.range(v as f64, def, span, what)?;
                ValueKind::Int(v)
            }
            (Type::Number, LiteralKind::Number(n))
                if !matches!(n.form, NumberForm::NaN | NumberForm::Inf | NumberForm::NegInf) =>
            {
                let v = n.as_f64()?;
                self.range(v, def, span, what)?;
                ValueKind::Num(v)
            }
            (Type::Bool, LiteralKind::Bool(b)) => ValueKind::Bool(*b),
            (ty, LiteralKind::String(_)) if ty.is_string_like() => {
                return self.string_value(text.unwrap_or_default(), span, def, what);
            }
            (Type::Secret | Type::SecretSource, _) => {
                // A number or keyword where a secret's name belongs may be the
                // credential itself: reported without echoing it.
                let mut d = secret_literal(span);
                d.message = format!("{what} must name a declared `secret`, not hold a value");
                self.push(d);
                return None;
            }
            _ => {
                self.wrong_type(value, def, what);
                return None;
            }
        };
        Some(Value::new(typed, span))
    }

    fn range(&mut self, v: f64, def: &Field, span: Span, what: What<'_>) -> Option<()> {
        let low = def.min.is_some_and(|m| v < m);
        let high = def.max.is_some_and(|m| v > m);
        if low || high {
            let bounds = match (def.min, def.max) {
                (Some(a), Some(b)) => format!("from {a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            self.push(
                Diagnostic::new(codes::VALUE_OUT_OF_RANGE, span, format!("{what} must be {bounds}"))
                    .with_primary_label(format!("{v} is out of range"))
                    .with_help(format!("use a value {bounds}")),
            );
            return None;
        }
        Some(())
    }

    /// A value that must name an entry of one of the catalogs `kinds`.
    fn catalog_value(
        &mut self,
        code: sovereign_diagnostics::Code,
        kinds: &[EntryKind],
        text: &str,
        span: Span,
    ) -> Option<Value> {
        let catalog = &self.schema.catalog;
        if kinds.iter().any(|k| catalog.contains(*k, text)) {
            return Some(Value::new(ValueKind::Str(self.words.intern(text)), span));
        }
        let known: Vec<&str> = kinds.iter().flat_map(|k| catalog.names(*k)).collect();
        let noun = kinds.iter().map(|k| k.word()).collect::<Vec<_>>().join(" or ");
        let places = matches!(kinds, [EntryKind::Region] | [EntryKind::Jurisdiction]);
        let mut d = Diagnostic::new(code, span, format!("unknown {noun} `{text}`"))
            .with_primary_label(format!("not in the {noun} catalog"));
        // `h100` means `h100-80gb` more often than `h200`: for hardware and
        // models a prefix beats edit distance.
        let prefixed = known.iter().copied().find(|k| !places && !text.is_empty() && k.starts_with(text));
        d = match prefixed.or_else(|| closest(text, known.iter().copied())) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")).with_fix(
                format!("replace with \"{s}\""),
                span,
                format!("\"{s}\""),
            ),
            None if places => d.with_help(format!(
                "use a {noun} from stdlib/catalog/regions.kdl, or add yours there and pass --stdlib"
            )),
            None => d.with_help(format!(
                "known: {}; or add yours to {} and pass --stdlib",
                known.join(", "),
                kinds.first().map_or("stdlib/catalog/", |k| k.file())
            )),
        };
        self.push(d);
        None
    }

    fn string_value(&mut self, text: &str, span: Span, def: &Field, what: What<'_>) -> Option<Value> {
        let typed = match &def.ty {
            Type::String | Type::Path => ValueKind::Str(Arc::from(text)),
            Type::Enum(allowed) => {
                if !allowed.iter().any(|a| a == text) {
                    let mut d =
                        Diagnostic::new(codes::VALUE_NOT_ALLOWED, span, format!("`{text}` is not allowed for {what}"))
                            .with_primary_label(format!("expected {}", def.ty.describe()));
                    d = match closest(text, allowed.iter().map(String::as_str)) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")).with_fix(
                            format!("replace with \"{s}\""),
                            span,
                            format!("\"{s}\""),
                        ),
                        None => d.with_help(format!("use {}", def.ty.describe())),
                    };
                    self.push(d);
                    return None;
                }
                ValueKind::Str(self.words.intern(text))
            }
            Type::Memory => match values::parse_bytes(text) {
                Ok(bytes) => ValueKind::Bytes(bytes),
                Err(reason) => {
                    self.invalid(
                        codes::INVALID_QUANTITY,
                        span,
                        format!("`{text}` is not a size: {reason}"),
                        "write a number and a unit, such as \"50Gi\", \"512GiB\" or \"1.5TB\"",
                    );
                    return None;
                }
            },
            Type::Duration => match values::parse_millis(text) {
                Ok(ms) => ValueKind::Millis(ms),
                Err(reason) => {
                    self.invalid(
                        codes::INVALID_DURATION,
                        span,
                        format!("`{text}` is not a duration: {reason}"),
                        "write a number and a unit, such as \"800ms\", \"30s\", \"7d\" or \"1h30m\"",
                    );
                    return None;
                }
            },
            Type::Cron => match Cron::parse(text) {
                Ok(cron) => ValueKind::Cron(Box::new(cron)),
                Err(reason) => {
                    self.invalid(
                        codes::INVALID_CRON,
                        span,
                        format!("`{text}` is not a cron schedule: {reason}"),
                        "write minute hour day-of-month month day-of-week, such as \"0 2 * * *\" (02:00 every day)",
                    );
                    return None;
                }
            },
            Type::Region => return self.catalog_value(codes::UNKNOWN_REGION, &[EntryKind::Region], text, span),
            Type::Jurisdiction => {
                return self.catalog_value(codes::UNKNOWN_REGION, &[EntryKind::Jurisdiction], text, span);
            }
            Type::Catalog(kinds) => return self.catalog_value(codes::UNKNOWN_CATALOG_ENTRY, kinds, text, span),
            Type::Ref(kinds) => ValueKind::Ref {
                name: Arc::from(text),
                kinds: kinds.clone(),
                target: None,
                relative_to: def.relative_to.and_then(|i| u32::try_from(i).ok()),
            },
            Type::AnyRef => {
                ValueKind::Ref { name: Arc::from(text), kinds: Vec::new().into(), target: None, relative_to: None }
            }
            // Text that cannot be a declared secret's name (names are
            // DNS-1123 labels) is a literal: dropped here. A name-shaped text
            // waits beside the IR until resolution tells a declared name from
            // a literal (see `resolve`); the IR holds no text either way.
            Type::Secret if values::check_name(text).is_err() => {
                self.push(secret_literal(span));
                ValueKind::Secret { name: None, target: None }
            }
            Type::Secret => {
                self.secret_names.0.insert(span, text.to_owned());
                ValueKind::Secret { name: None, target: None }
            }
            Type::SecretSource => match SecretSource::parse(text) {
                Ok(source) => ValueKind::SecretSource(Box::new(source)),
                Err(reason) => {
                    // Never echo the text: it may be the secret itself.
                    self.push(
                        Diagnostic::new(codes::INVALID_URI, span, format!("not a secret source: {reason}"))
                            .with_help(
                                "write from=\"env:VAR\", \"file:PATH\", \"vault:PATH\" or \"k8s:NAMESPACE/NAME\"",
                            )
                            .redacted(),
                    );
                    return None;
                }
            },
            Type::Uri(schemes) => match Uri::parse(text, schemes) {
                Ok(uri) => ValueKind::Uri(Box::new(uri)),
                Err(reason) => {
                    self.invalid(
                        codes::INVALID_URI,
                        span,
                        format!("`{text}` is not a valid address: {reason}"),
                        &format!("write {}", def.ty.describe()),
                    );
                    return None;
                }
            },
            Type::Condition => match Condition::parse(text) {
                Ok(condition) => ValueKind::Condition(Box::new(condition)),
                Err(reason) => {
                    self.invalid(
                        codes::INVALID_CONDITION,
                        span,
                        format!("`{text}` is not a routing condition: {reason}"),
                        "write `metric op number`, joined by `and` or `or`, such as \"confidence < 0.6\"",
                    );
                    return None;
                }
            },
            Type::MigProfile => match MigProfile::parse(text) {
                Ok(profile) => ValueKind::MigProfile(profile),
                Err(reason) => {
                    self.invalid(
                        codes::VALUE_NOT_ALLOWED,
                        span,
                        reason,
                        "use a MIG profile of the GPU, such as \"1g.10gb\", \"3g.40gb\" or \"7g.80gb\"",
                    );
                    return None;
                }
            },
            Type::Integer | Type::Number | Type::Bool => return None,
        };
        Some(Value::new(typed, span))
    }
}

/// SOV3006 for text written where a declared secret's name belongs; the
/// text is never shown (it may be the credential).
pub(crate) fn secret_literal(span: Span) -> Diagnostic {
    Diagnostic::new(codes::SECRET_LITERAL, span, "a secret must be referenced by the name of a declared `secret`, not written here")
        .with_primary_label("this text is not the name of a declared secret (not shown)")
        .with_help("declare it as `secret \"my-token\" from=\"env:MY_TOKEN\"` and write token=\"my-token\"; if this was a real credential, rotate it")
        .redacted()
}

/// What a value is, for messages; formatted only when a diagnostic needs it.
#[derive(Clone, Copy)]
enum What<'a> {
    /// The argument of the named kind.
    Argument(&'a str),
    /// The named property.
    Property(&'a str),
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Argument(kind) => write!(f, "the argument of `{kind}`"),
            What::Property(key) => write!(f, "`{key}`"),
        }
    }
}
