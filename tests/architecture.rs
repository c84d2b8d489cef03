//! The shape ARCHITECTURE.md promises, checked: the compiler crates depend
//! only downward (diagnostics, then syntax, the stdlib's data and the
//! catalog, then the IR, the typed model, check, then analyze), never on
//! the binary or a target,
//! and on nothing that does IO (an HTTP, Kubernetes or async runtime crate).

use std::path::Path;

/// Each crate and the sovereign crates it may depend on.
const LAYERS: &[(&str, &[&str])] = &[
    ("compiler/diagnostics", &[]),
    ("compiler/syntax", &["sovereign-diagnostics"]),
    ("stdlib", &[]),
    ("compiler/catalog", &["sovereign-diagnostics", "sovereign-syntax"]),
    ("compiler/ir", &["sovereign-diagnostics"]),
    ("compiler/model", &["sovereign-diagnostics", "sovereign-catalog", "sovereign-ir"]),
    (
        "compiler/check",
        &[
            "sovereign-diagnostics",
            "sovereign-syntax",
            "sovereign-stdlib",
            "sovereign-catalog",
            "sovereign-ir",
            "sovereign-model",
        ],
    ),
    (
        "compiler/analyze",
        &[
            "sovereign-diagnostics",
            "sovereign-syntax",
            "sovereign-stdlib",
            "sovereign-catalog",
            "sovereign-ir",
            "sovereign-model",
            "sovereign-check",
        ],
    ),
    // The targets' emitters are pure too: they read the model and the analysis.
    ("targets/desired", &[]),
    (
        "targets/helm",
        &["sovereign-ir", "sovereign-model", "sovereign-catalog", "sovereign-analyze", "sovereign-desired"],
    ),
    ("targets/temporal", &["sovereign-model", "sovereign-analyze", "sovereign-desired", "sovereign-helm"]),
    ("targets/npu", &["sovereign-model", "sovereign-analyze", "sovereign-desired", "sovereign-helm"]),
    (
        "targets/k3s",
        &[
            "sovereign-ir",
            "sovereign-model",
            "sovereign-catalog",
            "sovereign-analyze",
            "sovereign-desired",
            "sovereign-helm",
        ],
    ),
];

/// Crates that would bring effects into the pure core.
const EFFECTFUL: &[&str] = &["tokio", "reqwest", "hyper", "kube", "walkdir", "tempfile", "libc", "tower-lsp-server"];

/// The names under `[dependencies]` of a manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_section = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
            continue;
        }
        if in_section && let Some((name, _)) = line.split_once(['=', '.']) {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn compiler_crates_depend_only_downward_and_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (dir, allowed) in LAYERS {
        let manifest = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        let deps = dependencies(&manifest);
        assert!(
            !deps.is_empty() || *dir == "compiler/diagnostics" || *dir == "stdlib",
            "{dir}: no dependencies parsed"
        );
        for dep in deps {
            if dep.starts_with("sovereign") && !allowed.contains(&dep.as_str()) {
                problems.push(format!("{dir} depends on {dep}, which is not below it"));
            }
            if EFFECTFUL.contains(&dep.as_str()) {
                problems.push(format!("{dir} depends on {dep}, which does IO"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_parser_of_manifests_sees_dependencies() {
    let deps = dependencies(
        "[package]\nname = \"x\"\n[dependencies]\nsovereign-check.workspace = true\nserde = \"1\"\n[dev-dependencies]\ntempfile = \"3\"\n",
    );
    assert_eq!(deps, vec!["sovereign-check", "serde"]);
}
