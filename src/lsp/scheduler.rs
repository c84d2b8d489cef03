//! The background checks: at most one per root at a time, the newest text
//! always checked last, the diagnostics of every file a root loaded published.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::backend::{Shared, guarded, lock};
use super::convert::{Encoding, diagnostic, uri_of};
use super::workspace::{self, Snapshot, Workspace};

/// Runs checks in the background: at most one per root at a time; an edit
/// during a check marks the root dirty and the check runs again when it
/// ends, so the last text is always checked and checks never pile up.
#[derive(Clone)]
pub(super) struct Checker {
    pub(super) shared: Arc<Shared>,
    pub(super) workspace: Arc<Mutex<Workspace>>,
    pub(super) client: Client,
    pub(super) encoding: Encoding,
}

impl Checker {
    pub(super) fn schedule(&self, path: PathBuf) {
        let key = {
            let mut ws = lock(&self.workspace);
            let key = ws.roots.get(&path).cloned().unwrap_or_else(|| path.clone());
            if !ws.running.insert(key.clone()) {
                ws.dirty.insert(key);
                return;
            }
            key
        };
        let checker = self.clone();
        tokio::spawn(async move { checker.run(key, path).await });
    }

    async fn run(self, key: PathBuf, path: PathBuf) {
        loop {
            let (root_known, host, sequence) = {
                let mut ws = lock(&self.workspace);
                ws.dirty.remove(&key);
                ws.sequence += 1;
                (ws.roots.get(&path).cloned(), ws.overlay(), ws.sequence)
            };
            let shared = self.shared.clone();
            let task_path = path.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                guarded("checking", || {
                    let root = root_known.unwrap_or_else(|| workspace::find_root(&task_path, &host, &shared.stdlib));
                    let snapshot = workspace::check(&root, &host, &shared.stdlib);
                    (root, snapshot, host.versions)
                })
            })
            .await;
            let (publish, orphans, again) = match outcome {
                Ok(Ok((root, snapshot, versions))) => self.apply(&key, &path, root, snapshot, &versions, sequence),
                Ok(Err(message)) => {
                    self.client.log_message(MessageType::ERROR, message).await;
                    (Vec::new(), Vec::new(), self.finish(&key))
                }
                Err(error) => {
                    self.client.log_message(MessageType::ERROR, format!("checking failed: {error}")).await;
                    (Vec::new(), Vec::new(), self.finish(&key))
                }
            };
            for (file, diagnostics, version) in publish {
                if let Some(uri) = uri_of(&file) {
                    self.client.publish_diagnostics(uri, diagnostics, version).await;
                }
            }
            // Buffers this root no longer imports find their root again.
            for orphan in orphans {
                self.schedule(orphan);
            }
            if !again {
                return;
            }
        }
    }

    /// Ends a run of `key`; whether it must run again because of an edit meanwhile.
    fn finish(&self, key: &Path) -> bool {
        let mut ws = lock(&self.workspace);
        let again = ws.dirty.remove(key);
        if !again {
            ws.running.remove(key);
        }
        again
    }

    /// Stores a snapshot and works out what to publish. A result older than
    /// one already applied to the same root (possible when a root is also
    /// checked through another buffer) is dropped.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        key: &Path,
        path: &Path,
        root: PathBuf,
        snapshot: Snapshot,
        versions: &BTreeMap<PathBuf, i32>,
        sequence: u64,
    ) -> (Vec<(PathBuf, Vec<Diagnostic>, Option<i32>)>, Vec<PathBuf>, bool) {
        let mut ws = lock(&self.workspace);
        let again = ws.dirty.remove(key);
        if !again {
            ws.running.remove(key);
        }
        if ws.applied.get(&root).is_some_and(|&applied| applied > sequence) {
            // A newer check of this root won. If it no longer loads the
            // buffer this check was for, that buffer has another root now:
            // it gets its own check (else it would keep no diagnostics).
            let left_out = path != root
                && ws.documents.contains_key(path)
                && ws.published.get(&root).is_none_or(|files| !files.contains(path));
            if left_out {
                ws.roots.remove(path);
            }
            return (Vec::new(), if left_out { vec![path.to_path_buf()] } else { Vec::new() }, again);
        }
        ws.applied.insert(root.clone(), sequence);
        ws.roots.insert(path.to_path_buf(), root.clone());
        let snapshot = Arc::new(snapshot);
        ws.snapshots.insert(root.clone(), snapshot.clone());
        let loaded: BTreeSet<PathBuf> = snapshot.files.iter().map(|(_, p)| p.clone()).collect();
        let before = ws.published.get(&root).cloned().unwrap_or_default();
        // Open buffers this root no longer loads: those it was known to be
        // the root of, and those it published for before their own check
        // had recorded it (a check of theirs may still be running).
        let mut orphans: Vec<PathBuf> = ws
            .roots
            .iter()
            .filter(|(doc, r)| **r == root && !loaded.contains(*doc))
            .map(|(doc, _)| doc.clone())
            .collect();
        for gone in before.difference(&loaded) {
            if ws.documents.contains_key(gone) && !orphans.contains(gone) && gone != &root {
                orphans.push(gone.clone());
            }
        }
        for orphan in &orphans {
            ws.roots.remove(orphan);
        }
        let mut by_file: HashMap<PathBuf, Vec<Diagnostic>> = loaded.iter().map(|f| (f.clone(), Vec::new())).collect();
        for d in &snapshot.diagnostics {
            if let Some(file) = snapshot.path_of(d.primary.span.file) {
                by_file.entry(file.to_path_buf()).or_default().push(diagnostic(&snapshot.sources, d, self.encoding));
            }
        }
        ws.published.insert(root, loaded.clone());
        for gone in before.difference(&loaded) {
            // Orphans get their own check; clear the rest.
            if !orphans.contains(gone) {
                by_file.insert(gone.clone(), Vec::new());
            }
        }
        // Stamped with the versions the check read, not whatever came since.
        let publish = by_file
            .into_iter()
            .map(|(file, diagnostics)| {
                let version = versions.get(&file).copied();
                (file, diagnostics, version)
            })
            .collect();
        (publish, orphans, again)
    }
}
