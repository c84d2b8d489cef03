//! Every default in `stdlib/schema/` is typed when the schema is read and
//! stored by lowering wherever a spec leaves the value out, so the IR says
//! what the spec means and no pass repeats a default.

use std::path::Path;

use sovereign_check::schema::NodeDef;
use sovereign_check::{MemoryHost, Stdlib};
use sovereign_diagnostics::SourceMap;
use sovereign_ir::{Fabric, ValueKind};

const EVERY_KIND: &str = include_str!("every-kind.kdl");

fn lowered() -> (Fabric, sovereign_check::Schema) {
    let (stdlib, problems) = Stdlib::embedded();
    assert!(problems.is_empty(), "{problems:?}");
    let mut host = MemoryHost::default();
    host.add("fabric.kdl", EVERY_KIND);
    let checked = sovereign_check::check(Path::new("fabric.kdl"), EVERY_KIND.into(), &host, &stdlib);
    let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| &d.message).collect();
    assert!(errors.is_empty(), "the fixture must check clean: {errors:?}");
    (checked.fabric, stdlib.schema)
}

/// Every node definition, nested ones included.
fn definitions(schema: &sovereign_check::Schema) -> Vec<&NodeDef> {
    let mut out = Vec::new();
    let mut stack: Vec<&NodeDef> = schema.kinds.iter().collect();
    while let Some(def) = stack.pop() {
        stack.extend(def.children.iter().map(|c| &c.node));
        out.push(def);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[test]
fn every_schema_default_is_typed_and_stored_where_the_spec_leaves_it_out() {
    let (fabric, schema) = lowered();
    let mut walked = 0;
    let mut problems = Vec::new();
    for def in definitions(&schema) {
        for (key, field) in &def.props {
            let Some(text) = &field.default else { continue };
            let Some(default) = &field.default_value else {
                problems.push(format!("{}.{key}: default `{text}` was not typed", def.path));
                continue;
            };
            walked += 1;
            let items: Vec<_> = fabric.of_kind(&def.path).collect();
            if items.is_empty() {
                problems.push(format!("{}.{key}: every-kind.kdl has no `{}` to exercise it", def.path, def.name));
            }
            // The fixture writes none of the defaulted values: each is stored, marked as defaulted.
            for (_, item) in items {
                match item.prop(key) {
                    Some(value) if value.defaulted && value.kind == *default => {}
                    Some(value) if !value.defaulted => {}
                    other => {
                        problems.push(format!("{}.{key}: expected the default {default:?}, got {other:?}", def.path))
                    }
                }
            }
        }
        for child in &def.children {
            let Some(arg) = child.node.args.first() else { continue };
            let Some(text) = &arg.default else { continue };
            let Some(default) = &arg.default_value else {
                problems.push(format!("{}: default `{text}` was not typed", child.node.path));
                continue;
            };
            walked += 1;
            let parents: Vec<_> = fabric.of_kind(&def.path).collect();
            if parents.is_empty() {
                problems.push(format!("{}: every-kind.kdl has no `{}` to exercise it", child.node.path, def.name));
            }
            for (parent_id, parent) in parents {
                let written = parent.children.iter().any(|&c| *fabric.item(c).kind == *child.node.path);
                match fabric.child_value(parent_id, &child.node.path) {
                    Some(value) if written && !value.defaulted => {}
                    Some(value) if !written && value.defaulted && value.kind == *default => {}
                    other => problems.push(format!(
                        "{}: expected {}, got {other:?}",
                        child.node.path,
                        if written { "the written value".to_owned() } else { format!("the default {default:?}") }
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The schema has defaults; a walk that finds none walked nothing.
    assert!(walked >= 15, "only {walked} defaults found");
}

#[test]
fn a_written_value_is_kept_and_not_marked_as_defaulted() {
    let (fabric, _) = lowered();
    let (_, node) =
        fabric.of_kind("site/node").find(|(_, n)| n.name.as_ref().is_some_and(|n| n.text() == "gpu-01")).unwrap();
    let mig = node.prop("mig").unwrap();
    assert_eq!((mig.kind.clone(), mig.defaulted), (ValueKind::Bool(true), false));
    let (_, cpu_only) =
        fabric.of_kind("site/node").find(|(_, n)| n.name.as_ref().is_some_and(|n| n.text() == "cpu-01")).unwrap();
    let gpus = cpu_only.prop("gpus").unwrap();
    assert_eq!((gpus.kind.clone(), gpus.defaulted), (ValueKind::Int(0), true));
}

#[test]
fn a_default_that_does_not_fit_its_type_is_a_schema_error() {
    let schema = r#"
kind "x" {
    prop "n" type="integer" min=1 default=0
    prop "e" type="enum" values="a b" default="c"
    prop "d" type="duration" default="soon"
    prop "u" type="uri" schemes="http" default="http://x"
    child "c" {
        arg type="integer" default=1
    }
}
"#;
    let mut sources = SourceMap::new();
    let file = sources.add_stdlib("<test>/schema.kdl".into(), schema.to_owned());
    let (_, problems) = sovereign_check::Schema::load(&[(file, schema)], &[]);
    let messages: Vec<&str> = problems.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 5, "{messages:#?}");
}
