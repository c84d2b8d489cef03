//! The contract between the executor and a target: a [`Driver`] makes its
//! target hold one step's object and waits until it is ready, or deletes
//! it and waits until it is gone. The executor schedules, journals and
//! limits concurrency; it does not know which target it drives. Each
//! driver reads before it writes, so a step run again after a crash
//! changes nothing that is already right.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use sovereign_desired::{ResourceId, Target};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::journal::ApplyJournal;
use super::{Event, Failure, Settings, Step};
use crate::state::Live;

pub trait Driver: Send + Sync {
    /// Makes the target hold the step's object, calls [`StepRun::applied`]
    /// once the target has acknowledged the write, then waits until the
    /// object is ready; what the target says it is.
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>>;

    /// Deletes the step's object (its last applied body) and waits until
    /// it is gone; one already gone is not an error.
    fn delete<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<(), Failure>>;
}

/// The drivers of a run, by [`driver_key`]: ready, or why not (a cluster
/// that cannot be reached, a server the spec gives no address for).
pub type Drivers = HashMap<String, Result<Arc<dyn Driver>, String>>;

/// Which driver applies `id`: one per site's cluster (Kubernetes objects
/// and the Helm values they carry), one per Temporal server, one per Qdrant.
#[must_use]
pub fn driver_key(id: &ResourceId) -> String {
    match id.target {
        Target::K3s | Target::Helm => format!("kubernetes/{}", id.site),
        Target::Temporal => {
            let server = id.namespace.as_deref().unwrap_or("").split('/').next().unwrap_or("");
            format!("temporal/{}/{server}", id.site)
        }
        // One per vectorstore: `NAMESPACE/RELEASE`.
        Target::Qdrant => format!("qdrant/{}/{}", id.site, id.namespace.as_deref().unwrap_or("")),
        other => format!("{}/{}", other.word(), id.site),
    }
}

/// One step as a driver sees it: the step, the run's settings, and what
/// the executor does for it (permits, journal, progress).
pub struct StepRun<'a> {
    pub step: &'a Step,
    pub settings: &'a Settings,
    pub(super) journal: &'a ApplyJournal,
    pub(super) global: &'a Semaphore,
    pub(super) limit: Option<&'a Semaphore>,
    pub(super) report: &'a (dyn Fn(Event<'_>) + Sync),
}

/// Held while a request is in flight: the target's permit and the run's.
pub struct Permits<'a> {
    _target: Option<SemaphorePermit<'a>>,
    _global: Option<SemaphorePermit<'a>>,
}

impl<'a> StepRun<'a> {
    /// The permits to send requests: the target's first, so that a step
    /// waiting on a busy target holds no global permit another target's
    /// step could use. Held for writes, not for readiness waits, so a
    /// model loading its weights for ten minutes blocks nothing else.
    pub async fn permits(&self) -> Permits<'a> {
        let target = match self.limit {
            Some(limit) => limit.acquire().await.ok(),
            None => None,
        };
        let global = self.global.acquire().await.ok();
        Permits { _target: target, _global: global }
    }

    /// Journals that the target has the step's object, before readiness.
    pub fn applied(&self, live: &Live) -> Result<(), Failure> {
        self.journal.applied(&self.step.planned, live).map_err(|why| Failure::other(format!("the journal: {why}")))
    }

    /// Says what the step waits for (shown until it finishes).
    pub fn waiting(&self, why: &str) {
        (self.report)(Event::Waiting { id: &self.step.planned.id, why });
    }

    #[must_use]
    pub fn id(&self) -> &'a ResourceId {
        &self.step.planned.id
    }
}
