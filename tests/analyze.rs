//! `sovereign analyze` and `sovereign graph` on the examples: golden files
//! (insta snapshots) of the tables, the JSON and every graph format, plus
//! exit codes and determinism.

use std::process::Command;

const EXAMPLES: &[&str] = &["lab", "enterprise", "airgapped"];

mod common;

use common::{sovereign, stdout};

#[test]
fn analyze_tables_of_the_examples() {
    for example in EXAMPLES {
        let output = sovereign(&["analyze", &format!("examples/{example}"), "--color", "never"]);
        assert_eq!(output.status.code(), Some(0), "{example}: {}", String::from_utf8_lossy(&output.stderr));
        insta::assert_snapshot!(format!("analyze-{example}"), stdout(&output));
    }
}

#[test]
fn analyze_json_of_the_examples() {
    for example in EXAMPLES {
        let output = sovereign(&["analyze", &format!("examples/{example}"), "--json"]);
        assert_eq!(output.status.code(), Some(0));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
        assert_eq!(json["version"], 1);
        for key in ["serves", "placements", "mig_layouts", "devices", "flows", "waves", "diagnostics"] {
            assert!(json.get(key).is_some(), "{example}: no `{key}`");
        }
        insta::assert_snapshot!(format!("analyze-json-{example}"), stdout(&output));
    }
}

#[test]
fn graphs_of_the_examples() {
    for example in EXAMPLES {
        for format in ["dot", "mermaid", "json"] {
            let output = sovereign(&["graph", &format!("examples/{example}"), "--format", format]);
            assert_eq!(output.status.code(), Some(0), "{example} {format}");
            insta::assert_snapshot!(format!("graph-{format}-{example}"), stdout(&output));
        }
    }
}

#[test]
fn graph_svg_with_graphviz() {
    let has_dot = Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    // CI installs Graphviz: there the SVG path must really run.
    if std::env::var_os("SOVEREIGN_EXPECT_GRAPHVIZ").is_some() {
        assert!(has_dot, "SOVEREIGN_EXPECT_GRAPHVIZ is set but `dot` is not on the PATH");
    }
    let output = sovereign(&["graph", "examples/enterprise", "--format", "svg"]);
    if has_dot {
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout(&output).contains("<svg"), "not an SVG");
    } else {
        // Without Graphviz: a clear usage error, never a fake picture.
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("Graphviz"));
    }
}

#[test]
fn analysis_output_is_deterministic() {
    for args in [
        vec!["analyze", "examples/enterprise"],
        vec!["analyze", "examples/enterprise", "--json"],
        vec!["graph", "examples/enterprise", "--format", "dot"],
    ] {
        let first = sovereign(&args);
        for _ in 0..3 {
            assert_eq!(sovereign(&args).stdout, first.stdout, "{args:?}");
        }
    }
}

#[test]
fn analyze_exit_codes() {
    // A spec that does not check: exit 1 and the diagnostics, no tables.
    let output = sovereign(&["analyze", "tests/cases/names-duplicate.kdl", "--color", "never"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    // Checks, but does not fit: the tables and the error, exit 1.
    let output = sovereign(&["analyze", "tests/cases/capacity-mig-short.kdl", "--color", "never"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("Placement"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SOV4001"));
    // Missing file: usage or IO error.
    assert_eq!(sovereign(&["analyze", "no/such/spec.kdl"]).status.code(), Some(2));
    assert_eq!(sovereign(&["graph", "no/such/spec.kdl"]).status.code(), Some(2));
}
