//! The schema of the fabric language, read from the stdlib's KDL files.
//!
//! The schema is data (`stdlib/schema/*.kdl`); this module only reads it.
//! A malformed schema file (possible with `--stdlib DIR`) is reported as
//! diagnostics on that file, like any spec.

use std::collections::BTreeMap;
use std::sync::Arc;

use sovereign_catalog::{Catalog, EntryKind};
use sovereign_diagnostics::{Diagnostic, FileId, Span, codes};
use sovereign_ir::ValueKind;
use sovereign_ir::values;
use sovereign_syntax::ast::{LiteralKind, Node, NumberForm};

/// The type of an argument or property value.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    String,
    Integer,
    Number,
    Bool,
    Enum(Vec<String>),
    Memory,
    Duration,
    Cron,
    Region,
    Jurisdiction,
    /// A reference to a declaration of one of these kinds (schema paths such as `site/fleet`).
    Ref(Arc<[String]>),
    /// A reference to any declaration (`depends-on`).
    AnyRef,
    /// The name of a declared `secret`, never a literal.
    Secret,
    SecretSource,
    Uri(Vec<String>),
    Condition,
    MigProfile,
    Path,
    /// The name of a catalog entry of one of these kinds (`gpu`, `tpu`, `soc`, `model`).
    Catalog(Vec<EntryKind>),
}

impl Type {
    /// How the type is described to users.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Type::String => "a string".into(),
            Type::Integer => "an integer".into(),
            Type::Number => "a number".into(),
            Type::Bool => "#true or #false".into(),
            Type::Enum(values) => {
                format!("one of {}", values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", "))
            }
            Type::Memory => "a size such as \"50Gi\"".into(),
            Type::Duration => "a duration such as \"7d\"".into(),
            Type::Cron => "a cron schedule such as \"0 2 * * *\"".into(),
            Type::Region => "a region name".into(),
            Type::Jurisdiction => "a jurisdiction such as \"eu\"".into(),
            Type::Ref(kinds) => format!("the name of a {}", kinds.join(" or ")),
            Type::AnyRef => "the name of a declaration".into(),
            Type::Secret => "the name of a secret".into(),
            Type::SecretSource => "a secret source such as \"env:TOKEN\"".into(),
            Type::Uri(schemes) => {
                format!("an address ({})", schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", "))
            }
            Type::Condition => "a condition such as \"confidence < 0.6\"".into(),
            Type::MigProfile => "a MIG profile such as \"3g.40gb\"".into(),
            Type::Path => "a file or folder path".into(),
            Type::Catalog(kinds) => {
                format!(
                    "the name of a {} from the catalog",
                    kinds.iter().map(|k| k.word()).collect::<Vec<_>>().join(" or ")
                )
            }
        }
    }

    /// `true` for types written as KDL strings.
    #[must_use]
    pub fn is_string_like(&self) -> bool {
        !matches!(self, Type::Integer | Type::Number | Type::Bool)
    }
}

/// The definition of one argument or property.
#[derive(Clone, Debug)]
pub struct Field {
    pub ty: Type,
    pub required: bool,
    pub variadic: bool,
    /// The default as written in the schema, for hover and the docs.
    pub default: Option<String>,
    /// The default, typed when the schema was read: lowering stores it in
    /// the IR wherever the spec leaves the value out (for an argument, where
    /// the spec leaves out its `max=1` child).
    pub default_value: Option<ValueKind>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// For a `ref`: the index of the node's argument whose declaration the
    /// name is relative to (`runs-on "metabolism" namespace="evals"` names
    /// `metabolism/evals`).
    pub relative_to: Option<usize>,
    pub doc: String,
}

/// The definition of a node kind, top-level or nested.
#[derive(Clone, Debug, Default)]
pub struct NodeDef {
    /// The node name (`node`).
    pub name: String,
    /// The schema path (`site/node`), which is also the kind of what it declares.
    pub path: Arc<str>,
    pub doc: String,
    /// The first argument is the name this node declares.
    pub declares: bool,
    /// At most one declaration of this kind per fabric.
    pub singleton: bool,
    pub args: Vec<Field>,
    /// Properties, in the order the schema lists them.
    pub props: Vec<(Arc<str>, Field)>,
    pub children: Vec<ChildDef>,
    /// The properties with a default, and the children whose argument has
    /// one (indices into `props` and `children`): lowering visits only these.
    pub defaulted_props: Vec<usize>,
    pub defaulted_children: Vec<usize>,
}

/// A child definition: the node and how often it may appear.
#[derive(Clone, Debug)]
pub struct ChildDef {
    pub node: NodeDef,
    pub max: Option<u32>,
    pub required: bool,
}

impl NodeDef {
    #[must_use]
    pub fn prop(&self, key: &str) -> Option<&Field> {
        self.props.iter().find(|(k, _)| **k == *key).map(|(_, v)| v)
    }

    #[must_use]
    pub fn child(&self, name: &str) -> Option<&ChildDef> {
        self.children.iter().find(|c| c.node.name == name)
    }
}

/// The whole schema and the catalogs the checks need.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// Kinds allowed at the top of a spec, in schema order.
    pub kinds: Vec<NodeDef>,
    pub catalog: Catalog,
}

impl Schema {
    #[must_use]
    pub fn kind(&self, name: &str) -> Option<&NodeDef> {
        self.kinds.iter().find(|k| k.name == name)
    }

    /// The definition at a schema path such as `site/node`.
    #[must_use]
    pub fn def_at(&self, path: &str) -> Option<&NodeDef> {
        let mut parts = path.split('/');
        let mut def = self.kind(parts.next()?)?;
        for part in parts {
            def = &def.child(part)?.node;
        }
        Some(def)
    }

    /// Reads the schema and catalog documents. `files` pairs each file's id
    /// with its text.
    #[must_use]
    pub fn load(schema_files: &[(FileId, &str)], catalog_files: &[(FileId, &str)]) -> (Schema, Vec<Diagnostic>) {
        let mut reader = Reader { diagnostics: Vec::new(), shared: BTreeMap::new() };
        let mut schema = Schema::default();
        let mut parsed = Vec::new();
        for &(file, text) in schema_files {
            let parse = sovereign_syntax::parse(file, text);
            reader.diagnostics.extend(parse.diagnostics);
            parsed.push(parse.document);
        }
        // Shared definitions first, so `use=` can find them in any file.
        for document in &parsed {
            for node in document.nodes.iter().filter(|n| n.name.text == "shared") {
                if let Some(name) = first_string(node) {
                    let def = reader.node_def(node, name, name);
                    reader.shared.insert(name.to_owned(), def);
                }
            }
        }
        for document in &parsed {
            for node in &document.nodes {
                match node.name.text.as_ref() {
                    "shared" => {}
                    "kind" => match first_string(node) {
                        Some(name) => schema.kinds.push(reader.node_def(node, name, name)),
                        None => reader.bad(node.name.span, "a `kind` needs a name"),
                    },
                    other => reader.bad(node.name.span, &format!("unknown schema node `{other}`")),
                }
            }
        }
        let (catalog, catalog_diagnostics) = Catalog::load(catalog_files);
        schema.catalog = catalog;
        reader.diagnostics.extend(catalog_diagnostics);
        (schema, reader.diagnostics)
    }
}

/// A schema default as the value lowering would have produced from the spec.
fn typed_default(field: &Field, literal: &LiteralKind<'_>) -> Result<ValueKind, String> {
    let in_range = |v: f64| field.min.is_none_or(|m| v >= m) && field.max.is_none_or(|m| v <= m);
    let value = match (&field.ty, literal) {
        (Type::Integer, LiteralKind::Number(n)) if matches!(n.form, NumberForm::Integer { .. }) => {
            let v = n.as_i64().ok_or("too large")?;
            in_range(v as f64).then_some(ValueKind::Int(v)).ok_or("out of the field's range")?
        }
        (Type::Number, LiteralKind::Number(n)) => {
            let v = n.as_f64().filter(|v| v.is_finite()).ok_or("not a finite number")?;
            in_range(v).then_some(ValueKind::Num(v)).ok_or("out of the field's range")?
        }
        (Type::Bool, LiteralKind::Bool(b)) => ValueKind::Bool(*b),
        (Type::String | Type::Path, LiteralKind::String(s)) => ValueKind::Str(Arc::from(&**s)),
        (Type::Enum(allowed), LiteralKind::String(s)) if allowed.iter().any(|a| **a == **s) => {
            ValueKind::Str(Arc::from(&**s))
        }
        (Type::Enum(_), _) => return Err("not one of the enum's values".into()),
        (Type::Duration, LiteralKind::String(s)) => ValueKind::Millis(values::parse_millis(s)?),
        (Type::Memory, LiteralKind::String(s)) => ValueKind::Bytes(values::parse_bytes(s)?),
        (Type::Integer | Type::Number | Type::Bool | Type::String | Type::Path | Type::Duration | Type::Memory, _) => {
            return Err(format!("expected {}", field.ty.describe()));
        }
        _ => return Err(format!("defaults are not supported for {}", field.ty.describe())),
    };
    Ok(value)
}

fn first_string<'a>(node: &'a Node<'_>) -> Option<&'a str> {
    node.arguments().next().and_then(|v| v.kind.as_str())
}

fn prop_string<'a>(node: &'a Node<'_>, key: &str) -> Option<&'a str> {
    node.property(key).and_then(|e| e.value.kind.as_str())
}

fn prop_bool(node: &Node<'_>, key: &str) -> bool {
    node.property(key).is_some_and(|e| e.value.kind == LiteralKind::Bool(true))
}

fn prop_number(node: &Node<'_>, key: &str) -> Option<f64> {
    match &node.property(key)?.value.kind {
        LiteralKind::Number(n) => n.as_f64(),
        _ => None,
    }
}

struct Reader {
    diagnostics: Vec<Diagnostic>,
    shared: BTreeMap<String, NodeDef>,
}

impl Reader {
    fn bad(&mut self, span: Span, message: &str) {
        self.diagnostics.push(Diagnostic::new(codes::UNKNOWN_NODE, span, format!("stdlib schema: {message}")));
    }

    fn node_def(&mut self, node: &Node<'_>, name: &str, path: &str) -> NodeDef {
        let mut def = NodeDef { name: name.to_owned(), path: path.into(), ..NodeDef::default() };
        for child in node.child_nodes() {
            match child.name.text.as_ref() {
                "doc" => def.doc = first_string(child).unwrap_or_default().to_owned(),
                "declares" => {
                    def.declares = true;
                    def.singleton = prop_bool(child, "singleton");
                }
                "arg" => {
                    if let Some(value) = self.value_def(child) {
                        def.args.push(value);
                    }
                }
                "prop" => match (first_string(child), self.value_def(child)) {
                    (Some(key), Some(value)) => def.props.push((key.into(), value)),
                    _ => self.bad(child.span, "a `prop` needs a name and a type"),
                },
                "child" => {
                    let Some(child_name) = first_string(child) else {
                        self.bad(child.span, "a `child` needs a name");
                        continue;
                    };
                    let child_path = format!("{path}/{child_name}");
                    let mut node_def = match prop_string(child, "use") {
                        Some(shared) => match self.shared.get(shared) {
                            Some(def) => def.clone(),
                            None => {
                                self.bad(child.span, &format!("no shared definition `{shared}`"));
                                continue;
                            }
                        },
                        None => self.node_def(child, child_name, &child_path),
                    };
                    node_def.name = child_name.to_owned();
                    node_def.path = child_path.into();
                    let max = prop_number(child, "max").and_then(|m| u32::try_from(m as i64).ok());
                    if node_def
                        .args
                        .iter()
                        .skip(1)
                        .chain(node_def.args.first().filter(|_| max != Some(1)))
                        .any(|a| a.default_value.is_some())
                    {
                        self.bad(child.span, "only the first argument of a `max=1` child may have a default (used when the child is left out)");
                    }
                    def.children.push(ChildDef { node: node_def, max, required: prop_bool(child, "required") });
                }
                other => self.bad(child.name.span, &format!("unknown schema node `{other}`")),
            }
        }
        def.defaulted_props = (0..def.props.len()).filter(|&i| def.props[i].1.default_value.is_some()).collect();
        def.defaulted_children = (0..def.children.len())
            .filter(|&i| def.children[i].node.args.first().is_some_and(|a| a.default_value.is_some()))
            .collect();
        for (key, field) in &def.props {
            if let Some(index) = field.relative_to
                && !matches!(def.args.get(index).map(|a| &a.ty), Some(Type::Ref(_)))
            {
                let message = format!("`{key}` is relative to argument {index}, which is not a `ref`");
                self.diagnostics.push(Diagnostic::new(
                    codes::UNKNOWN_NODE,
                    node.span,
                    format!("stdlib schema: {message}"),
                ));
            }
        }
        def
    }

    fn value_def(&mut self, node: &Node<'_>) -> Option<Field> {
        let words = |key: &str| -> Vec<String> {
            prop_string(node, key).map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
        };
        let ty = match prop_string(node, "type")? {
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "enum" => Type::Enum(words("values")),
            "memory" => Type::Memory,
            "duration" => Type::Duration,
            "cron" => Type::Cron,
            "region" => Type::Region,
            "jurisdiction" => Type::Jurisdiction,
            "ref" => Type::Ref(words("ref").into()),
            "any-ref" => Type::AnyRef,
            "secret" => Type::Secret,
            "secret-source" => Type::SecretSource,
            "uri" => Type::Uri(words("schemes")),
            "condition" => Type::Condition,
            "mig-profile" => Type::MigProfile,
            "path" => Type::Path,
            "catalog" => {
                let kinds: Vec<EntryKind> = words("of").iter().filter_map(|w| EntryKind::from_word(w)).collect();
                if kinds.is_empty() || kinds.len() != words("of").len() {
                    self.bad(node.span, "a `catalog` value needs of=\"gpu\", \"tpu\", \"soc\" or \"model\"");
                    return None;
                }
                Type::Catalog(kinds)
            }
            other => {
                self.bad(node.span, &format!("unknown value type `{other}`"));
                return None;
            }
        };
        let default = node.property("default").map(|e| match &e.value.kind {
            LiteralKind::String(s) => s.to_string(),
            LiteralKind::Number(n) => n.raw.to_owned(),
            LiteralKind::Bool(b) => if *b { "#true" } else { "#false" }.to_owned(),
            LiteralKind::Null => "#null".to_owned(),
        });
        let mut field = Field {
            ty,
            required: prop_bool(node, "required"),
            variadic: prop_bool(node, "variadic"),
            default,
            default_value: None,
            min: prop_number(node, "min"),
            max: prop_number(node, "max"),
            relative_to: prop_number(node, "relative-to").and_then(|n| usize::try_from(n as i64).ok()),
            doc: prop_string(node, "doc").unwrap_or_default().to_owned(),
        };
        if field.relative_to.is_some() && !matches!(field.ty, Type::Ref(_)) {
            self.bad(node.span, "`relative-to=` applies only to a `ref`");
            field.relative_to = None;
        }
        if let Some(entry) = node.property("default") {
            match typed_default(&field, &entry.value.kind) {
                Ok(value) => field.default_value = Some(value),
                Err(reason) => self.bad(entry.value.span, &format!("the default does not fit the type: {reason}")),
            }
        }
        Some(field)
    }
}
