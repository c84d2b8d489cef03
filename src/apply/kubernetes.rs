//! The Kubernetes driver of the executor: server-side apply through the
//! kube-rs driver (`sovereign_kubernetes`), readiness per kind
//! ([`sovereign_kubernetes::readiness`]), deletes waited out, and the
//! Secrets a build cannot hold made in place ([`super::secrets`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::Value;
use sovereign_kubernetes::readiness::{self, Needs, Readiness};
use sovereign_kubernetes::{Cluster, DriverError};

use super::driver::{Driver, StepRun};
use super::{Failure, Op, Settings, secrets};
use crate::state::Live;

/// One site's cluster.
pub struct KubernetesDriver(pub Arc<Cluster>);

impl Driver for KubernetesDriver {
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>> {
        apply(&self.0, run).boxed()
    }

    fn delete<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<(), Failure>> {
        delete(&self.0, run).boxed()
    }
}

fn failed(error: &DriverError) -> Failure {
    error.into()
}

async fn delete(cluster: &Cluster, run: &StepRun<'_>) -> Result<(), Failure> {
    let step = run.step;
    let held = run.permits().await;
    let result = if step.planned.patch {
        unapply(cluster, &step.object).await
    } else {
        cluster.delete(&step.object).await.map(|_| ())
    };
    drop(held);
    result.map_err(|error| failed(&error))?;
    if !step.planned.patch {
        until_gone(cluster, &step.object, run.settings, run).await?;
    }
    Ok(())
}

async fn apply(cluster: &Cluster, run: &StepRun<'_>) -> Result<Live, Failure> {
    let step = run.step;
    if step.op == Op::Secret {
        let Some(secret) = &step.makes else { return Err(Failure::other("a Secret step without its Secret")) };
        let held = run.permits().await;
        let made = secrets::make(cluster, secret, &step.object).await;
        drop(held);
        return made.map(|()| Live::default()).map_err(Failure::other);
    }
    let held = run.permits().await;
    if step.planned.patch {
        // A patch adds fields to an object sovereign does not own (a Node's labels).
        match cluster.get(&step.object).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Failure::other(format!(
                    "{} {} does not exist on the cluster: sovereign sets fields on it, it does not create it",
                    readiness::kind_of(&step.object),
                    run.id().name
                )));
            }
            Err(error) => return Err(failed(&error)),
        }
    }
    if step.op == Op::Replace {
        cluster.delete(&step.object).await.map_err(|error| failed(&error))?;
        drop(held);
        until_gone(cluster, &step.object, run.settings, run).await?;
    } else {
        drop(held);
    }
    let held = run.permits().await;
    let stale_job = match readiness::kind_of(&step.object).as_str() {
        "helm.cattle.io/HelmChart" => helm_job_uid(cluster, &step.object).await,
        _ => None,
    };
    let live = cluster.apply(&step.object, false).await.map_err(|error| failed(&error))?;
    drop(held);
    // An apply that changed nothing (a rerun after a crash) starts no new Job.
    let stale_job = stale_job.filter(|(generation, _)| *generation != live.generation).map(|(_, uid)| uid);
    let recorded = Live { uid: Some(live.uid.clone()), resource_version: Some(live.resource_version.clone()) };
    run.applied(&recorded)?;
    if step.planned.patch {
        return Ok(recorded);
    }
    until_ready(cluster, live.object, stale_job, run.settings, run).await?;
    if readiness::kind_of(&step.object) == "apiextensions.k8s.io/CustomResourceDefinition" {
        cluster.forget_kinds();
    }
    Ok(recorded)
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
    run: &StepRun<'_>,
) -> Result<(), Failure> {
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
                return Err(Failure::not_ready(format!("it will not become ready: {why}")));
            }
            Readiness::Waiting(why) => {
                if why != last_why {
                    run.waiting(&why);
                    last_why = why;
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::not_ready(format!(
                "not ready after {}s, the {} readiness timeout: {last_why}",
                timeout.as_secs(),
                readiness::kind_of(&object)
            )));
        }
        tokio::time::sleep(backoff(settings.poll, attempt)).await;
        attempt += 1;
        match cluster.get(&object).await {
            Ok(Some(live)) => object = live.object,
            Ok(None) => {
                return Err(Failure::not_ready("it was deleted while sovereign waited for it".into()));
            }
            Err(error) => return Err(failed(&error)),
        }
    }
}

async fn until_gone(cluster: &Cluster, object: &Value, settings: &Settings, run: &StepRun<'_>) -> Result<(), Failure> {
    let timeout = Duration::from_secs(300).mul_f64(settings.timeout_scale.clamp(0.0, 1e6));
    let deadline = Instant::now() + timeout;
    let mut attempt = 0;
    loop {
        match cluster.get(object).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if Instant::now() >= deadline => {
                return Err(Failure::not_ready(format!("still there {}s after its delete", timeout.as_secs())));
            }
            Ok(Some(_)) => {
                if attempt == 1 {
                    run.waiting("waiting for it to be gone");
                }
            }
            Err(error) => return Err(failed(&error)),
        }
        tokio::time::sleep(backoff(settings.poll, attempt)).await;
        attempt += 1;
    }
}
