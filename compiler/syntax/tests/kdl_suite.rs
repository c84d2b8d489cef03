//! The official KDL 2.0 conformance suite (vendored from kdl-org/kdl, see
//! `kdl-spec-tests/README.md`): every `_fail` case must be rejected, every
//! other case accepted and printed in exactly the expected normal form.
// Reads fixtures from disk: the purity rule (compiler/clippy.toml) is for the crates, not their tests.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use sovereign_diagnostics::FileId;
use sovereign_syntax::{normal_form, parse};

#[test]
fn every_suite_case_is_accepted_or_rejected_as_specified() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kdl-spec-tests");
    let mut cases: Vec<_> = fs::read_dir(root.join("input")).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() > 300, "the suite is incomplete: {} cases", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(path).unwrap();
        let parsed = parse(FileId(0), &text);
        if name.ends_with("_fail.kdl") {
            if parsed.diagnostics.is_empty() {
                failures.push(format!(
                    "{name}: accepted, but the suite says it must fail\n  got: {}",
                    normal_form(&parsed.document)
                ));
            }
            continue;
        }
        if !parsed.diagnostics.is_empty() {
            let messages: Vec<_> =
                parsed.diagnostics.iter().map(|d| format!("{} at {:?}", d.message, d.primary.span.range())).collect();
            failures.push(format!("{name}: rejected: {messages:?}"));
            continue;
        }
        let expected = fs::read_to_string(root.join("expected_kdl").join(&name)).unwrap();
        let actual = normal_form(&parsed.document);
        if actual.trim_end() != expected.trim_end() {
            failures.push(format!("{name}: normal form differs\n  expected: {expected:?}\n  actual:   {actual:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} suite cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
