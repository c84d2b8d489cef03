//! Where a fabric's state is kept: a local file, or the document and its
//! Lease in a site's cluster. One interface, so that plan and apply do not
//! care which.

use std::path::PathBuf;
use std::time::Duration;

use super::kubernetes::{KubernetesLock, KubernetesState};
use super::lock::{Lease, LockInfo, StateLock};
use super::{LocalState, StateDocument, StateError};

pub enum Store {
    Local(LocalState),
    /// With the journal's path: journals stay on the machine that runs.
    Kubernetes(Box<KubernetesState>, PathBuf),
}

/// A held lock of either backend; released when dropped.
pub enum Held {
    Local(StateLock),
    Kubernetes(KubernetesLock),
}

impl Held {
    #[must_use]
    pub fn info(&self) -> &LockInfo {
        match self {
            Held::Local(lock) => &lock.info,
            Held::Kubernetes(lock) => &lock.info,
        }
    }

    /// Why the lock is no longer this run's, if it was lost (a Lease
    /// another run took after a renewal failed); a file lock is never lost.
    #[must_use]
    pub fn lost(&self) -> Option<String> {
        match self {
            Held::Local(_) => None,
            Held::Kubernetes(lock) => lock.lost(),
        }
    }

    /// The holder a dead run left, taken over by this one.
    #[must_use]
    pub fn took_over(&self) -> Option<&LockInfo> {
        match self {
            Held::Local(lock) => lock.took_over.as_ref(),
            Held::Kubernetes(lock) => lock.took_over.as_ref(),
        }
    }
}

impl Store {
    /// The state file's path, or `kubernetes:CONTEXT/sovereign/state-F`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Store::Local(local) => local.path.display().to_string(),
            Store::Kubernetes(cluster, _) => cluster.describe(),
        }
    }

    pub fn load(&self) -> Result<Option<StateDocument>, StateError> {
        match self {
            Store::Local(local) => local.load(),
            Store::Kubernetes(cluster, _) => cluster.load(),
        }
    }

    pub fn save(&self, state: &StateDocument) -> Result<(), StateError> {
        match self {
            Store::Local(local) => local.save(state),
            Store::Kubernetes(cluster, _) => cluster.save(state),
        }
    }

    pub fn lock(&self, operation: &str, timeout: Duration, waiting: impl FnMut(&LockInfo)) -> Result<Held, StateError> {
        match self {
            Store::Local(local) => {
                let path = local.lock_path();
                StateLock::acquire(&path, operation, timeout, Lease::default(), waiting).map(Held::Local)
            }
            Store::Kubernetes(cluster, _) => {
                cluster.lock(operation, timeout, Lease::default(), waiting).map(Held::Kubernetes)
            }
        }
    }

    pub fn unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        match self {
            Store::Local(local) => super::lock::unlock(&local.lock_path(), id),
            Store::Kubernetes(cluster, _) => cluster.unlock(id),
        }
    }

    /// The apply journal of runs on this machine.
    #[must_use]
    pub fn journal_path(&self) -> PathBuf {
        match self {
            Store::Local(local) => crate::apply::journal::path_for(&local.path),
            Store::Kubernetes(_, journal) => journal.clone(),
        }
    }
}
