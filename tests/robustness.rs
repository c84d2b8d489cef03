//! Property test: random edits of the examples (deleted lines, swapped
//! values, truncation, inserted bytes) never crash the binary, which
//! always ends with exit code 0 or 1.

use std::fs;
use std::process::Command;

use proptest::prelude::*;

fn examples() -> Vec<String> {
    ["examples/lab/fabric.kdl", "examples/airgapped/fabric.kdl", "tests/cases/clean-design-example.kdl"]
        .iter()
        .map(|p| fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
    Insert(usize, &'static str),
    SwapTokens(usize, usize),
}

fn apply(text: &str, edit: &Edit) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let pick = |i: usize| i % lines.len().max(1);
    match edit {
        Edit::DeleteLine(i) => {
            let mut l = lines.clone();
            if !l.is_empty() {
                l.remove(pick(*i));
            }
            l.join("\n")
        }
        Edit::SwapLines(a, b) => {
            let mut l = lines.clone();
            if !l.is_empty() {
                l.swap(pick(*a), pick(*b));
            }
            l.join("\n")
        }
        Edit::Truncate(at) => {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_owned()
        }
        Edit::Insert(at, piece) => {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            format!("{}{piece}{}", &text[..at], &text[at..])
        }
        Edit::SwapTokens(a, b) => {
            let mut words: Vec<&str> = text.split(' ').collect();
            let n = words.len();
            words.swap(a % n, b % n);
            words.join(" ")
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let pieces = prop::sample::select(vec![
        "{",
        "}",
        "\"",
        "/*",
        "/-",
        "=",
        "#true",
        "0x",
        "\n",
        "depends-on \"chat\"",
        "é",
        "\\",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), pieces).prop_map(|(a, p)| Edit::Insert(a, p)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapTokens(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn edited_examples_never_crash(which in 0usize..3, edits in prop::collection::vec(edit(), 1..4)) {
        let mut text = examples()[which].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fabric.kdl");
        fs::write(&path, &text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_sovereign")).args(["check", "--format", "json"]).arg(&path).output().unwrap();
        let code = output.status.code();
        prop_assert!(code == Some(0) || code == Some(1), "exit {:?} on edits {:?}\n{}", code, edits, String::from_utf8_lossy(&output.stderr));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        prop_assert_eq!(json["summary"]["errors"].as_u64().unwrap() > 0, code == Some(1));
    }
}
