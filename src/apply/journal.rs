//! The apply journal: every step's intent and outcome, appended to
//! `state.json.journal` and fsynced before the step goes on, so that a run
//! killed at any moment can be replayed into the state by the next one.
//!
//! Appends from concurrent steps are group-committed: one writer thread
//! writes what has queued up and fsyncs once, then wakes every step that
//! waited on those records. A step's intent is durable before its request
//! is sent. Its outcome is queued, not waited for, and written without an
//! fsync of its own: the file is written in queue order, so the next
//! intent's fsync makes it durable too (the intent of any step that starts
//! after it, its dependents, is durable only once the outcome is), and the
//! journal's close fsyncs whatever is left. That keeps one fsync, not two,
//! on each layer of the critical path, and none for a batch of outcomes
//! alone. An outcome lost with the machine (written, not yet synced) is a
//! step whose intent the replay finds without an outcome: it is applied
//! again, which a server-side apply makes harmless.
//!
//! Records are JSON lines. A torn last line (the kill came mid-write) is
//! ignored on replay; it was never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use sovereign_desired::ResourceId;

use crate::plan::saved::Planned;
use crate::state::{IdParts, Live};

/// An open journal; dropping it stops the writer after what was queued.
pub struct ApplyJournal {
    sender: Option<mpsc::Sender<Pending>>,
    writer: Option<std::thread::JoinHandle<Result<(), String>>>,
    pub path: PathBuf,
}

/// What a previous run's journal says was done.
#[derive(Debug)]
pub enum Replayed {
    Applied(Planned, Live),
    /// Ready after it was applied.
    Ready(ResourceId),
    Deleted(ResourceId),
}

/// A state's lineage and serial.
pub type StateVersion = (String, u64);

/// Records what a journal says was done into `state`; how many steps.
/// What was applied and never said ready is recorded as unready, so that
/// the next plan applies it, and waits for it, again.
pub fn record_into(state: &mut crate::state::StateDocument, done: Vec<Replayed>, at: u64) -> usize {
    let count = done.len();
    for step in done {
        match step {
            Replayed::Applied(planned, live) => {
                state.record(&planned, Some(live), at);
                if let Some(record) = state.resources.get_mut(&planned.id) {
                    record.unready = true;
                }
            }
            Replayed::Ready(id) => {
                if let Some(record) = state.resources.get_mut(&id) {
                    record.unready = false;
                }
            }
            Replayed::Deleted(id) => {
                state.resources.remove(&id);
            }
        }
    }
    count
}

/// The journal beside a state file.
#[must_use]
pub fn path_for(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    state.with_file_name(name)
}

impl ApplyJournal {
    /// Starts a journal for a run (the file is created, or appended to),
    /// made against the state of `lineage` at `serial`.
    pub fn open(path: &Path, run: &str, operation: &str, lineage: &str, serial: u64) -> Result<ApplyJournal, String> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the apply journal {}: {e}", path.display()))?;
        let begin = json!({"event": "begin", "run": run, "operation": operation, "at": crate::clock::rfc3339(crate::clock::now()),
                           "lineage": lineage, "serial": serial});
        writeln!(file, "{begin}")
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write the apply journal {}: {e}", path.display()))?;
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("apply-journal".into())
            .spawn(move || commit_loop(file, &receiver))
            .map_err(|error| error.to_string())?;
        Ok(ApplyJournal { sender: Some(sender), writer: Some(writer), path: path.to_owned() })
    }

    /// Queues a record; `done`, if given, is told when it is durable.
    fn queue(
        &self,
        line: String,
        done: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    ) -> Result<(), String> {
        self.sender
            .as_ref()
            .ok_or("the journal is closed")?
            .send((line, done))
            .map_err(|_| "the journal's writer stopped".to_owned())
    }

    async fn durable(&self, line: String) -> Result<(), String> {
        let (done, durable) = tokio::sync::oneshot::channel();
        self.queue(line, Some(done))?;
        durable.await.map_err(|_| "the journal's writer stopped".to_owned())?
    }

    pub async fn intent(&self, operation: &str, id: &ResourceId) -> Result<(), String> {
        self.durable(json!({"event": "intent", "op": operation, "id": IdParts::new(id)}).to_string()).await
    }

    pub fn applied(&self, planned: &Planned, live: &Live) -> Result<(), String> {
        // A struct, not `json!`: the body must be written byte for byte (its hash is of those bytes).
        #[derive(Serialize)]
        struct Applied<'a> {
            event: &'a str,
            id: IdParts<'a>,
            declaration: &'a Option<String>,
            patch: bool,
            depends_on: Vec<IdParts<'a>>,
            content_sha256: &'a str,
            body: &'a RawValue,
            uid: &'a Option<String>,
            resource_version: &'a Option<String>,
        }
        let record = Applied {
            event: "applied",
            id: IdParts::new(&planned.id),
            declaration: &planned.declaration,
            patch: planned.patch,
            depends_on: planned.depends_on.iter().map(IdParts::new).collect(),
            content_sha256: &planned.content_sha256,
            body: &planned.body,
            uid: &live.uid,
            resource_version: &live.resource_version,
        };
        let line = serde_json::to_string(&record).map_err(|e| e.to_string())?;
        self.queue(line, None)
    }

    pub fn ready(&self, id: &ResourceId) -> Result<(), String> {
        self.queue(json!({"event": "ready", "id": IdParts::new(id)}).to_string(), None)
    }

    pub fn deleted(&self, id: &ResourceId) -> Result<(), String> {
        self.queue(json!({"event": "deleted", "id": IdParts::new(id)}).to_string(), None)
    }

    /// Writes and fsyncs what is queued, stops the writer, and says whether
    /// every record reached the disk: an outcome no step waited for is
    /// reported here if its write failed, and so is the last fsync.
    pub fn close(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        self.sender.take();
        match self.writer.take().map(std::thread::JoinHandle::join) {
            None => Ok(()),
            Some(Ok(written)) => written,
            Some(Err(_)) => Err("the journal's writer stopped".to_owned()),
        }
    }
}

impl Drop for ApplyJournal {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A record, and who waits for it to be durable (no one, for an outcome).
type Pending = (String, Option<tokio::sync::oneshot::Sender<Result<(), String>>>);

fn commit_loop(mut file: File, receiver: &mpsc::Receiver<Pending>) -> Result<(), String> {
    // Written since the last fsync; and the first failure, which every
    // later waiter is told (a journal that lost a record is not durable).
    let mut unsynced = false;
    let mut failed: Option<String> = None;
    let mut text = String::new();
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        text.clear();
        for (line, _) in &batch {
            text.push_str(line);
            text.push('\n');
        }
        let waited = batch.iter().any(|(_, done)| done.is_some());
        if failed.is_none() {
            let written = file.write_all(text.as_bytes()).and_then(|()| if waited { file.sync_data() } else { Ok(()) });
            match written {
                Ok(()) => unsynced = !waited,
                Err(error) => failed = Some(error.to_string()),
            }
        }
        let result = failed.clone().map_or(Ok(()), Err);
        for done in batch.into_iter().filter_map(|(_, done)| done) {
            let _ = done.send(result.clone());
        }
    }
    if let Some(failed) = failed {
        return Err(failed);
    }
    if unsynced {
        file.sync_data().map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Record<'a> {
    event: &'a str,
    #[serde(default)]
    lineage: Option<String>,
    #[serde(default)]
    serial: Option<u64>,
    #[serde(borrow, default)]
    id: Option<IdParts<'a>>,
    #[serde(default)]
    declaration: Option<String>,
    #[serde(default)]
    patch: bool,
    #[serde(borrow, default)]
    depends_on: Vec<IdParts<'a>>,
    #[serde(default)]
    content_sha256: String,
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
}

/// What a journal left by an earlier run records as done, in order; a line
/// that does not read (a torn write) and everything after it are ignored.
/// Also the state (lineage, serial) that run started from.
pub fn replay(path: &Path) -> Result<(Vec<Replayed>, Option<StateVersion>), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(format!("cannot read the apply journal {}: {e}", path.display())),
    };
    let mut done = Vec::new();
    let mut basis = None;
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<Record<'_>>(line) else { break };
        if record.event == "begin"
            && let (Some(lineage), Some(serial)) = (&record.lineage, record.serial)
        {
            basis = Some((lineage.clone(), serial));
        }
        let id = match record.id.map(IdParts::into_id).transpose() {
            Ok(id) => id,
            Err(_) => break,
        };
        match (record.event, id) {
            ("applied", Some(id)) => {
                let Some(body) = record.body else { break };
                let depends_on: Result<Vec<ResourceId>, String> =
                    record.depends_on.into_iter().map(IdParts::into_id).collect();
                let Ok(depends_on) = depends_on else { break };
                let planned = Planned {
                    id,
                    declaration: record.declaration,
                    patch: record.patch,
                    depends_on,
                    content_sha256: record.content_sha256,
                    body,
                };
                done.push(Replayed::Applied(
                    planned,
                    Live { uid: record.uid, resource_version: record.resource_version },
                ));
            }
            ("deleted", Some(id)) => done.push(Replayed::Deleted(id)),
            ("ready", Some(id)) => done.push(Replayed::Ready(id)),
            _ => {}
        }
    }
    Ok((done, basis))
}
