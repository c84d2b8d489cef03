//! Keeps the documentation in step with the code:
//! - `docs/language.md` equals the reference generated from the stdlib schema;
//! - every diagnostic code has a page, every page belongs to a code, and each
//!   page's example really produces its code;
//! - every code is exercised by at least one data-driven case.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sovereign_diagnostics::codes;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn language_reference_matches_the_schema() {
    let (stdlib, diagnostics) = sovereign_check::Stdlib::embedded();
    let schema = stdlib.schema;
    assert!(diagnostics.is_empty(), "the embedded stdlib has problems: {diagnostics:?}");
    let generated = sovereign_check::reference::language_reference(&schema);
    let path = root().join("docs/language.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        fs::write(&path, &generated).unwrap();
    }
    let current = fs::read_to_string(&path).unwrap_or_default();
    assert!(current == generated, "docs/language.md is stale: run `UPDATE_DOCS=1 cargo test --test docs`");
}

#[test]
fn every_code_has_a_page_and_every_page_a_code() {
    let mut pages: Vec<String> = fs::read_dir(root().join("docs/diagnostics"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .map(|n| n.trim_end_matches(".md").to_owned())
        .collect();
    pages.sort();
    let ids: Vec<String> = codes::ALL.iter().map(|c| c.id.to_owned()).collect();
    assert_eq!(pages, ids, "docs/diagnostics/ and the code table disagree");
    for code in codes::ALL {
        let title = format!("# {} {}", code.id, code.name);
        assert!(code.doc.starts_with(&title), "{}: the page must start with `{title}`", code.id);
        for section in ["## Example", "## How to fix"] {
            assert!(code.doc.contains(section), "{}: the page has no `{section}` section", code.id);
        }
        let severity = format!("Severity: {}", code.severity.as_str());
        assert!(code.doc.contains(&severity), "{}: the page must say `{severity}`", code.id);
    }
}

/// Codes whose example cannot be written as text in a Markdown page.
const EXAMPLE_NOT_TEXT: &[&str] = &["SOV1013", "SOV3007", "SOV3008", "SOV3011", "SOV3012", "SOV2019"];

/// Codes that only a changed stdlib produces, tested where one is built:
/// a case runs the binary with the shipped stdlib.
/// Apply's codes (`SOV6xxx`) come from an API server, tested against one.
const CASE_ELSEWHERE: &[(&str, &str)] = &[
    ("SOV2019", "compiler/check/tests/schema_enums.rs"),
    ("SOV6001", "tests/apply.rs"),
    ("SOV6002", "tests/apply.rs"),
];

/// Apply's pages show specs that check clean: the API server finds the problem.
#[test]
fn apply_code_examples_check_clean() {
    let dir = tempfile::tempdir().unwrap();
    for code in codes::ALL.iter().filter(|c| c.id.starts_with("SOV6")) {
        let block = kdl_block(code.doc, "## Example").unwrap_or_else(|| panic!("{}: no ```kdl example", code.id));
        let output = check_json(&dir.path().join(format!("{}.kdl", code.id)), block);
        assert!(output.status.success(), "{}: {}", code.id, String::from_utf8_lossy(&output.stdout));
    }
}

#[test]
fn every_page_example_produces_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for code in codes::ALL.iter().filter(|c| !EXAMPLE_NOT_TEXT.contains(&c.id) && !c.id.starts_with("SOV6")) {
        let Some(block) = kdl_block(code.doc, "## Example") else {
            failures.push(format!("{}: no ```kdl example", code.id));
            continue;
        };
        // Pages show invisible characters as stand-ins like ‹U+202E›.
        let block = block.replace("‹U+202E›", "\u{202E}");
        let output = check_json(&dir.path().join(format!("{}.kdl", code.id)), &block);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.contains(&format!("\"code\": \"{}\"", code.id)) {
            failures.push(format!("{}: the example does not produce it; got {stdout}", code.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_code_has_a_case() {
    let snapshots = root().join("tests/snapshots");
    // Only the diagnostics cases' snapshots: a code seen in an analysis
    // golden file has no case of its own.
    let all: String = fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("cases__")))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<&str> = codes::ALL
        .iter()
        .map(|c| c.id)
        .filter(|id| !all.contains(&format!("{id}(")))
        .filter(|id| !CASE_ELSEWHERE.iter().any(|(code, test)| code == id && root().join(test).is_file()))
        .collect();
    assert!(missing.is_empty(), "codes with no case in tests/cases/: {missing:?}");
    let cases = fs::read_dir(root().join("tests/cases")).unwrap().count();
    assert!(cases >= 60, "at least 60 cases are required, found {cases}");
}

/// The fix of a capacity, sovereignty or catalog page is a whole spec that
/// checks clean: the analysis finds nothing left to say about it. (Older
/// pages show fragments that only fix the one line.)
#[test]
fn analysis_pages_show_a_fix_that_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for code in codes::ALL.iter().filter(|c| c.id.starts_with("SOV4") || c.id.starts_with("SOV5") || c.id == "SOV2018")
    {
        let Some(block) = kdl_block(code.doc, "## How to fix") else {
            failures.push(format!("{}: no ```kdl fix", code.id));
            continue;
        };
        let output = check_json(&dir.path().join(format!("{}-fix.kdl", code.id)), block);
        if output.status.code() != Some(0) || String::from_utf8_lossy(&output.stdout).contains("\"code\"") {
            failures.push(format!(
                "{}: the fix does not check clean: {}",
                code.id,
                String::from_utf8_lossy(&output.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The first ```kdl block after `section` in a code's page.
fn kdl_block<'d>(doc: &'d str, section: &str) -> Option<&'d str> {
    let after = doc.split(section).nth(1)?;
    after.split("```kdl\n").nth(1).and_then(|b| b.split("\n```").next())
}

/// Writes `spec` to `path` and runs `sovereign check --format json` on it.
fn check_json(path: &Path, spec: &str) -> std::process::Output {
    fs::write(path, spec).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sovereign")).args(["check", "--format", "json"]).arg(path).output().unwrap()
}
