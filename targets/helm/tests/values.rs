//! The values of every example against the upstream charts they are for
//! (`tests/fixtures/upstream/helm-charts/`, copied from `../shared/fixtures/`): the chart's `values.schema.json`
//! where it publishes one (the OpenTelemetry Collector), else the keys of
//! its `values.yaml` (Qdrant, Temporal), and no key Temporal chart 1.x removed.

use std::path::{Path, PathBuf};

use sovereign_check::Stdlib;
use sovereign_desired::Target;

#[path = "../../../tests/support/example_host.rs"]
mod example_host;
#[path = "../../../tests/support/files.rs"]
mod files;

use example_host::{examples, host};

/// (chart, values) of every release of every example.
fn values() -> Vec<(String, serde_json::Value)> {
    let (stdlib, _) = Stdlib::embedded();
    let mut out = Vec::new();
    for dir in examples() {
        let host = host(&dir);
        let bytes = sovereign_check::Host::read(&host, Path::new("fabric.kdl")).unwrap();
        let compiled = sovereign_analyze::compile(&stdlib, Path::new("fabric.kdl"), bytes, &host);
        let (Some(spec), Some(analysis)) = (compiled.spec.as_ref(), compiled.analysis.as_ref()) else {
            panic!("{} must check clean", dir.display())
        };
        let emitted = sovereign_helm::emit(spec, analysis, &compiled.catalog);
        for resource in emitted.state.resources.values().filter(|r| r.id.target == Target::Helm) {
            let chart = resource.id.kind.strip_prefix("values/").unwrap().to_owned();
            out.push((chart, resource.body()));
        }
    }
    out
}

#[test]
fn every_release_validates_against_its_upstream_chart() {
    let charts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/upstream/helm-charts");
    if !charts.is_dir() || !files::python_with_jsonschema() {
        files::skip_without("the chart fixtures, or python3 with jsonschema and yaml,");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sovereign-helm-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let all = values();
    let mut seen = std::collections::BTreeSet::new();
    for chart in ["qdrant", "temporal", "opentelemetry-collector"] {
        let files: Vec<PathBuf> = all
            .iter()
            .filter(|(c, _)| c == chart)
            .enumerate()
            .map(|(i, (_, values))| {
                let path = dir.join(format!("{chart}-{i}.json"));
                std::fs::write(&path, values.to_string()).unwrap();
                path
            })
            .collect();
        assert!(!files.is_empty(), "no example installs the {chart} chart");
        seen.insert(chart);
        // Pass-through objects (Kubernetes securityContexts, Temporal's raw
        // server config) and keys documented only in values.yaml comments.
        let (opaque, documented, removed) = match chart {
            "qdrant" => ("podSecurityContext,containerSecurityContext", "apiKey", ""),
            "temporal" => (
                "server.securityContext,server.config.persistence.datastores,admintools.securityContext,admintools.containerSecurityContext,web.securityContext,web.containerSecurityContext,schema.securityContext,schema.containerSecurityContext,server.frontend.containerSecurityContext,server.internal-frontend.containerSecurityContext,server.history.containerSecurityContext,server.matching.containerSecurityContext,server.worker.containerSecurityContext",
                "",
                "cassandra,elasticsearch,mysql,postgresql,prometheus,grafana,server.config.persistence.default",
            ),
            _ => ("", "", ""),
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_values.py");
        let output = std::process::Command::new("python3")
            .arg(script)
            .arg(charts.join(chart))
            .args(&files)
            .env("OPAQUE", opaque)
            .env("DOCUMENTED", documented)
            .env("REMOVED", removed)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{chart}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(seen.len(), 3);
}
