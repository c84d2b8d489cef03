//! The server's state and how requests are answered: panics become
//! internal errors, slow work goes to a blocking thread.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sovereign_check::Host as _;
use sovereign_check::Stdlib;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::convert::{Encoding, path_of};
use super::scheduler::Checker;
use super::workspace::{Snapshot, Workspace};
use crate::host::DiskHost;

/// What never changes while the server runs.
pub(super) struct Shared {
    pub(super) stdlib: Stdlib,
}

pub(super) struct Backend {
    pub(super) client: Client,
    pub(super) shared: Arc<Shared>,
    pub(super) workspace: Arc<Mutex<Workspace>>,
    pub(super) encoding: OnceLock<Encoding>,
}

/// The lock, even after a panic elsewhere poisoned it: its data stays consistent
/// because every update is a single insert or remove.
pub(super) fn lock(workspace: &Mutex<Workspace>) -> MutexGuard<'_, Workspace> {
    workspace.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a request body, turning a panic into an internal error.
pub(super) fn guarded<T>(what: &str, body: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("{what} failed: {message}")
    })
}

impl Backend {
    pub(super) fn encoding(&self) -> Encoding {
        self.encoding.get().copied().unwrap_or(Encoding::Utf16)
    }

    pub(super) async fn answer<T>(&self, what: &str, body: impl FnOnce() -> Option<T>) -> Result<Option<T>> {
        self.reply(guarded(what, body)).await
    }

    /// A request's outcome as the protocol's answer; a failure is logged too.
    pub(super) async fn reply<T>(&self, outcome: std::result::Result<Option<T>, String>) -> Result<Option<T>> {
        match outcome {
            Ok(value) => Ok(value),
            Err(message) => {
                self.client.log_message(MessageType::ERROR, &message).await;
                let mut error = Error::internal_error();
                error.message = message.into();
                Err(error)
            }
        }
    }

    /// Like [`Backend::answer`], on a blocking thread: for work that grows
    /// with the buffer (formatting), so that it holds up no other request.
    pub(super) async fn answer_blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        body: impl FnOnce() -> Option<T> + Send + 'static,
    ) -> Result<Option<T>> {
        let outcome = tokio::task::spawn_blocking(move || guarded(what, body))
            .await
            .unwrap_or_else(|e| Err(format!("{what} failed: {e}")));
        self.reply(outcome).await
    }

    /// The buffer (or file) at `uri`, its canonical path, and the snapshot that covers it.
    pub(super) fn lookup(&self, uri: &Uri) -> Option<(PathBuf, Arc<String>, Option<Arc<Snapshot>>)> {
        let path = DiskHost.canonical(&path_of(uri)?);
        let workspace = lock(&self.workspace);
        let text = match workspace.documents.get(&path) {
            Some(doc) => doc.text.clone(),
            // Through the host: a FIFO or device is refused, never read (it could block forever).
            None => Arc::new(String::from_utf8(DiskHost.read(&path).ok()?).ok()?),
        };
        let snapshot = workspace.snapshot_for(&path);
        Some((path, text, snapshot))
    }

    /// Whether every open buffer the snapshot read still has the text it read.
    pub(super) fn is_current(&self, snapshot: &Snapshot) -> bool {
        let workspace = lock(&self.workspace);
        snapshot
            .files
            .iter()
            .all(|(id, path)| workspace.documents.get(path).is_none_or(|doc| *doc.text == snapshot.sources.text(*id)))
    }

    pub(super) fn checker(&self) -> Checker {
        Checker {
            shared: self.shared.clone(),
            workspace: self.workspace.clone(),
            client: self.client.clone(),
            encoding: self.encoding(),
        }
    }

    /// Re-checks the root of `path` in the background and publishes the diagnostics.
    pub(super) fn schedule_check(&self, path: PathBuf) {
        self.checker().schedule(path);
    }
}
