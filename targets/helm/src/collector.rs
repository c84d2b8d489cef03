//! `observe` → the OpenTelemetry Collector chart on every cluster.
//!
//! Facts (open-telemetry/opentelemetry-helm-charts
//! `charts/opentelemetry-collector` at chart 0.170.0,
//! ../shared/fixtures/helm-charts/opentelemetry-collector):
//! - `mode` and `image.repository` have no default; the k8s distribution
//!   is `ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s`
//!   with `command.name: otelcol-k8s`; its tag defaults to the chart's appVersion;
//! - `values.schema.json` rejects unknown keys; `config` is merged over
//!   the defaults, and a default is removed by setting it to null;
//! - the `health_check` extension stays in `service.extensions` (the
//!   chart's probes use it);
//! - `ports.<name>` needs `enabled`; the defaults give otlp a `hostPort`,
//!   which the baseline and restricted profiles forbid: 0 here.
//!
//! Logfire (logfire.pydantic.dev/docs "Alternative clients", "Data
//! Regions"): OTLP over HTTP only, to `https://logfire-<region>.pydantic.dev`,
//! with `Authorization: <write token>` and no `Bearer` prefix; the token
//! comes from a Secret through `extraEnvs`.
//!
//! Redaction: an `attributes` processor (in the k8s distribution) deletes
//! the OpenTelemetry GenAI attributes that carry payloads (prompts,
//! completions, messages, system instructions) before a redacting export.

use serde_json::{Map, Value, json};
use sovereign_analyze::Analysis;
use sovereign_catalog::Chart;
use sovereign_desired::modules::{Module, namespace_name};
use sovereign_model::{CollectorMode, ExportDestination, Spec};

use crate::{Emitted, Release, restricted_container, restricted_pod, secret_ref};

pub(crate) const IMAGE: &str = "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s";
/// The OTLP receiver ports workloads send to.
pub const OTLP_GRPC_PORT: u16 = 4317;
pub const OTLP_HTTP_PORT: u16 = 4318;
/// The k8s distribution's images run as this uid (the `otel` user, 10001).
const UID: u64 = 10001;

/// The GenAI semantic-convention attributes that hold payloads
/// (opentelemetry.io/docs/specs/semconv/gen-ai, attribute registry).
const PAYLOAD_ATTRIBUTES: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

/// Logfire's ingest base URL for a region (pydantic/logfire `auth.py` REGIONS).
fn logfire_url(region: &str) -> Option<&'static str> {
    match region {
        "us" => Some("https://logfire-us.pydantic.dev"),
        "eu" => Some("https://logfire-eu.pydantic.dev"),
        _ => None,
    }
}

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, fabric: &str, chart: &Chart, emitted: &mut Emitted) {
    let namespace = namespace_name(fabric, Module::Autopilot);
    for observe in spec.observes.values() {
        let written = &observe.name.qualified;
        let mode = observe.collector.as_ref().map_or(CollectorMode::DaemonSet, |c| c.mode.value);
        let mut exporters = Map::new();
        let mut pipelines = Map::new();
        let mut envs = Vec::new();
        // Drop the defaults sovereign does not use (a null removes a merged default).
        for default in ["traces", "metrics", "logs"] {
            pipelines.insert(default.into(), Value::Null);
        }
        exporters.insert("debug".into(), Value::Null);
        let mut redacts = false;
        for (n, export) in observe.exports.iter().enumerate() {
            let (name, exporter) = match export.destination.value {
                ExportDestination::Logfire => {
                    let region = export.region.as_ref().map_or("eu", |r| &*r.value);
                    let Some(url) = logfire_url(region) else {
                        emitted
                            .state
                            .unbuilt
                            .push(format!("observe \"{written}\": Logfire has no region `{region}` (us or eu)"));
                        continue;
                    };
                    let mut exporter = json!({ "endpoint": url });
                    if let Some(token) = &export.token {
                        let env = format!("LOGFIRE_TOKEN_{n}");
                        let secret = secret_ref(spec, token.value);
                        envs.push(json!({ "name": env, "valueFrom": { "secretKeyRef": { "name": secret.name, "key": secret.key } } }));
                        exporter["headers"] = json!({ "Authorization": format!("${{env:{env}}}") });
                    }
                    (format!("otlphttp/logfire-{n}"), exporter)
                }
                ExportDestination::Otlp => {
                    let Some(endpoint) = &export.endpoint else {
                        emitted
                            .state
                            .unbuilt
                            .push(format!("observe \"{written}\": an `otlp` export without `endpoint`"));
                        continue;
                    };
                    (format!("otlphttp/otlp-{n}"), json!({ "endpoint": endpoint.value.as_str() }))
                }
            };
            let mut processors = vec!["memory_limiter"];
            if export.redact.value {
                processors.push("attributes/redact");
                redacts = true;
            }
            processors.push("batch");
            for signal in ["traces", "metrics", "logs"] {
                pipelines.insert(
                    format!("{signal}/{}", name.replace('/', "-")),
                    json!({ "receivers": ["otlp"], "processors": processors, "exporters": [name] }),
                );
            }
            exporters.insert(name, exporter);
        }
        let mut processors = Map::new();
        if redacts {
            let actions: Vec<Value> =
                PAYLOAD_ATTRIBUTES.iter().map(|key| json!({ "key": key, "action": "delete" })).collect();
            processors.insert("attributes/redact".into(), json!({ "actions": actions }));
        }
        let mut ports = Map::new();
        for port in ["otlp", "otlp-http"] {
            ports.insert(port.into(), json!({ "enabled": true, "hostPort": 0 }));
        }
        for port in ["jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin"] {
            ports.insert(port.into(), json!({ "enabled": false }));
        }
        let values = json!({
            "mode": match mode { CollectorMode::DaemonSet => "daemonset", CollectorMode::Deployment => "deployment" },
            "image": { "repository": IMAGE },
            "command": { "name": "otelcol-k8s" },
            "ports": ports,
            "podSecurityContext": restricted_pod(UID),
            "securityContext": restricted_container(),
            "extraEnvs": envs,
            "config": {
                "receivers": { "jaeger": null, "zipkin": null, "prometheus": null },
                "processors": processors,
                "exporters": exporters,
                "service": { "pipelines": pipelines },
            },
        });
        for site in analysis.sites.sites.iter().filter(|s| s.has_cluster) {
            if !emitted.wants(site.id.index()) {
                continue;
            }
            emitted.releases.push(Release {
                site: site.name.clone(),
                chart: chart.clone(),
                name: crate::collector_release(written),
                namespace: namespace.clone(),
                module: Module::Autopilot,
                declaration: ("observe", written.clone()),
                values: values.clone(),
                after: Vec::new(),
                database: None,
            });
        }
    }
}
