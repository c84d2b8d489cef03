//! The Temporal driver of the executor: namespaces and eval schedules made
//! to hold what the build says, through `sovereign_temporal_driver`.

use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use sovereign_temporal_driver::{TemporalError, TemporalServer};

use super::driver::{Driver, StepRun};
use super::{Failure, FailureKind, Op};
use crate::state::Live;

/// How long a new namespace may take to be served (its cache refreshes
/// every 10 s in releases), before `--timeout-scale`.
const NAMESPACE_READY: Duration = Duration::from_secs(120);

/// How long a Temporal may take to answer at all (a deployed one starting).
const SERVING: Duration = Duration::from_secs(300);

/// One Temporal server.
pub struct TemporalDriver {
    server: TemporalServer,
    /// Set once the server has answered: waited for once per run, not per step.
    serving: tokio::sync::OnceCell<()>,
}

impl TemporalDriver {
    #[must_use]
    pub fn new(server: TemporalServer) -> TemporalDriver {
        TemporalDriver { server, serving: tokio::sync::OnceCell::new() }
    }

    /// The server, once it answers (a just-deployed one may still be starting).
    async fn serving(&self, run: &StepRun<'_>) -> Result<&TemporalServer, Failure> {
        let timeout = SERVING.mul_f64(run.settings.timeout_scale.clamp(0.0, 1e6));
        self.serving.get_or_try_init(|| self.server.until_serving(timeout)).await?;
        Ok(&self.server)
    }
}

impl Driver for TemporalDriver {
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>> {
        async move { apply(self.serving(run).await?, run).await }.boxed()
    }

    fn delete<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<(), Failure>> {
        async move { delete(self.serving(run).await?, run).await }.boxed()
    }
}

impl From<TemporalError> for Failure {
    fn from(error: TemporalError) -> Failure {
        let kind = match error {
            TemporalError::Unreachable(_) => FailureKind::Unreachable,
            TemporalError::Refused { .. } => FailureKind::Refused,
        };
        Failure { kind, why: error.to_string(), fields: Vec::new() }
    }
}

async fn apply(server: &TemporalServer, run: &StepRun<'_>) -> Result<Live, Failure> {
    let step = run.step;
    if step.op == Op::Replace {
        return Err(Failure::other("a Temporal resource is never replaced, only updated (a bug in the plan)"));
    }
    let held = run.permits().await;
    match &*step.planned.id.kind {
        "namespace" => {
            server.ensure_namespace(&step.object).await?;
            drop(held);
            run.applied(&Live::default())?;
            let name = step.object["namespace"].as_str().unwrap_or_default();
            if server.namespace(name).await?.is_none() {
                return Err(Failure::not_ready(format!(
                    "namespace {name} cannot be described after it was registered"
                )));
            }
            run.waiting("waiting for the namespace cache to serve it");
            let timeout = NAMESPACE_READY.mul_f64(run.settings.timeout_scale.clamp(0.0, 1e6));
            server.until_namespace_ready(name, timeout).await.map_err(|error| Failure::not_ready(error.to_string()))?;
        }
        "schedule" => {
            server.ensure_schedule(&step.object, &step.planned.content_sha256).await?;
            drop(held);
            run.applied(&Live::default())?;
        }
        other => return Err(Failure::other(format!("not yet supported: Temporal {other}s"))),
    }
    Ok(Live::default())
}

async fn delete(server: &TemporalServer, run: &StepRun<'_>) -> Result<(), Failure> {
    let object = &run.step.object;
    let _held = run.permits().await;
    match &*run.step.planned.id.kind {
        "schedule" => {
            let namespace = object["namespace"].as_str().unwrap_or_default();
            let id = object["scheduleId"].as_str().unwrap_or_default();
            Ok(server.delete_schedule(namespace, id).await?)
        }
        "namespace" => {
            // DeleteNamespace has no HTTP binding (the frontend answers 501):
            // a namespace is deleted by hand, and then this step is done.
            let name = object["namespace"].as_str().unwrap_or_default();
            match server.namespace(name).await? {
                Some(live)
                    if live.pointer("/namespaceInfo/state").and_then(|s| s.as_str())
                        != Some("NAMESPACE_STATE_DELETED") =>
                {
                    Err(Failure::other(format!(
                        "not yet supported: deleting a Temporal namespace (its HTTP API cannot); delete it with `temporal operator namespace delete -n {name}` against {}, and run again",
                        server.endpoint()
                    )))
                }
                _ => Ok(()),
            }
        }
        other => Err(Failure::other(format!("not yet supported: Temporal {other}s"))),
    }
}
