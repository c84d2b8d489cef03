//! The evaluation gates of a run ([`sovereign::apply::gates`]): for each
//! serve whose Kubernetes objects this run updates, the evals that gate it
//! (their schedules, as this run applies them or as the state recorded
//! them), each judged on its latest completed run read from Temporal. A
//! blocking miss blocks the serve's updates (the rest of the plan goes
//! on); `--ignore-gate EVAL` lets them through and the state records it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use serde_json::{Value, json};
use sovereign::apply::driver::driver_key;
use sovereign::apply::gates::{self, Gate, Verdict};
use sovereign::apply::{Clusters, Failure, FailureKind, Op, Outcome, Step};
use sovereign::plan::saved::Basis;
use sovereign::state::StateDocument;
use sovereign_desired::{ResourceId, Target};

use crate::RunArgs;

/// A gate `--ignore-gate` overrode: the serve, and what to record.
pub(crate) struct Override {
    serve: String,
    text: String,
}

/// The gates of `steps`' serve updates, judged; blocked updates get
/// their [`Step::blocked`].
pub(crate) async fn check(
    steps: &mut [Step],
    basis: &Basis,
    clusters: &Clusters,
    state: &StateDocument,
    run: &RunArgs,
) -> Vec<Override> {
    // A serve is updated when the state records any object of it (a first
    // deployment has no run to judge); then every step of it is gated, so
    // that a move (a new Deployment, the old one deleted) is judged too.
    let deployed = gates::deployed_serves(&state.resources);
    let gated = |step: &Step| -> Option<String> {
        let serve = gates::serve_of(step.planned.declaration.as_deref())?;
        let kubernetes = matches!(step.planned.id.target, Target::K3s | Target::Helm);
        (kubernetes && deployed.contains(serve) && step.op != Op::Carried).then(|| serve.to_owned())
    };
    let serves: std::collections::BTreeSet<String> = steps.iter().filter_map(&gated).collect();
    if serves.is_empty() {
        return Vec::new();
    }
    let by_serve = gates_by_serve(steps, state);
    let timeout = Duration::from_secs_f64(run.cluster.request_timeout.max(0.1));
    let mut blocked: BTreeMap<String, Failure> = BTreeMap::new();
    let mut overrides = Vec::new();
    for serve in &serves {
        for (gate, schedule) in by_serve.get(serve).into_iter().flatten() {
            let key = driver_key(schedule);
            // A schedule this run creates has had no run yet.
            let created = !state.resources.contains_key(schedule);
            let verdict = match crate::reach::temporal_server(&key, &schedule.site, &basis.endpoints, clusters, timeout)
            {
                _ if created => Ok(Verdict::NoRun),
                Ok(server) => server
                    .latest_completed_run(&gate.namespace, &gate.schedule_id)
                    .await
                    .map(|latest| gates::judge(gate, latest.as_ref()))
                    .map_err(|e| e.to_string()),
                Err(why) => Err(why),
            };
            let ignored = run.ignore_gate.contains(&gate.eval);
            let (level, text) = match &verdict {
                Ok(verdict @ Verdict::Pass { .. }) => ("ok", gates::describe(gate, verdict)),
                Ok(verdict @ Verdict::NoRun) => ("warning", gates::describe(gate, verdict)),
                Ok(verdict @ Verdict::Miss { .. }) => {
                    let text = gates::describe(gate, verdict);
                    if !gate.blocks() {
                        ("warning", format!("{text}; on-fail \"{}\": serve \"{serve}\" is updated", gate.on_fail))
                    } else if ignored {
                        overrides.push(Override { serve: serve.clone(), text: text.clone() });
                        ("warning", format!("{text}; --ignore-gate {}: serve \"{serve}\" is updated anyway", gate.eval))
                    } else {
                        let why = format!(
                            "the gate of eval \"{}\" blocks the update of serve \"{serve}\": {text}; `--ignore-gate {}` lets it through",
                            gate.eval, gate.eval
                        );
                        ("error", block(&mut blocked, serve, why))
                    }
                }
                Err(why) if gate.blocks() && ignored => {
                    let text = format!("the gate of eval \"{}\" cannot be read ({why})", gate.eval);
                    overrides.push(Override { serve: serve.clone(), text: text.clone() });
                    ("warning", format!("{text}; --ignore-gate {}: serve \"{serve}\" is updated anyway", gate.eval))
                }
                Err(why) if gate.blocks() => {
                    let why = format!(
                        "the gate of eval \"{}\" on serve \"{serve}\" cannot be read ({why}); `--ignore-gate {}` updates it anyway",
                        gate.eval, gate.eval
                    );
                    ("error", block(&mut blocked, serve, why))
                }
                Err(why) => ("warning", format!("the gate of eval \"{}\" cannot be read: {why}", gate.eval)),
            };
            if run.json {
                let line = json!({"event": "gate", "eval": gate.eval, "serve": serve, "level": level, "message": text});
                let _ = writeln!(std::io::stdout(), "{line}");
            } else {
                let _ = writeln!(std::io::stderr(), "gate: {level}: {text}");
            }
        }
    }
    let known: Vec<&str> = by_serve.values().flatten().map(|(gate, _)| gate.eval.as_str()).collect();
    for eval in run.ignore_gate.iter().filter(|eval| !known.contains(&eval.as_str())) {
        let _ = writeln!(
            std::io::stderr(),
            "warning: --ignore-gate {eval}: no eval of that name gates a serve this run updates"
        );
    }
    for step in steps.iter_mut() {
        if let Some(failure) = gated(step).and_then(|serve| blocked.get(&serve)) {
            step.blocked = Some(failure.clone());
        }
    }
    overrides
}

/// Blocks `serve`'s steps with `why`; the text, to print.
fn block(blocked: &mut BTreeMap<String, Failure>, serve: &str, why: String) -> String {
    blocked.insert(serve.to_owned(), Failure { kind: FailureKind::Gated, why: why.clone(), fields: Vec::new() });
    why
}

/// The gates on each serve: from the eval schedules this run applies,
/// else as the state recorded them.
fn gates_by_serve(steps: &[Step], state: &StateDocument) -> BTreeMap<String, Vec<(Gate, ResourceId)>> {
    let schedule = |id: &ResourceId| id.target == Target::Temporal && &*id.kind == "schedule";
    let mut found: BTreeMap<ResourceId, Gate> = BTreeMap::new();
    for step in steps.iter().filter(|step| schedule(&step.planned.id) && step.op != Op::Delete) {
        if let Some(gate) = Gate::of_schedule(&step.object) {
            found.insert(step.planned.id.clone(), gate);
        }
    }
    let deleted: Vec<&ResourceId> =
        steps.iter().filter(|s| s.op == Op::Delete && schedule(&s.planned.id)).map(|s| &s.planned.id).collect();
    for (id, record) in state.resources.iter().filter(|(id, _)| schedule(id) && !deleted.contains(id)) {
        if found.contains_key(id) {
            continue;
        }
        if let Some(gate) =
            serde_json::from_str::<Value>(record.applied.get()).ok().as_ref().and_then(Gate::of_schedule)
        {
            found.insert(id.clone(), gate);
        }
    }
    let mut by_serve: BTreeMap<String, Vec<(Gate, ResourceId)>> = BTreeMap::new();
    for (id, gate) in found {
        by_serve.entry(gate.serve.clone()).or_default().push((gate, id));
    }
    by_serve
}

/// Records each override on the serve's objects this run applied.
pub(crate) fn record(state: &mut StateDocument, overrides: &[Override], steps: &[Step], outcomes: &[Outcome], at: u64) {
    for over in overrides {
        let declaration = format!("serve \"{}\"", over.serve);
        for (step, outcome) in steps.iter().zip(outcomes) {
            if matches!(outcome, Outcome::Applied(_))
                && step.planned.declaration.as_deref() == Some(&declaration)
                && let Some(record) = state.resources.get_mut(&step.planned.id)
            {
                record.gate_override =
                    Some(format!("--ignore-gate at {}: {}", sovereign::clock::rfc3339(at), over.text));
            }
        }
    }
}
