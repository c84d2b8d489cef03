//! The state of a fabric: what sovereign applied, per resource id.
//!
//! One JSON document (docs/apply.md, format version [`FORMAT_VERSION`]):
//! a lineage (a random id given when the state is made, so that a plan or
//! a copy of another fabric's state is never taken for this one's), a
//! serial that every apply increments before it saves, and per resource the content hash
//! and the body sovereign applied (the fields it owns: with server-side
//! apply, exactly the applied body), the ids it depended on (to delete in
//! reverse order what is no longer desired), its live identity and when.
//! Never a secret's value: bodies reference Secrets by name, and a Secret
//! that apply fills from the environment is recorded without its data.
//!
//! Architecture Invariant: a save never leaves the state unreadable. It
//! is written to a temporary file beside it, fsynced and renamed over the
//! old one; the old one is first linked to `<state>.backup`, so the last
//! good copy survives a save that a crash, a full disk or a hand edit
//! broke, and a corrupt file is an error that names the backup, never an
//! empty state (which would plan to create everything again).

pub mod kubernetes;
pub mod lock;
pub mod store;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sovereign_desired::{ResourceId, Target};

/// The version of the state document; a state from a newer sovereign is
/// refused rather than half-read.
pub const FORMAT_VERSION: u32 = 1;

/// What was applied of a fabric.
#[derive(Clone, Debug)]
pub struct StateDocument {
    pub lineage: String,
    /// Incremented by every apply that saves.
    pub serial: u64,
    pub fabric: String,
    pub resources: BTreeMap<ResourceId, Record>,
}

/// What was applied of one resource.
#[derive(Clone, Debug)]
pub struct Record {
    pub declaration: Option<Arc<str>>,
    pub patch: bool,
    pub depends_on: Vec<ResourceId>,
    /// sha256 of `applied`'s compact JSON: the build's `content_sha256`.
    pub content_sha256: String,
    /// The body as applied: the fields sovereign owns.
    pub applied: Box<RawValue>,
    /// Its identity on the target (a Kubernetes uid and resourceVersion),
    /// when the target gives one.
    pub live: Option<Live>,
    /// When it was applied (RFC 3339, UTC).
    pub applied_at: String,
    /// Applied, and not ready when the run ended (it failed, timed out,
    /// or the run was stopped): the next plan applies it again.
    pub unready: bool,
    /// Applied past an evaluation gate that blocked it (`--ignore-gate`):
    /// which eval, its verdict, and when.
    pub gate_override: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_version: Option<String>,
}

impl StateDocument {
    /// A state with nothing applied yet, for `fabric`, with a new lineage.
    #[must_use]
    pub fn new(fabric: &str) -> StateDocument {
        StateDocument {
            lineage: crate::clock::random_id(),
            serial: 0,
            fabric: fabric.to_owned(),
            resources: BTreeMap::new(),
        }
    }

    /// Records that `planned` was applied at `at` (seconds since the
    /// epoch), with its live identity: what apply writes after each step.
    pub fn record(&mut self, planned: &crate::plan::saved::Planned, live: Option<Live>, at: u64) {
        self.resources.insert(
            planned.id.clone(),
            Record {
                declaration: planned.declaration.as_deref().map(Into::into),
                patch: planned.patch,
                depends_on: planned.depends_on.clone(),
                content_sha256: planned.content_sha256.clone(),
                applied: planned.body.clone(),
                live,
                applied_at: crate::clock::rfc3339(at),
                unready: false,
                gate_override: None,
            },
        );
    }

    /// The document as its file's text: one resource per line, sorted by
    /// id, so that two states diff line by line.
    #[must_use]
    pub fn to_text(&self) -> String {
        let head = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "fabric": self.fabric,
        });
        let head = serde_json::to_vec(&head).unwrap_or_default();
        let records: Vec<(&ResourceId, &Record)> = self.resources.iter().collect();
        // The lines are serialized on every core, a slice of records each.
        let parts = in_parallel(&records, |slice| {
            let mut out = Vec::with_capacity(slice.len() * 1536);
            for (id, record) in slice {
                out.extend_from_slice(b",\n");
                // Records of strings and a raw value: serializing cannot fail.
                let _ = serde_json::to_writer(&mut out, &StoredRecord::new(id, record));
            }
            out
        });
        let mut out = Vec::with_capacity(256 + parts.iter().map(Vec::len).sum::<usize>());
        out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
        out.extend_from_slice(b",\"resources\":[");
        for (at, part) in parts.iter().enumerate() {
            // Each line starts `,\n`; the first one's separator is the line break alone.
            out.extend_from_slice(if at == 0 { part.get(1..).unwrap_or_default() } else { part });
        }
        out.extend_from_slice(if records.is_empty() { b"]}\n" } else { b"\n]}\n" });
        // serde_json writes only UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads a document's text; `Err` says what is wrong and where.
    pub fn from_text(text: &str) -> Result<StateDocument, String> {
        if let Some(read) = Self::from_lines(text) {
            return read;
        }
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        // One pass over the text; the version is read on its own only to
        // say why a document does not read.
        let stored: Stored = match serde_json::from_str(text) {
            Ok(stored) => stored,
            Err(e) => {
                return Err(match serde_json::from_str::<Version>(text) {
                    Ok(v) if v.format_version > FORMAT_VERSION => newer(v.format_version),
                    _ => describe(&e),
                });
            }
        };
        if stored.format_version > FORMAT_VERSION {
            return Err(newer(stored.format_version));
        }
        let mut resources = BTreeMap::new();
        for record in stored.resources {
            let (id, record) = record.into_record()?;
            let text = id.to_string();
            if resources.insert(id, record).is_some() {
                return Err(format!("resource {text} is recorded twice"));
            }
        }
        Ok(StateDocument { lineage: stored.lineage, serial: stored.serial, fabric: stored.fabric, resources })
    }
}

impl StateDocument {
    /// A document in the shape `to_text` writes (a head, one record per
    /// line) read on every core; `None` for any other shape or any line
    /// that does not parse, which the whole-document reader then reports
    /// precisely (with its line and column).
    fn from_lines(text: &str) -> Option<Result<StateDocument, String>> {
        let (head, rest) = text.split_once(",\"resources\":[")?;
        let body = match rest.strip_suffix("\n]}\n") {
            Some(body) => body.strip_prefix('\n')?,
            None => rest.strip_suffix("]}\n").filter(|r| r.is_empty())?,
        };
        #[derive(Deserialize)]
        struct Head {
            format_version: u32,
            lineage: String,
            serial: u64,
            fabric: String,
        }
        let head: Head = serde_json::from_str(&format!("{head}}}")).ok()?;
        if head.format_version > FORMAT_VERSION {
            return Some(Err(newer(head.format_version)));
        }
        let lines: Vec<&str> = if body.is_empty() { Vec::new() } else { body.split(",\n").collect() };
        let parts = in_parallel(&lines, |slice| {
            let mut out = Vec::with_capacity(slice.len());
            for line in slice {
                let Ok(record) = serde_json::from_str::<StoredRecord<'_>>(line) else { return None };
                out.push(record.into_record());
            }
            Some(out)
        });
        let mut records = Vec::with_capacity(lines.len());
        for part in parts {
            for record in part? {
                match record {
                    Ok(record) => records.push(record),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        // Written sorted; sorted again (cheaply) for a file edited by hand.
        records.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = records.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Some(Err(format!("resource {} is recorded twice", pair[0].0)));
        }
        let resources: BTreeMap<ResourceId, Record> = records.into_iter().collect();
        Some(Ok(StateDocument { lineage: head.lineage, serial: head.serial, fabric: head.fabric, resources }))
    }
}

/// `work` on every core (at most four), a slice of `items` each, the
/// results in the items' order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 4);
    // Small documents are not worth a thread.
    if cores == 1 || items.len() < 512 {
        return vec![work(items)];
    }
    let size = items.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(size).map(|slice| scope.spawn(|| work(slice))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

fn newer(version: u32) -> String {
    format!(
        "it has format version {version}, written by a newer sovereign (this one reads up to {FORMAT_VERSION}); upgrade sovereign"
    )
}

fn describe(e: &serde_json::Error) -> String {
    format!("{} (line {}, column {})", e, e.line(), e.column())
}

#[derive(Deserialize)]
struct Stored<'a> {
    format_version: u32,
    lineage: String,
    serial: u64,
    fabric: String,
    #[serde(borrow)]
    resources: Vec<StoredRecord<'a>>,
}

/// A record as a line of the file: the id both as text (to grep for) and
/// as its parts, written inline rather than as a flattened [`IdParts`]
/// (serde's `flatten` buffers every record: a third of a large load).
#[derive(Serialize, Deserialize)]
struct StoredRecord<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    site: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none", default, borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none", default, borrow)]
    declaration: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    patch: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default, borrow)]
    depends_on: Vec<IdParts<'a>>,
    #[serde(borrow)]
    content_sha256: Cow<'a, str>,
    applied: Cow<'a, RawValue>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    live: Option<Live>,
    #[serde(borrow)]
    applied_at: Cow<'a, str>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    unready: bool,
    #[serde(skip_serializing_if = "Option::is_none", default, borrow)]
    gate_override: Option<Cow<'a, str>>,
}

/// An id's parts as the state and saved plans write them (the text alone
/// is ambiguous: kinds hold `/`), borrowed from the text where they hold
/// no escapes.
#[derive(Serialize, Deserialize)]
pub(crate) struct IdParts<'a> {
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    site: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none", default, borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
}

impl<'a> IdParts<'a> {
    pub(crate) fn new(id: &'a ResourceId) -> IdParts<'a> {
        IdParts {
            target: Cow::Borrowed(id.target.word()),
            site: Cow::Borrowed(&id.site),
            kind: Cow::Borrowed(&id.kind),
            namespace: id.namespace.as_deref().map(Cow::Borrowed),
            name: Cow::Borrowed(&id.name),
        }
    }

    pub(crate) fn into_id(self) -> Result<ResourceId, String> {
        let target = Target::from_word(&self.target).ok_or_else(|| format!("unknown target `{}`", self.target))?;
        Ok(ResourceId {
            target,
            site: self.site.into(),
            kind: self.kind.into(),
            namespace: self.namespace.map(Into::into),
            name: self.name.into(),
        })
    }
}

impl<'a> StoredRecord<'a> {
    fn new(id: &'a ResourceId, record: &'a Record) -> StoredRecord<'a> {
        let parts = IdParts::new(id);
        StoredRecord {
            id: Cow::Owned(id.to_string()),
            target: parts.target,
            site: parts.site,
            kind: parts.kind,
            namespace: parts.namespace,
            name: parts.name,
            declaration: record.declaration.as_deref().map(Cow::Borrowed),
            patch: record.patch,
            depends_on: record.depends_on.iter().map(IdParts::new).collect(),
            content_sha256: Cow::Borrowed(&record.content_sha256),
            applied: Cow::Borrowed(&*record.applied),
            live: record.live.clone(),
            applied_at: Cow::Borrowed(&record.applied_at),
            unready: record.unready,
            gate_override: record.gate_override.as_deref().map(Cow::Borrowed),
        }
    }

    fn into_record(self) -> Result<(ResourceId, Record), String> {
        let text = self.id;
        let parts = IdParts {
            target: self.target,
            site: self.site,
            kind: self.kind,
            namespace: self.namespace,
            name: self.name,
        };
        let id = parts.into_id().map_err(|e| format!("resource {text}: {e}"))?;
        if !id_is(&id, &text) {
            return Err(format!("resource {text}: its parts make the id {id}"));
        }
        let depends_on = self
            .depends_on
            .into_iter()
            .map(IdParts::into_id)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("resource {text}: {e}"))?;
        let applied = self.applied.into_owned();
        let hash = sovereign_desired::hex(&<sha2::Sha256 as sha2::Digest>::digest(applied.get().as_bytes()));
        if hash != self.content_sha256 {
            return Err(format!("resource {text}: its applied body does not have the recorded content_sha256"));
        }
        if crate::clock::parse_rfc3339(&self.applied_at).is_none() {
            return Err(format!("resource {text}: applied_at `{}` is not an RFC 3339 UTC time", self.applied_at));
        }
        let record = Record {
            declaration: self.declaration.map(Into::into),
            patch: self.patch,
            depends_on,
            content_sha256: self.content_sha256.into_owned(),
            applied,
            live: self.live,
            applied_at: self.applied_at.into_owned(),
            unready: self.unready,
            gate_override: self.gate_override.map(Cow::into_owned),
        };
        Ok((id, record))
    }
}

/// Whether `text` is `id`'s text (`ResourceId`'s `Display`), without making it.
fn id_is(id: &ResourceId, text: &str) -> bool {
    let mut rest = text;
    let mut take = |part: &str| match rest.strip_prefix(part) {
        Some(after) => {
            rest = after;
            true
        }
        None => false,
    };
    take(id.target.word())
        && take("/")
        && take(&id.site)
        && take("/")
        && take(&id.kind)
        && take("/")
        && id.namespace.as_deref().is_none_or(|n| take(n) && take("/"))
        && take(&id.name)
        && rest.is_empty()
}

/// Why a state cannot be used; each message says what to do.
#[derive(Debug, PartialEq, Eq)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The local backend: a state file and the files beside it.
#[derive(Clone, Debug)]
pub struct LocalState {
    pub path: PathBuf,
}

/// A state file larger than this is refused before it is read.
const MAX_STATE: u64 = 1 << 30;

impl LocalState {
    #[must_use]
    pub fn new(path: PathBuf) -> LocalState {
        LocalState { path }
    }

    /// `<state>.backup`: the copy before the last save.
    #[must_use]
    pub fn backup(&self) -> PathBuf {
        beside(&self.path, ".backup")
    }

    /// `<state>.lock`.
    #[must_use]
    pub fn lock_path(&self) -> PathBuf {
        beside(&self.path, ".lock")
    }

    /// The state, or `None` when nothing was ever saved here.
    pub fn load(&self) -> Result<Option<StateDocument>, StateError> {
        let path = &self.path;
        let backup = self.backup();
        let text = match read_limited(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if backup.exists() {
                    return Err(StateError(format!(
                        "the state {} is missing but its backup {} exists: restore it (`cp {} {}`) if it was deleted by mistake, or delete the backup to start from nothing",
                        path.display(),
                        backup.display(),
                        backup.display(),
                        path.display()
                    )));
                }
                return Ok(None);
            }
            Err(e) => return Err(StateError(format!("cannot read the state {}: {e}", path.display()))),
        };
        StateDocument::from_text(&text).map(Some).map_err(|why| {
            let keep = if backup.exists() {
                format!(
                    "the last good copy is {} (sovereign does not touch either file): restore it with `cp {} {}` after checking it",
                    backup.display(),
                    backup.display(),
                    path.display()
                )
            } else {
                "there is no backup beside it; restore the file from your own copy".to_owned()
            };
            StateError(format!("the state {} cannot be read: {why}; {keep}", path.display()))
        })
    }

    /// Saves `state` atomically, keeping the file it replaces as the backup.
    pub fn save(&self, state: &StateDocument) -> Result<(), StateError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            StateError(format!("cannot {what} {}: {e}; the state on disk is unchanged", path.display()))
        };
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let temp = beside(&self.path, &format!(".tmp-{}", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(state.to_text().as_bytes())?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io("write", &temp, e));
        }
        // The current file becomes the backup by a link, so that a file
        // is at the state's path at every moment.
        if self.path.exists() {
            let staged = beside(&self.path, &format!(".backup-{}", std::process::id()));
            let _ = std::fs::remove_file(&staged);
            let linked =
                std::fs::hard_link(&self.path, &staged).or_else(|_| std::fs::copy(&self.path, &staged).map(drop));
            if let Err(e) = linked.and_then(|()| std::fs::rename(&staged, self.backup())) {
                let _ = std::fs::remove_file(&temp);
                return Err(io("back up", &self.path, e));
            }
        }
        std::fs::rename(&temp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io("replace", &self.path, e)
        })?;
        // The rename is durable only once the folder is.
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_STATE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_STATE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 1 GiB"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
