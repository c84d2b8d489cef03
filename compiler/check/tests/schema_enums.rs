//! The schema is the source of truth for what users may write; where Rust
//! gives a schema value meaning (`sovereign_model::enums`), the two must be
//! the same set of words, so a value added to the schema without meaning
//! fails here instead of silently vanishing.

use std::collections::BTreeSet;
use std::path::Path;

use sovereign_check::schema::{Field, NodeDef, Type};
use sovereign_check::{MemoryHost, Schema, Stdlib};
use sovereign_model::SCHEMA_ENUMS;

fn schema() -> Schema {
    let (stdlib, problems) = Stdlib::embedded();
    assert!(problems.is_empty(), "{problems:?}");
    stdlib.schema
}

/// `kind/path.prop` is a property, `kind/path` the first argument.
fn field<'s>(schema: &'s Schema, path: &str) -> Option<&'s Field> {
    let (node, prop) = match path.split_once('.') {
        Some((node, prop)) => (node, Some(prop)),
        None => (path, None),
    };
    let def = schema.def_at(node)?;
    match prop {
        Some(prop) => def.prop(prop),
        None => def.args.first(),
    }
}

fn every_enum_field(def: &NodeDef, out: &mut Vec<String>) {
    for (key, field) in &def.props {
        if matches!(field.ty, Type::Enum(_)) {
            out.push(format!("{}.{key}", def.path));
        }
    }
    if def.args.first().is_some_and(|a| matches!(a.ty, Type::Enum(_))) {
        out.push(def.path.to_string());
    }
    for child in &def.children {
        every_enum_field(&child.node, out);
    }
}

#[test]
fn each_model_enum_has_exactly_the_schema_values() {
    let schema = schema();
    let mut problems = Vec::new();
    for e in SCHEMA_ENUMS {
        let rust: BTreeSet<&str> = (e.words)().into_iter().collect();
        for path in e.fields {
            match field(&schema, path).map(|f| &f.ty) {
                Some(Type::Enum(values)) => {
                    let schema_words: BTreeSet<&str> = values.iter().map(String::as_str).collect();
                    if schema_words != rust {
                        problems.push(format!(
                            "{}: the schema's {path} allows {schema_words:?}, the Rust enum has {rust:?}",
                            e.name
                        ));
                    }
                }
                other => problems.push(format!("{}: {path} is not an enum in the schema ({other:?})", e.name)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_enum_of_the_schema_has_a_meaning_in_rust() {
    let schema = schema();
    let mut fields = Vec::new();
    for def in &schema.kinds {
        every_enum_field(def, &mut fields);
    }
    let known: BTreeSet<&str> = SCHEMA_ENUMS.iter().flat_map(|e| e.fields.iter().copied()).collect();
    let missing: Vec<&String> = fields.iter().filter(|f| !known.contains(f.as_str())).collect();
    assert!(fields.len() > 10, "walked only {fields:?}");
    assert!(missing.is_empty(), "schema enums no Rust enum reads: {missing:?}");
}

#[test]
fn a_schema_word_this_binary_does_not_know_is_an_error_not_a_vanished_site() {
    // A `--stdlib` copy that adds a tier.
    let copy = |f: &sovereign_stdlib::StdlibFile| (Path::new("<copy>").join(f.path), f.text.to_owned());
    let schema_files = sovereign_stdlib::SCHEMA
        .iter()
        .map(|f| {
            let (path, text) = copy(f);
            let tiers = r#"values="cloud server device" required=#true"#;
            (path, text.replace(tiers, r#"values="cloud server device edge" required=#true"#))
        })
        .collect();
    let (stdlib, problems) = Stdlib::from_files(schema_files, sovereign_stdlib::CATALOG.iter().map(copy).collect());
    assert!(problems.is_empty(), "{problems:?}");
    let spec = "fabric \"t\" {\n    residency \"eu\"\n}\nsite \"kiosk\" tier=\"edge\" region=\"eu-central\"\n";
    let mut host = MemoryHost::default();
    host.add("fabric.kdl", spec);
    let checked = sovereign_check::check(Path::new("fabric.kdl"), spec.into(), &host, &stdlib);
    let found: Vec<(&str, &str)> = checked.diagnostics.iter().map(|d| (d.code.id, d.message.as_str())).collect();
    assert_eq!(
        found,
        [("SOV2019", "`edge` is allowed for `tier` by the schema, but this version of sovereign gives it no meaning")]
    );
    assert!(checked.spec.is_none());
}
