//! The Temporal target: what the Temporal driver sends to a server's HTTP
//! API (the frontend's grpc-gateway, port 7243), as proto-JSON bodies.
//!
//! - each `namespace` of a `temporal` → a `RegisterNamespaceRequest`
//!   (`POST /api/v1/namespaces`): `namespace` and
//!   `workflowExecutionRetentionPeriod`, a Duration written in seconds
//!   (`"2592000s"`); an existing namespace answers ALREADY_EXISTS, so the
//!   driver describes first;
//! - each `eval` → a `CreateScheduleRequest` (`POST
//!   /api/v1/namespaces/{namespace}/schedules/{scheduleId}`) in its
//!   `runs-on` namespace: the cron spec, a `startWorkflow` action with the
//!   workflow type and task queue, and as input the target's endpoint,
//!   the dataset's ledger table and the metric thresholds. The gate
//!   (`on-fail`) is in the input too, so apply can read it back.
//!
//! Sources: temporalio/api `temporal/api/workflowservice/v1/service.proto`
//! (HTTP bindings) and `request_response.proto`, `schedule/v1/message.proto`
//! (`ScheduleSpec.cron_string`, `ScheduleAction.start_workflow`),
//! `common/v1/message.proto` (`Payload`: metadata `encoding: json/plain`,
//! data the JSON bytes; proto-JSON writes bytes as base64).
//!
//! Architecture Invariant: pure and deterministic, like every emitter.

use std::sync::Arc;

use serde_json::{Value, json};
use sovereign_analyze::Analysis;
use sovereign_desired::modules::{Module, SERVE_PORT, namespace_name, serve_service};
use sovereign_desired::{DesiredState, Resource, ResourceId, Target};
use sovereign_model::{OnFail, Spec};

/// The workflow an eval schedule starts, and the task queue its workers
/// poll: the eval workers (the drivers issue) register under these names.
pub const EVAL_WORKFLOW: &str = "sovereign.Eval";
pub const EVAL_TASK_QUEUE: &str = "sovereign-evals";

/// The requests for every Temporal namespace and eval schedule.
#[must_use]
pub fn emit(spec: &Spec, analysis: &Analysis) -> DesiredState {
    let mut state = DesiredState::default();
    emit_into(spec, analysis, &mut state);
    state
}

/// The requests of the sites `state` wants, added to it.
pub fn emit_into(spec: &Spec, analysis: &Analysis, state: &mut DesiredState) {
    let fabric = spec.fabric.name.as_ref().map_or_else(|| Arc::from("fabric"), |n| n.qualified.clone());
    let wanted = analysis.sites.wanted(state.only.as_ref());
    for temporal in spec.temporals.values() {
        if !wanted.has(temporal.site.value.index()) {
            continue;
        }
        let site = analysis.sites.sites[temporal.site.value.index()].name.clone();
        let server = sovereign_helm::label(&temporal.name.qualified);
        if temporal.endpoint.is_none() && !sovereign_helm::installs_temporal(analysis, temporal) {
            // The Helm target says why no server is installed; nothing to register on.
            continue;
        }
        let installed = temporal.endpoint.is_none().then(|| sovereign_helm::helm_chart_id(&site, &server));
        for namespace in &temporal.namespaces {
            let name = namespace.name.text();
            let body = json!({
                "namespace": name,
                "workflowExecutionRetentionPeriod": format!("{}s", namespace.retention.value.div_ceil(1000)),
            });
            let id = ResourceId {
                target: Target::Temporal,
                site: site.clone(),
                kind: "namespace".into(),
                namespace: Some(server.as_str().into()),
                name: name.into(),
            };
            let mut resource =
                Resource::new(id, Some(format!("temporal \"{}\"", temporal.name.qualified).into()), &body);
            if let Some(chart) = &installed {
                resource.depends_on.insert(chart.clone());
            }
            state.add(resource);
        }
    }
    for eval in spec.evals.values() {
        let written = &eval.name.qualified;
        let temporal = &spec.temporals[eval.runs_on.temporal.value];
        // An eval is said (built or not) by the build of its Temporal's site.
        if !wanted.has(temporal.site.value.index()) {
            continue;
        }
        let Some(namespace) = eval.runs_on.namespace.as_ref().map(|n| &temporal.namespaces[n.value.index as usize])
        else {
            state.unbuilt.push(format!("eval \"{written}\": `runs-on` names no namespace, so no schedule is built"));
            continue;
        };
        let Some(schedule) = &eval.schedule else {
            state.unbuilt.push(format!("eval \"{written}\": no `schedule`: on-demand evals are not yet supported"));
            continue;
        };
        let namespace = namespace.name.text();
        if temporal.endpoint.is_none() && !sovereign_helm::installs_temporal(analysis, temporal) {
            state
                .unbuilt
                .push(format!("eval \"{written}\": its Temporal \"{}\" is not built", temporal.name.qualified));
            continue;
        }
        let serve = &spec.serves[eval.target.value];
        // The endpoint is the serve's Service on the Temporal's cluster.
        if !analysis.workload_sites.sites(serve.item).any(|s| s == temporal.site.value) {
            state.unbuilt.push(format!(
                "eval \"{written}\": its target serve \"{}\" runs on another cluster than its Temporal; a cross-cluster endpoint is not yet supported",
                serve.name.qualified
            ));
            continue;
        }
        let dataset = &spec.datasets[eval.dataset.value];
        let endpoint = format!(
            "http://{}.{}.svc:{SERVE_PORT}/v1",
            serve_service(&serve.name.qualified),
            namespace_name(&fabric, Module::Kinetic)
        );
        let ledger = dataset.ledger.as_ref().map(|l| &*spec.ledgers[l.value].name.qualified);
        let thresholds: Vec<Value> = eval
            .metrics
            .iter()
            .map(|m| json!({ "metric": m.name.text(), "min": m.min.as_ref().map(|v| v.value), "max": m.max.as_ref().map(|v| v.value) }))
            .collect();
        let on_fail = match eval.on_fail.value {
            OnFail::Block => "block",
            OnFail::Warn => "warn",
            OnFail::Rollback => "rollback",
        };
        let input = json!({
            "eval": &**written,
            "target": { "serve": &*serve.name.qualified, "endpoint": endpoint },
            "dataset": { "name": &*dataset.name.qualified, "ledger": ledger, "table": dataset.table.as_ref().map(|t| &*t.value) },
            "thresholds": thresholds,
            "onFail": on_fail,
        });
        let schedule_id = sovereign_helm::label(&format!("eval-{written}"));
        let body = json!({
            "namespace": namespace,
            "scheduleId": schedule_id,
            "schedule": {
                "spec": { "cronString": [schedule.value.text()] },
                "action": { "startWorkflow": {
                    "workflowId": schedule_id,
                    "workflowType": { "name": EVAL_WORKFLOW },
                    "taskQueue": { "name": EVAL_TASK_QUEUE },
                    "input": { "payloads": [json_payload(&input)] },
                }},
                "policies": { "overlapPolicy": "SCHEDULE_OVERLAP_POLICY_SKIP" },
            },
        });
        let server = sovereign_helm::label(&temporal.name.qualified);
        let site = analysis.sites.sites[temporal.site.value.index()].name.clone();
        let id = ResourceId {
            target: Target::Temporal,
            site: site.clone(),
            kind: "schedule".into(),
            namespace: Some(format!("{server}/{namespace}").into()),
            name: schedule_id.as_str().into(),
        };
        let mut resource = Resource::new(id, Some(format!("eval \"{written}\"").into()), &body);
        resource.depends_on.insert(ResourceId {
            target: Target::Temporal,
            site,
            kind: "namespace".into(),
            namespace: Some(server.as_str().into()),
            name: namespace.into(),
        });
        state.add(resource);
    }
}

/// A Temporal `Payload` holding `value` as JSON (the default data
/// converter's `json/plain` encoding), in proto-JSON: bytes as base64.
#[must_use]
pub fn json_payload(value: &Value) -> Value {
    json!({
        "metadata": { "encoding": sovereign_desired::base64(b"json/plain") },
        "data": sovereign_desired::base64(value.to_string().as_bytes()),
    })
}
