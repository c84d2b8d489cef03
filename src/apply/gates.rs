//! Evaluation gates (IV Alchemist): before apply updates a serve that an
//! eval gates, the latest completed run of the eval's schedule is read from
//! Temporal and judged against the eval's thresholds (docs/evals.md).
//! `on-fail "block"` stops the serve's update when a metric misses its
//! threshold; `"warn"` says so and goes on. No completed run yet is said,
//! and is not a pass. `--ignore-gate EVAL` lets a blocked update through,
//! and the state records it.
//!
//! The gate is read from the schedule's own body (its workflow input: the
//! eval, the serve, the thresholds and the gate), so apply judges exactly
//! what the build scheduled. Judging is pure; reading the run is the
//! Temporal driver's.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sovereign_desired::ResourceId;
use sovereign_temporal_driver::EvalRun;

use crate::state::Record;

/// The serve a declaration names (`serve "chat"` → `chat`).
#[must_use]
pub fn serve_of(declaration: Option<&str>) -> Option<&str> {
    declaration?.strip_prefix("serve \"")?.strip_suffix('"')
}

/// The serves the state records an object of: the deployed ones, whose
/// changes gates judge (a first deployment has no eval run to judge).
#[must_use]
pub fn deployed_serves(recorded: &BTreeMap<ResourceId, Record>) -> BTreeSet<&str> {
    recorded.values().filter_map(|record| serve_of(record.declaration.as_deref())).collect()
}

/// One eval's gate on one serve.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub eval: String,
    pub serve: String,
    /// `block`, `warn` or `rollback` (not yet acted on: judged as `block`).
    pub on_fail: String,
    pub thresholds: Vec<Threshold>,
    /// Where its runs are: the Temporal namespace and the schedule's id.
    pub namespace: String,
    pub schedule_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// What a gate says about an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Pass {
        run: String,
    },
    /// A metric outside its bounds (or missing from the run's result).
    Miss {
        metric: String,
        value: Option<f64>,
        bound: String,
        run: String,
    },
    /// No run of the schedule has completed yet.
    NoRun,
}

impl Gate {
    /// The gate in an eval schedule's body (a `CreateScheduleRequest` the
    /// Temporal target built); `None` for another body.
    #[must_use]
    pub fn of_schedule(body: &Value) -> Option<Gate> {
        let payload = body.pointer("/schedule/action/startWorkflow/input/payloads/0")?;
        let input = sovereign_temporal_driver::decode_payload(payload);
        let thresholds = input["thresholds"]
            .as_array()?
            .iter()
            .map(|t| Threshold {
                metric: t["metric"].as_str().unwrap_or_default().to_owned(),
                min: t["min"].as_f64(),
                max: t["max"].as_f64(),
            })
            .collect();
        Some(Gate {
            eval: input["eval"].as_str()?.to_owned(),
            serve: input.pointer("/target/serve")?.as_str()?.to_owned(),
            on_fail: input["onFail"].as_str().unwrap_or("block").to_owned(),
            thresholds,
            namespace: body["namespace"].as_str()?.to_owned(),
            schedule_id: body["scheduleId"].as_str()?.to_owned(),
        })
    }

    /// Whether a miss stops the update.
    #[must_use]
    pub fn blocks(&self) -> bool {
        self.on_fail != "warn"
    }
}

/// The verdict of `run` (the latest completed one) on `gate`.
#[must_use]
pub fn judge(gate: &Gate, run: Option<&EvalRun>) -> Verdict {
    let Some(run) = run else { return Verdict::NoRun };
    let name = format!("{}/{}", run.workflow_id, run.run_id);
    for threshold in &gate.thresholds {
        let value = run.result.pointer("/metrics").and_then(|m| m.get(&threshold.metric)).and_then(Value::as_f64);
        let below = threshold.min.filter(|min| value.is_none_or(|v| v < *min)).map(|min| format!("min {min}"));
        let above = threshold.max.filter(|max| value.is_none_or(|v| v > *max)).map(|max| format!("max {max}"));
        if let Some(bound) = below.or(above) {
            return Verdict::Miss { metric: threshold.metric.clone(), value, bound, run: name };
        }
    }
    Verdict::Pass { run: name }
}

/// The verdict in words, for messages and the state.
#[must_use]
pub fn describe(gate: &Gate, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { run } => format!("eval \"{}\" passed in run {run}", gate.eval),
        Verdict::Miss { metric, value: Some(value), bound, run } => {
            format!("eval \"{}\": {metric} is {value} in run {run}, outside its {bound}", gate.eval)
        }
        Verdict::Miss { metric, value: None, bound, run } => {
            format!("eval \"{}\": run {run} reported no {metric} (its {bound})", gate.eval)
        }
        Verdict::NoRun => {
            format!(
                "eval \"{}\" has no completed run yet: its gate on serve \"{}\" is not a pass",
                gate.eval, gate.serve
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate() -> Gate {
        Gate {
            eval: "chat-smoke".into(),
            serve: "chat".into(),
            on_fail: "block".into(),
            thresholds: vec![
                Threshold { metric: "accuracy".into(), min: Some(0.7), max: None },
                Threshold { metric: "hallucination-rate".into(), min: None, max: Some(0.03) },
            ],
            namespace: "lab".into(),
            schedule_id: "eval-chat-smoke".into(),
        }
    }

    fn run(metrics: Value) -> EvalRun {
        EvalRun {
            workflow_id: "w".into(),
            run_id: "r".into(),
            closed: String::new(),
            result: json!({"metrics": metrics}),
        }
    }

    #[test]
    fn every_bound_is_judged_and_a_missing_metric_misses() {
        let pass = run(json!({"accuracy": 0.9, "hallucination-rate": 0.01}));
        assert_eq!(judge(&gate(), Some(&pass)), Verdict::Pass { run: "w/r".into() });
        let low = run(json!({"accuracy": 0.5, "hallucination-rate": 0.01}));
        assert!(
            matches!(judge(&gate(), Some(&low)), Verdict::Miss { ref metric, value: Some(v), .. } if metric == "accuracy" && v == 0.5)
        );
        let high = run(json!({"accuracy": 0.9, "hallucination-rate": 0.2}));
        assert!(matches!(judge(&gate(), Some(&high)), Verdict::Miss { ref bound, .. } if bound == "max 0.03"));
        let missing = run(json!({"accuracy": 0.9}));
        assert!(matches!(judge(&gate(), Some(&missing)), Verdict::Miss { value: None, .. }));
        assert_eq!(judge(&gate(), None), Verdict::NoRun);
    }

    #[test]
    fn the_gate_is_read_from_the_schedule_the_build_made() {
        let input = json!({"eval": "chat-smoke", "target": {"serve": "chat", "endpoint": "http://chat:8000/v1"},
                           "thresholds": [{"metric": "accuracy", "min": 0.7, "max": null}], "onFail": "warn"});
        let body = json!({"namespace": "lab", "scheduleId": "eval-chat-smoke", "schedule": {"action": {"startWorkflow": {
            "input": {"payloads": [{"metadata": {"encoding": sovereign_desired::base64(b"json/plain")},
                                     "data": sovereign_desired::base64(input.to_string().as_bytes())}]}}}}});
        let gate = Gate::of_schedule(&body).unwrap();
        assert_eq!((gate.eval.as_str(), gate.serve.as_str(), gate.blocks()), ("chat-smoke", "chat", false));
        assert_eq!(gate.thresholds, vec![Threshold { metric: "accuracy".into(), min: Some(0.7), max: None }]);
    }
}
