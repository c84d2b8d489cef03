//! The KDL tree. Every node, name, entry and value keeps its [`Span`].
//!
//! Strings borrow from the source when they need no unescaping, so a parse
//! allocates little beyond the vectors of nodes and entries.

use std::borrow::Cow;

use sovereign_diagnostics::Span;

/// A parsed document: its top-level nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document<'a> {
    pub nodes: Vec<Node<'a>>,
}

/// A node: `(annotation)name entries… { children }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Node<'a> {
    pub annotation: Option<Box<Ident<'a>>>,
    pub name: Ident<'a>,
    pub entries: Vec<Entry<'a>>,
    pub children: Option<Children<'a>>,
    /// From the annotation (or name) to the end of the last entry or the closing brace.
    pub span: Span,
    /// Syntax errors were found inside this node (later passes then skip
    /// "missing value" checks that the broken text would only confuse).
    pub has_errors: bool,
}

/// A `{ … }` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Children<'a> {
    pub nodes: Vec<Node<'a>>,
    /// From `{` to `}` inclusive (to the end of input when unclosed).
    pub span: Span,
}

/// A string used as a name: a node name, a property key or a type annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident<'a> {
    pub text: Cow<'a, str>,
    pub span: Span,
}

/// An argument (`key` is `None`) or a property.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<'a> {
    pub key: Option<Ident<'a>>,
    pub value: Literal<'a>,
    /// From the key (or value) to the end of the value.
    pub span: Span,
}

/// A value with its optional type annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal<'a> {
    pub annotation: Option<Box<Ident<'a>>>,
    pub kind: LiteralKind<'a>,
    /// The literal only (without the annotation).
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LiteralKind<'a> {
    String(Cow<'a, str>),
    Number(Number<'a>),
    Bool(bool),
    Null,
}

/// A number as written, validated; convert with [`Number::as_i64`] or [`Number::as_f64`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number<'a> {
    /// The literal exactly as in the source (sign, prefix, underscores).
    pub raw: &'a str,
    pub form: NumberForm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberForm {
    /// An integer in radix 2, 8, 10 or 16.
    Integer {
        radix: u32,
    },
    /// A decimal with a fraction or an exponent.
    Decimal,
    Inf,
    NegInf,
    NaN,
}

impl<'a> LiteralKind<'a> {
    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            LiteralKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// A short word for the kind of value, for diagnostics.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            LiteralKind::String(_) => "a string",
            LiteralKind::Number(n) if matches!(n.form, NumberForm::Integer { .. }) => "an integer",
            LiteralKind::Number(n) if matches!(n.form, NumberForm::NaN) => "#nan",
            LiteralKind::Number(n) if matches!(n.form, NumberForm::Inf | NumberForm::NegInf) => "an infinity",
            LiteralKind::Number(_) => "a number",
            LiteralKind::Bool(_) => "a boolean",
            LiteralKind::Null => "#null",
        }
    }
}

impl Node<'_> {
    /// The arguments, in order.
    pub fn arguments(&self) -> impl Iterator<Item = &Literal<'_>> {
        self.entries.iter().filter(|e| e.key.is_none()).map(|e| &e.value)
    }

    /// The last value given for property `key` (KDL: the rightmost wins).
    #[must_use]
    pub fn property(&self, key: &str) -> Option<&Entry<'_>> {
        self.entries.iter().rev().find(|e| e.key.as_ref().is_some_and(|k| k.text == key))
    }

    /// The child nodes (empty when there is no block).
    #[must_use]
    pub fn child_nodes(&self) -> &[Node<'_>] {
        self.children.as_ref().map_or(&[], |c| c.nodes.as_slice())
    }
}
