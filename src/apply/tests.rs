//! The executor on a fake driver: the order it starts steps in, its
//! limits, what a failure takes down, and what it journals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::value::RawValue;
use sovereign_desired::{ResourceId, Target};

use super::driver::{Driver, Drivers, StepRun};
use super::journal::{self, ApplyJournal, Replayed};
use super::{Failure, Interrupt, Op, Outcome, Settings, Step, execute};
use crate::plan::saved::{Planned, sha256};
use crate::state::Live;

/// Answers after `delay`; fails the steps named in `failing`; counts how
/// many requests are in flight at once.
#[derive(Default)]
struct FakeDriver {
    delay: Duration,
    failing: Vec<String>,
    started: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl FakeDriver {
    async fn request(&self, run: &StepRun<'_>) -> Result<(), Failure> {
        let _held = run.permits().await;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        self.started.lock().unwrap().push(run.id().name.to_string());
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.failing.iter().any(|name| **name == *run.id().name) {
            return Err(Failure::other("refused by the fake"));
        }
        Ok(())
    }
}

impl Driver for FakeDriver {
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>> {
        async move {
            self.request(run).await?;
            run.applied(&Live::default())?;
            Ok(Live::default())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<(), Failure>> {
        self.request(run).boxed()
    }
}

fn step(name: &str, op: Op, after: Vec<usize>) -> Step {
    let text = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"t"}}}}"#);
    let id = ResourceId {
        target: Target::K3s,
        site: "s".into(),
        kind: "ConfigMap".into(),
        namespace: Some("t".into()),
        name: name.into(),
    };
    Step {
        op,
        planned: Planned {
            id,
            declaration: None,
            patch: false,
            depends_on: Vec::new(),
            content_sha256: sha256(&text),
            body: RawValue::from_string(text.clone()).unwrap(),
        },
        object: serde_json::from_str(&text).unwrap(),
        after,
        makes: None,
        blocked: None,
    }
}

fn run(steps: &[Step], driver: Arc<FakeDriver>, settings: &Settings) -> (Vec<Outcome>, Vec<Replayed>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let journal = ApplyJournal::open(&path, "run", "apply", "lineage", 0).unwrap();
    let drivers: Drivers = HashMap::from([("kubernetes/s".to_owned(), Ok(driver as Arc<dyn Driver>))]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let outcomes = runtime.block_on(execute(steps, &drivers, &journal, settings, &|_| {}, &Interrupt::default()));
    drop(journal);
    let (replayed, _) = journal::replay(&path).unwrap();
    (outcomes, replayed)
}

#[test]
fn a_step_starts_when_its_own_dependencies_are_done_not_a_wave() {
    // a → b, and c alone: c does not wait for a; b waits for a.
    let steps = vec![step("a", Op::Apply, vec![]), step("b", Op::Apply, vec![0]), step("c", Op::Apply, vec![])];
    let driver = Arc::new(FakeDriver { delay: Duration::from_millis(30), ..FakeDriver::default() });
    let (outcomes, replayed) = run(&steps, Arc::clone(&driver), &Settings::default());
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied(_))), "{outcomes:?}");
    let started = driver.started.lock().unwrap().clone();
    let at = |name: &str| started.iter().position(|s| s == name).unwrap();
    assert!(at("a") < at("b") && at("c") < at("b"), "{started:?}");
    // Every step applied and ready, in the journal.
    let applied = replayed.iter().filter(|r| matches!(r, Replayed::Applied(..))).count();
    let ready = replayed.iter().filter(|r| matches!(r, Replayed::Ready(_))).count();
    assert_eq!((applied, ready), (3, 3));
}

#[test]
fn a_failure_takes_down_only_what_depends_on_it() {
    let steps = vec![
        step("a", Op::Apply, vec![]),
        step("b", Op::Apply, vec![0]),
        step("c", Op::Apply, vec![1]),
        step("d", Op::Apply, vec![]),
    ];
    let driver = Arc::new(FakeDriver { failing: vec!["a".into()], ..FakeDriver::default() });
    let (outcomes, _) = run(&steps, Arc::clone(&driver), &Settings::default());
    assert!(matches!(&outcomes[0], Outcome::Failed(f) if f.why == "refused by the fake"));
    assert!(matches!(&outcomes[1], Outcome::Skipped(why) if why.contains("/a")), "{outcomes:?}");
    assert!(matches!(&outcomes[2], Outcome::Skipped(_)));
    assert!(matches!(&outcomes[3], Outcome::Applied(_)));
    assert_eq!(driver.started.lock().unwrap().len(), 2, "b and c were never sent");
}

#[test]
fn the_per_target_limit_bounds_what_is_in_flight() {
    let steps: Vec<Step> = (0..12).map(|n| step(&format!("s{n}"), Op::Apply, vec![])).collect();
    let driver = Arc::new(FakeDriver { delay: Duration::from_millis(20), ..FakeDriver::default() });
    let settings = Settings { concurrency: 10, per_cluster: 3, ..Settings::default() };
    let (outcomes, _) = run(&steps, Arc::clone(&driver), &settings);
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Applied(_))));
    assert_eq!(driver.most_in_flight.load(Ordering::SeqCst), 3);
}

#[test]
fn a_blocked_step_sends_nothing_and_deletes_are_journaled() {
    let mut steps =
        vec![step("gated", Op::Apply, vec![]), step("after", Op::Apply, vec![0]), step("old", Op::Delete, vec![])];
    steps[0].blocked = Some(Failure { kind: super::FailureKind::Gated, why: "the gate".into(), fields: Vec::new() });
    let driver = Arc::new(FakeDriver::default());
    let (outcomes, replayed) = run(&steps, Arc::clone(&driver), &Settings::default());
    assert!(matches!(&outcomes[0], Outcome::Failed(f) if f.kind == super::FailureKind::Gated));
    assert!(matches!(&outcomes[1], Outcome::Skipped(_)));
    assert_eq!(outcomes[2], Outcome::Deleted);
    assert_eq!(*driver.started.lock().unwrap(), vec!["old".to_owned()]);
    assert!(replayed.iter().any(|r| matches!(r, Replayed::Deleted(id) if &*id.name == "old")));
    assert!(!replayed.iter().any(|r| matches!(r, Replayed::Applied(p, _) if &*p.id.name == "gated")));
}
