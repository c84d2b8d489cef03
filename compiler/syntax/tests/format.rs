//! The formatter on the official KDL 2.0 suite and on hand-written layouts:
//! formatting never changes what a document means (same normal form),
//! is idempotent, keeps every comment, and leaves `_fail` cases alone.
// Reads fixtures from disk: the purity rule (compiler/clippy.toml) is for the crates, not their tests.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

use sovereign_diagnostics::FileId;
use sovereign_syntax::{FormatError, format, normal_form, parse};

#[test]
fn suite_cases_keep_their_meaning_and_fail_cases_are_left_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kdl-spec-tests/input");
    let mut cases: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    let mut failures = Vec::new();
    let mut formatted = 0;
    for path in &cases {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(path).unwrap();
        match (name.ends_with("_fail.kdl"), format(&text)) {
            (true, Err(FormatError::Syntax(diagnostics))) => assert!(!diagnostics.is_empty()),
            (true, other) => failures.push(format!("{name}: a failing case must be refused, got {other:?}")),
            (false, Ok(out)) => {
                formatted += 1;
                let before = normal_form(&parse(FileId(0), &text).document);
                let after = normal_form(&parse(FileId(0), &out).document);
                if before != after {
                    failures.push(format!("{name}: meaning changed\n{text}\n---\n{out}"));
                }
                match format(&out) {
                    Ok(again) if again == out => {}
                    other => failures.push(format!("{name}: not idempotent\n{out}\n---\n{other:?}")),
                }
            }
            (false, Err(error)) => failures.push(format!("{name}: not formatted: {error:?}\n{text}")),
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n\n"));
    assert!(formatted > 200, "only {formatted} cases formatted");
}

fn check(input: &str, expected: &str) {
    let out = format(input).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out, expected, "\n--- got:\n{out}\n--- expected:\n{expected}");
    assert_eq!(format(&out).unwrap(), out, "not idempotent");
}

#[test]
fn canonical_layout() {
    check(
        "site   \"fra\"   tier = \"server\"{cluster kind=\"k3s\" ;node \"a\" gpus=2}\n\n\n\nmodel \"m\" \\\n    base=\"b\"",
        "site \"fra\" tier=\"server\" {\n    cluster kind=\"k3s\"\n    node \"a\" gpus=2\n}\n\nmodel \"m\" base=\"b\"\n",
    );
}

#[test]
fn comments_are_kept_where_they_are() {
    check(
        "// heading\n\nfabric \"a\" { // the fabric\n  // inside\n  residency \"eu\"   // trailing\n\n  /* block */ state backend=\"local\"\n  // last\n}\n/-node \"gone\"\nnode /* inline */ arg /-skipped other\n",
        "// heading\n\nfabric \"a\" { // the fabric\n    // inside\n    residency \"eu\" // trailing\n\n    /* block */\n    state backend=\"local\"\n    // last\n}\n/-node \"gone\"\nnode /* inline */ arg /-skipped other\n",
    );
}

#[test]
fn values_are_copied_as_written() {
    check(
        "n 0x1F 1_000 1.5e3 #true #null #\"raw \"q\"\"# (t)\"typed\" \"\"\"\n    multi\n      line\n    \"\"\"\n",
        "n 0x1F 1_000 1.5e3 #true #null #\"raw \"q\"\"# (t)\"typed\" \"\"\"\n    multi\n      line\n    \"\"\"\n",
    );
}

#[test]
fn line_comments_in_a_continued_node_move_before_it() {
    check("node a \\ // why a\n    b\n", "// why a\nnode a b\n");
}

#[test]
fn review_findings() {
    // A `/-` node after `;` stays a node comment, on its own line.
    check("a; /-b 1\nc\n", "a\n/-b 1\nc\n");
    check("x { a; /-b 1 }\n", "x {\n    a\n    /-b 1\n}\n");
    check("/-a; b\n", "/-a;\nb\n");
    // Comment text keeps its `;`.
    check("a // see b;\n", "a // see b;\n");
    // A blank line after a `/-` node, and in a CR-only file, is kept.
    check("/-a\n\nb\n", "/-a\n\nb\n");
    check("a\r\rb\r", "a\n\nb\n");
}

#[test]
fn found_by_fuzzing() {
    // A block comment before the name moves after it; the `//` comment must
    // still align with the next line's, on every pass.
    check("(t)/*c*/name// one\nlonger// two\n", "(t)name /*c*/ // one\nlonger        // two\n");
    // A `/-` node that a line continuation carries onto a line holding only
    // its `;` keeps that `;`, so the next line stays a node of its own.
    check("/-n a \\ // c\n;s \\ // d;\nt\n", "/-n a \\ // c\n;\n// d;\ns t\n");
    // A `/-` node ending in a line continuation keeps the empty line that ends it.
    check("e {/-\\\n-\\\n\n// c\n\nd\n}\n", "e { /-\\\n-\\\n\n    // c\n\n    d\n}\n");
}

#[test]
fn broken_documents_are_refused() {
    assert!(matches!(format("node \"unclosed"), Err(FormatError::Syntax(_))));
    assert_eq!(format("").unwrap(), "");
}

mod random_edits {
    use proptest::prelude::*;

    use super::*;

    /// The suite's valid documents, read once.
    fn corpus() -> &'static [String] {
        static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        CORPUS.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kdl-spec-tests/input");
            let mut texts: Vec<String> = fs::read_dir(root)
                .unwrap()
                .filter_map(|e| fs::read_to_string(e.unwrap().path()).ok())
                .filter(|t| format(t).is_ok())
                .collect();
            texts.sort();
            texts
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any edit of a valid document: formatting never panics, and
        /// whenever it formats, the result means the same and is stable.
        #[test]
        fn formatting_edited_documents(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(),
                                       insert in prop::sample::select(vec!["", " ", "\n", ";", "{", "}", "/*c*/", "// c\n", "/-", "\\\n", "\"", "#"]),
                                       delete in 0usize..4) {
            let corpus = corpus();
            let text = pick.get(corpus);
            let mut cut = at.index(text.len() + 1);
            while !text.is_char_boundary(cut) { cut -= 1; }
            let mut end = (cut + delete).min(text.len());
            while !text.is_char_boundary(end) { end += 1; }
            let edited = format!("{}{insert}{}", &text[..cut], &text[end..]);
            if let Ok(out) = format(&edited) {
                let before = normal_form(&parse(FileId(0), &edited).document);
                let after = normal_form(&parse(FileId(0), &out).document);
                prop_assert_eq!(before, after);
                prop_assert_eq!(format(&out).ok(), Some(out.clone()));
            }
        }
    }
}

#[test]
fn fuzz_regressions_format_stably() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let Ok(text) = fs::read_to_string(entry.unwrap().path()) else { continue };
        if let Ok(out) = format(&text) {
            assert_eq!(format(&out).unwrap(), out);
            checked += 1;
        }
    }
    assert!(checked >= 1, "no formattable regression in {}", dir.display());
}
