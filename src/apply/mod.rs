//! The executor: a plan's steps run against their targets (the sites'
//! clusters, Temporal servers) as a stream over the dependency graph. A
//! step starts as soon as every step it depends on is ready (not when a
//! wave is done), under a global concurrency limit and one per target; a
//! step that fails takes down only what depends on it, and a target that
//! cannot be reached only its own steps.
//!
//! Each step: its intent journaled, the write through its target's
//! [`driver::Driver`], its outcome journaled, the wait for readiness (or
//! until a deleted object is gone), and its readiness journaled. The
//! executor does not know which target it drives.

pub mod driver;
pub mod gates;
pub mod journal;
pub mod kubernetes;
pub mod oci;
pub mod qdrant;
pub mod refresh;
pub mod secrets;
pub mod temporal;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use sovereign_desired::ResourceId;
use sovereign_kubernetes::{Cluster, DriverError};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::plan::saved::Planned;
use crate::state::Live;
use driver::{Driver, Drivers, StepRun};
use journal::ApplyJournal;

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Server-side apply (a create or an update).
    Apply,
    /// Delete, wait until gone, then apply: an immutable field changed.
    Replace,
    Delete,
    /// Carried by another step (Helm values inside their HelmChart): done
    /// when that step is.
    Carried,
    /// A Secret apply makes ([`secrets`]): its value never in the step.
    Secret,
}

impl Op {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Op::Apply => "apply",
            Op::Replace => "replace",
            Op::Delete => "delete",
            Op::Carried => "carried",
            Op::Secret => "secret",
        }
    }
}

pub struct Step {
    pub op: Op,
    /// What is applied (for a delete: the last applied body, for its identity).
    pub planned: Planned,
    /// The body, parsed.
    pub object: Value,
    /// Steps (indices) that must be done before this one starts.
    pub after: Vec<usize>,
    /// For [`Op::Secret`]: what to make.
    pub makes: Option<sovereign_desired::ApplySecret>,
    /// Why it must not run (an evaluation gate that blocks it): it fails
    /// with this, before anything is sent, and what depends on it is skipped.
    pub blocked: Option<Failure>,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub concurrency: usize,
    pub per_cluster: usize,
    /// The first wait between readiness polls (it grows to a second).
    pub poll: Duration,
    /// Every readiness timeout is multiplied by this.
    pub timeout_scale: f64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { concurrency: 32, per_cluster: 16, poll: Duration::from_millis(100), timeout_scale: 1.0 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied(Live),
    Deleted,
    Carried,
    Failed(Failure),
    /// Not started because of another step or an unreachable cluster.
    Skipped(String),
    /// Not started because the run was interrupted.
    NotStarted,
}

impl Outcome {
    #[must_use]
    pub fn done(&self) -> bool {
        matches!(self, Outcome::Applied(_) | Outcome::Deleted | Outcome::Carried)
    }
}

/// Why a step failed: what kind of failure (the summary turns the target
/// refusing an object into a diagnostic at its declaration) and, for
/// people, what happened. Never a value from a Secret: messages carry ids,
/// field paths and the API's own words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub why: String,
    /// The fields the target named (`spec.replicas`), when it refused or
    /// another manager owns them.
    pub fields: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The target refused the object as written (a 4xx): the spec or
    /// sovereign's build of it is wrong, and a rerun fails the same way.
    Refused,
    /// Another field manager owns fields sovereign sets.
    Conflict,
    /// The cluster could not be reached, or kept failing transiently.
    Unreachable,
    /// Applied, and it will not become ready (or did not in its timeout).
    NotReady,
    /// An evaluation gate blocked it ([`gates`]).
    Gated,
    /// Anything else: the journal, a missing object sovereign patches.
    Other,
}

impl Failure {
    pub fn other(why: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Other, why: why.into(), fields: Vec::new() }
    }

    /// The target refused the object as written.
    pub fn refused(why: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Refused, why: why.into(), fields: Vec::new() }
    }

    pub fn not_ready(why: String) -> Failure {
        Failure { kind: FailureKind::NotReady, why, fields: Vec::new() }
    }

    fn journal(why: impl std::fmt::Display) -> Outcome {
        Outcome::Failed(Failure::other(format!("the journal: {why}")))
    }
}

impl From<&DriverError> for Failure {
    fn from(error: &DriverError) -> Failure {
        let (kind, fields) = match error {
            DriverError::Unreachable(_) => (FailureKind::Unreachable, Vec::new()),
            // Still failing after the retries: the server, not the object.
            DriverError::Rejected { code: 429 | 500..=599, .. } => (FailureKind::Unreachable, Vec::new()),
            DriverError::Rejected { code: 409, .. } => (FailureKind::Other, Vec::new()),
            DriverError::Rejected { causes, .. } => (
                FailureKind::Refused,
                causes.iter().map(|(field, _)| field.clone()).filter(|f| !f.is_empty()).collect(),
            ),
            DriverError::Conflict { fields, .. } => {
                (FailureKind::Conflict, fields.iter().map(|(_, field)| field.clone()).collect())
            }
            DriverError::UnknownKind(_) => (FailureKind::Refused, Vec::new()),
            DriverError::Config(_) => (FailureKind::Unreachable, Vec::new()),
        };
        let why = match error {
            DriverError::Unreachable(why) => format!("the cluster could not be reached: {why}"),
            other => other.to_string(),
        };
        Failure { kind, why, fields }
    }
}

/// What the executor reports as it goes.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    Started { id: &'a ResourceId, op: Op },
    Waiting { id: &'a ResourceId, why: &'a str },
    Finished { id: &'a ResourceId, outcome: &'a Outcome, elapsed: Duration },
}

/// Ctrl-C: 0 running, 1 finishing what is in flight, 2 abort now.
#[derive(Default)]
pub struct Interrupt(AtomicU8);

impl Interrupt {
    pub fn raise(&self) -> u8 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn level(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clusters by site: connected, or why not.
pub type Clusters = HashMap<Arc<str>, Result<Arc<Cluster>, String>>;

/// The Kubernetes drivers of `clusters`.
#[must_use]
pub fn kubernetes_drivers(clusters: &Clusters) -> Drivers {
    clusters
        .iter()
        .map(|(site, cluster)| {
            let driver = cluster
                .as_ref()
                .map(|cluster| Arc::new(kubernetes::KubernetesDriver(Arc::clone(cluster))) as Arc<dyn Driver>)
                .map_err(Clone::clone);
            (format!("kubernetes/{site}"), driver)
        })
        .collect()
}

/// Runs the steps; returns each one's outcome, in the steps' order.
pub async fn execute(
    steps: &[Step],
    drivers: &Drivers,
    journal: &ApplyJournal,
    settings: &Settings,
    report: &(dyn Fn(Event<'_>) + Sync),
    interrupt: &Interrupt,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; steps.len()];
    let mut waiting_on: Vec<usize> = steps.iter().map(|step| step.after.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (index, step) in steps.iter().enumerate() {
        for &before in &step.after {
            dependents[before].push(index);
        }
    }
    let global = &Semaphore::new(settings.concurrency.max(1));
    let per_target: HashMap<&str, Semaphore> =
        drivers.keys().map(|key| (key.as_str(), Semaphore::new(settings.per_cluster.max(1)))).collect();
    let keys: Vec<String> = steps.iter().map(|step| driver::driver_key(&step.planned.id)).collect();
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&index| waiting_on[index] == 0).rev().collect();
    let mut running = FuturesUnordered::new();
    let mut unreachable: HashMap<&str, String> = HashMap::new();
    loop {
        if interrupt.level() == 0 {
            while let Some(index) = ready.pop() {
                let step = &steps[index];
                let key = keys[index].as_str();
                let driver = match drivers.get(key) {
                    _ if step.op == Op::Carried => None,
                    Some(Ok(driver)) if !unreachable.contains_key(key) => Some(Arc::clone(driver)),
                    Some(Err(why)) => {
                        finish(index, Outcome::Skipped(why.clone()), steps, &mut outcomes, report, Duration::ZERO);
                        skip_dependents(index, steps, &dependents, &mut outcomes, report);
                        continue;
                    }
                    _ => {
                        let why = unreachable.get(key).cloned().unwrap_or_else(|| format!("nothing drives {key}"));
                        finish(index, Outcome::Skipped(why), steps, &mut outcomes, report, Duration::ZERO);
                        skip_dependents(index, steps, &dependents, &mut outcomes, report);
                        continue;
                    }
                };
                let limit = per_target.get(key);
                report(Event::Started { id: &step.planned.id, op: step.op });
                let span = step_span(step);
                running.push(
                    async move {
                        let started = Instant::now();
                        let run = StepRun { step, settings, journal, global, limit, report };
                        let outcome = run_step(&run, driver.as_deref()).await;
                        record_outcome(&outcome, started.elapsed());
                        (index, outcome, started.elapsed())
                    }
                    .instrument(span),
                );
            }
        }
        if running.is_empty() {
            break;
        }
        let next = tokio::select! {
            next = running.next() => next,
            () = wait_for_abort(interrupt) => break,
        };
        let Some((index, outcome, elapsed)) = next else { break };
        if let Outcome::Failed(failure) = &outcome
            && failure.kind == FailureKind::Unreachable
        {
            unreachable.insert(keys[index].as_str(), failure.why.clone());
        }
        let done = outcome.done();
        finish(index, outcome, steps, &mut outcomes, report, elapsed);
        if done {
            for &next in &dependents[index] {
                waiting_on[next] -= 1;
                if waiting_on[next] == 0 && outcomes[next].is_none() {
                    ready.push(next);
                }
            }
        } else {
            skip_dependents(index, steps, &dependents, &mut outcomes, report);
        }
    }
    outcomes.into_iter().map(|outcome| outcome.unwrap_or(Outcome::NotStarted)).collect()
}

/// The span of one step: what it changes, where it comes from; its
/// outcome and duration are recorded when it ends. Ids and declarations
/// only: a body (which may hold what a Secret holds) is never an attribute.
fn step_span(step: &Step) -> tracing::Span {
    let id = &step.planned.id;
    tracing::info_span!(
        "apply.resource",
        sovereign.phase = "apply",
        sovereign.resource.id = %id,
        sovereign.resource.target = id.target.word(),
        sovereign.resource.site = &*id.site,
        sovereign.resource.kind = &*id.kind,
        sovereign.action = step.op.word(),
        sovereign.declaration = step.planned.declaration.as_deref().unwrap_or(""),
        sovereign.outcome = tracing::field::Empty,
        sovereign.duration_ms = tracing::field::Empty,
    )
}

/// Records a step's end on its span; a failure is also an event with its
/// diagnostic code.
fn record_outcome(outcome: &Outcome, elapsed: Duration) {
    let span = tracing::Span::current();
    // As i64: the OpenTelemetry bridge sends u64s as text.
    span.record("sovereign.duration_ms", i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    let word = match outcome {
        Outcome::Applied(_) => "applied",
        Outcome::Deleted => "deleted",
        Outcome::Carried => "carried",
        Outcome::Skipped(_) => "skipped",
        Outcome::NotStarted => "not-started",
        Outcome::Failed(_) => "failed",
    };
    span.record("sovereign.outcome", word);
    if let Outcome::Failed(failure) = outcome {
        let code = match failure.kind {
            FailureKind::Refused => "SOV6001",
            FailureKind::Conflict => "SOV6002",
            _ => "",
        };
        tracing::error!(sovereign.error.code = code, sovereign.error.kind = ?failure.kind, "{}", failure.why);
    }
}

async fn wait_for_abort(interrupt: &Interrupt) {
    while interrupt.level() < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finish(
    index: usize,
    outcome: Outcome,
    steps: &[Step],
    outcomes: &mut [Option<Outcome>],
    report: &(dyn Fn(Event<'_>) + Sync),
    elapsed: Duration,
) {
    report(Event::Finished { id: &steps[index].planned.id, outcome: &outcome, elapsed });
    outcomes[index] = Some(outcome);
}

fn skip_dependents(
    index: usize,
    steps: &[Step],
    dependents: &[Vec<usize>],
    outcomes: &mut [Option<Outcome>],
    report: &(dyn Fn(Event<'_>) + Sync),
) {
    let mut stack = vec![index];
    while let Some(failed) = stack.pop() {
        for &next in &dependents[failed] {
            if outcomes[next].is_none() {
                let why = format!("it depends on {}, which was not done", steps[failed].planned.id);
                finish(next, Outcome::Skipped(why), steps, outcomes, report, Duration::ZERO);
                stack.push(next);
            }
        }
    }
}

async fn run_step(run: &StepRun<'_>, driver: Option<&dyn Driver>) -> Outcome {
    let step = run.step;
    if let Some(blocked) = &step.blocked {
        return Outcome::Failed(blocked.clone());
    }
    let Some(driver) = driver else { return Outcome::Carried };
    let id = &step.planned.id;
    let op = if step.op == Op::Delete { "delete" } else { "apply" };
    if let Err(why) = run.journal.intent(op, id).await {
        return Failure::journal(why);
    }
    match step.op {
        Op::Carried => Outcome::Carried,
        Op::Delete => match driver.delete(run).await {
            Ok(()) => match run.journal.deleted(id) {
                Ok(()) => Outcome::Deleted,
                Err(why) => Failure::journal(why),
            },
            Err(failure) => Outcome::Failed(failure),
        },
        Op::Apply | Op::Replace | Op::Secret => match driver.apply(run).await {
            Ok(live) => match run.journal.ready(id) {
                Ok(()) => Outcome::Applied(live),
                Err(why) => Failure::journal(why),
            },
            Err(failure) => Outcome::Failed(failure),
        },
    }
}

#[cfg(test)]
mod tests;
