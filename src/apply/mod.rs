//! The executor: a plan's steps run against the sites' clusters as a
//! stream over the dependency graph. A step starts as soon as every step
//! it depends on is ready (not when a wave is done), under a global
//! concurrency limit and one per cluster; a step that fails takes down
//! only what depends on it, and a cluster that cannot be reached only its
//! own site's steps.
//!
//! Each step: its intent journaled, the write (server-side apply, or a
//! delete and a wait until the object is gone), its outcome journaled,
//! then the wait for readiness ([`sovereign_kubernetes::readiness`]).
//! Concurrency permits are held for writes, not for readiness waits, so a
//! model loading its weights for ten minutes blocks nothing else.

pub mod journal;
pub mod refresh;
pub mod secrets;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use sovereign_desired::ResourceId;
use sovereign_kubernetes::readiness::{self, Needs, Readiness};
use sovereign_kubernetes::{Cluster, DriverError};
use tokio::sync::Semaphore;

use crate::plan::saved::Planned;
use crate::state::Live;
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
    /// Anything else: the journal, a missing object sovereign patches.
    Other,
}

impl Failure {
    pub fn other(why: impl Into<String>) -> Failure {
        Failure { kind: FailureKind::Other, why: why.into(), fields: Vec::new() }
    }

    fn not_ready(why: String) -> Failure {
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

/// Runs the steps; returns each one's outcome, in the steps' order.
pub async fn execute(
    steps: &[Step],
    clusters: &Clusters,
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
    let per_cluster: HashMap<&str, Semaphore> =
        clusters.keys().map(|site| (&**site, Semaphore::new(settings.per_cluster.max(1)))).collect();
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&index| waiting_on[index] == 0).rev().collect();
    let mut running = FuturesUnordered::new();
    let mut unreachable: HashMap<Arc<str>, String> = HashMap::new();
    loop {
        if interrupt.level() == 0 {
            while let Some(index) = ready.pop() {
                let step = &steps[index];
                let site = &step.planned.id.site;
                let cluster = match clusters.get(site) {
                    _ if step.op == Op::Carried => None,
                    Some(Ok(cluster)) if !unreachable.contains_key(site) => Some(Arc::clone(cluster)),
                    Some(Err(why)) => {
                        finish(index, Outcome::Skipped(why.clone()), steps, &mut outcomes, report, Duration::ZERO);
                        skip_dependents(index, steps, &dependents, &mut outcomes, report);
                        continue;
                    }
                    _ => {
                        let why =
                            unreachable.get(site).cloned().unwrap_or_else(|| format!("site {site} has no cluster"));
                        finish(index, Outcome::Skipped(why), steps, &mut outcomes, report, Duration::ZERO);
                        skip_dependents(index, steps, &dependents, &mut outcomes, report);
                        continue;
                    }
                };
                let limit = per_cluster.get(&**site);
                report(Event::Started { id: &step.planned.id, op: step.op });
                running.push(async move {
                    let started = Instant::now();
                    let outcome = run_step(step, cluster.as_deref(), journal, settings, global, limit, report).await;
                    (index, outcome, started.elapsed())
                });
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
            unreachable.insert(Arc::clone(&steps[index].planned.id.site), failure.why.clone());
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

fn failed(error: &DriverError) -> Outcome {
    Outcome::Failed(error.into())
}

async fn run_step(
    step: &Step,
    cluster: Option<&Cluster>,
    journal: &ApplyJournal,
    settings: &Settings,
    global: &Semaphore,
    limit: Option<&Semaphore>,
    report: &(dyn Fn(Event<'_>) + Sync),
) -> Outcome {
    let Some(cluster) = cluster else { return Outcome::Carried };
    let id = &step.planned.id;
    // The cluster's permit first: a step waiting on a busy cluster holds
    // no global permit that another cluster's step could use.
    let permits = || async {
        let local = match limit {
            Some(limit) => limit.acquire().await.ok(),
            None => None,
        };
        let global = global.acquire().await.ok();
        (local, global)
    };
    let op = if step.op == Op::Delete { "delete" } else { "apply" };
    if let Err(why) = journal.intent(op, id).await {
        return Failure::journal(why);
    }
    match step.op {
        Op::Carried => Outcome::Carried,
        Op::Secret => {
            let Some(secret) = &step.makes else {
                return Outcome::Failed(Failure::other("a Secret step without its Secret"));
            };
            let held = permits().await;
            let made = secrets::make(cluster, secret, &step.object).await;
            drop(held);
            match made {
                Ok(()) => Outcome::Applied(Live::default()),
                Err(why) => Outcome::Failed(Failure::other(why)),
            }
        }
        Op::Delete => {
            let held = permits().await;
            let result = if step.planned.patch {
                unapply(cluster, &step.object).await
            } else {
                cluster.delete(&step.object).await.map(|_| ())
            };
            drop(held);
            if let Err(error) = result {
                return failed(&error);
            }
            if !step.planned.patch
                && let Err(outcome) = until_gone(cluster, &step.object, settings, report, id).await
            {
                return outcome;
            }
            match journal.deleted(id) {
                Ok(()) => Outcome::Deleted,
                Err(why) => Failure::journal(why),
            }
        }
        Op::Apply | Op::Replace => {
            let held = permits().await;
            if step.planned.patch {
                // A patch adds fields to an object sovereign does not own (a Node's labels).
                match cluster.get(&step.object).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Outcome::Failed(Failure::other(format!(
                            "{} {} does not exist on the cluster: sovereign sets fields on it, it does not create it",
                            readiness::kind_of(&step.object),
                            id.name
                        )));
                    }
                    Err(error) => return failed(&error),
                }
            }
            if step.op == Op::Replace {
                if let Err(error) = cluster.delete(&step.object).await {
                    return failed(&error);
                }
                drop(held);
                if let Err(outcome) = until_gone(cluster, &step.object, settings, report, id).await {
                    return outcome;
                }
            } else {
                drop(held);
            }
            let held = permits().await;
            let stale_job = match readiness::kind_of(&step.object).as_str() {
                "helm.cattle.io/HelmChart" => helm_job_uid(cluster, &step.object).await,
                _ => None,
            };
            let live = match cluster.apply(&step.object, false).await {
                Ok(live) => live,
                Err(error) => return failed(&error),
            };
            drop(held);
            // An apply that changed nothing (a rerun after a crash) starts no new Job.
            let stale_job = stale_job.filter(|(generation, _)| *generation != live.generation).map(|(_, uid)| uid);
            let recorded = Live { uid: Some(live.uid.clone()), resource_version: Some(live.resource_version.clone()) };
            if let Err(why) = journal.applied(&step.planned, &recorded) {
                return Failure::journal(why);
            }
            if step.planned.patch {
                return match journal.ready(id) {
                    Ok(()) => Outcome::Applied(recorded),
                    Err(why) => Failure::journal(why),
                };
            }
            match until_ready(cluster, live.object, stale_job, settings, report, id).await {
                Ok(()) => {
                    if let Err(why) = journal.ready(id) {
                        return Failure::journal(why);
                    }
                    if readiness::kind_of(&step.object) == "apiextensions.k8s.io/CustomResourceDefinition" {
                        cluster.forget_kinds();
                    }
                    Outcome::Applied(recorded)
                }
                Err(outcome) => outcome,
            }
        }
    }
}

/// Removes sovereign's fields from an object it patched: an apply of
/// nothing, so the server drops what the manager no longer sets.
async fn unapply(cluster: &Cluster, object: &Value) -> Result<(), DriverError> {
    let mut empty = serde_json::json!({"apiVersion": object["apiVersion"], "kind": object["kind"], "metadata": {"name": object["metadata"]["name"]}});
    if let Some(namespace) = object.pointer("/metadata/namespace") {
        empty["metadata"]["namespace"] = namespace.clone();
    }
    match cluster.get(object).await? {
        Some(_) => cluster.apply(&empty, false).await.map(|_| ()),
        None => Ok(()),
    }
}

/// A HelmChart's generation and its install Job's uid, before an apply.
async fn helm_job_uid(cluster: &Cluster, chart: &Value) -> Option<(i64, String)> {
    let live = cluster.get(chart).await.ok()??;
    let job = live.object.pointer("/status/jobName")?.as_str()?.to_owned();
    let probe = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job, "namespace": chart["metadata"]["namespace"]}});
    Some((live.generation, cluster.get(&probe).await.ok()??.uid))
}

fn backoff(poll: Duration, attempt: u32) -> Duration {
    poll.saturating_mul(1 << attempt.min(4)).min(Duration::from_secs(1))
}

async fn until_ready(
    cluster: &Cluster,
    mut object: Value,
    stale_job: Option<String>,
    settings: &Settings,
    report: &(dyn Fn(Event<'_>) + Sync),
    id: &ResourceId,
) -> Result<(), Outcome> {
    let timeout = readiness::timeout(&object).mul_f64(settings.timeout_scale.clamp(0.0, 1e6));
    let deadline = Instant::now() + timeout;
    let mut attempt = 0;
    let mut last_why = String::new();
    loop {
        let related = match readiness::needs(&object) {
            Needs::Nothing => Vec::new(),
            Needs::Pods(selector) if attempt > 0 => {
                let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
                cluster.list("v1", "Pod", namespace, &selector).await.unwrap_or_default()
            }
            Needs::Pods(_) => Vec::new(),
            Needs::Job(name) => {
                let probe = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": object["metadata"]["namespace"]}});
                cluster.get(&probe).await.ok().flatten().map(|live| vec![live.object]).unwrap_or_default()
            }
            Needs::Endpoints(service) => {
                let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
                let selector = format!("kubernetes.io/service-name={service}");
                cluster.list("discovery.k8s.io/v1", "EndpointSlice", namespace, &selector).await.unwrap_or_default()
            }
        };
        match readiness::judge(&object, &related, stale_job.as_deref()) {
            Readiness::Ready => return Ok(()),
            Readiness::Failed(why) => {
                return Err(Outcome::Failed(Failure::not_ready(format!("it will not become ready: {why}"))));
            }
            Readiness::Waiting(why) => {
                if why != last_why {
                    report(Event::Waiting { id, why: &why });
                    last_why = why;
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Outcome::Failed(Failure::not_ready(format!(
                "not ready after {}s, the {} readiness timeout: {last_why}",
                timeout.as_secs(),
                readiness::kind_of(&object)
            ))));
        }
        tokio::time::sleep(backoff(settings.poll, attempt)).await;
        attempt += 1;
        match cluster.get(&object).await {
            Ok(Some(live)) => object = live.object,
            Ok(None) => {
                return Err(Outcome::Failed(Failure::not_ready("it was deleted while sovereign waited for it".into())));
            }
            Err(error) => return Err(failed(&error)),
        }
    }
}

async fn until_gone(
    cluster: &Cluster,
    object: &Value,
    settings: &Settings,
    report: &(dyn Fn(Event<'_>) + Sync),
    id: &ResourceId,
) -> Result<(), Outcome> {
    let timeout = Duration::from_secs(300).mul_f64(settings.timeout_scale.clamp(0.0, 1e6));
    let deadline = Instant::now() + timeout;
    let mut attempt = 0;
    loop {
        match cluster.get(object).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if Instant::now() >= deadline => {
                return Err(Outcome::Failed(Failure::not_ready(format!(
                    "still there {}s after its delete",
                    timeout.as_secs()
                ))));
            }
            Ok(Some(_)) => {
                if attempt == 1 {
                    report(Event::Waiting { id, why: "waiting for it to be gone" });
                }
            }
            Err(error) => return Err(failed(&error)),
        }
        tokio::time::sleep(backoff(settings.poll, attempt)).await;
        attempt += 1;
    }
}
