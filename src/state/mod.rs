//! The state of a fabric: what sovereign applied, per resource id.
//!
//! One JSON document (docs/apply.md, format version [`FORMAT_VERSION`]):
//! a lineage (a random id given when the state is made, so that a plan or
//! a copy of another fabric's state is never taken for this one's), a
//! serial that every save increments, and per resource the content hash
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

pub mod lock;

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
    /// Incremented by every save.
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The document as its file's text: one resource per line, sorted by
    /// id, so that two states diff line by line.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = Vec::with_capacity(256 + self.resources.len() * 2048);
        let head = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "fabric": self.fabric,
        });
        let head = serde_json::to_vec(&head).unwrap_or_default();
        out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
        out.extend_from_slice(b",\"resources\":[");
        for (at, (id, record)) in self.resources.iter().enumerate() {
            out.extend_from_slice(if at == 0 { b"\n" } else { b",\n" });
            // Records of strings and a raw value: serializing cannot fail.
            let _ = serde_json::to_writer(&mut out, &StoredRecord::new(id, record));
        }
        out.extend_from_slice(b"\n]}\n");
        // serde_json writes only UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads a document's text; `Err` says what is wrong and where.
    pub fn from_text(text: &str) -> Result<StateDocument, String> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = serde_json::from_str(text).map_err(|e| describe(&e))?;
        if version.format_version > FORMAT_VERSION {
            return Err(format!(
                "it has format version {}, written by a newer sovereign (this one reads up to {FORMAT_VERSION}); upgrade sovereign",
                version.format_version
            ));
        }
        let stored: Stored = serde_json::from_str(text).map_err(|e| describe(&e))?;
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

fn describe(e: &serde_json::Error) -> String {
    format!("{} (line {}, column {})", e, e.line(), e.column())
}

#[derive(Deserialize)]
struct Stored {
    lineage: String,
    serial: u64,
    fabric: String,
    resources: Vec<StoredRecord<'static>>,
}

/// A record as a line of the file: the id both as text (to grep for) and
/// as its parts (the text alone is ambiguous: kinds hold `/`).
#[derive(Serialize, Deserialize)]
struct StoredRecord<'a> {
    id: String,
    target: String,
    site: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    namespace: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    declaration: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    patch: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    depends_on: Vec<StoredId>,
    content_sha256: String,
    applied: std::borrow::Cow<'a, RawValue>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    live: Option<Live>,
    applied_at: String,
}

#[derive(Serialize, Deserialize)]
struct StoredId {
    target: String,
    site: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    namespace: Option<String>,
    name: String,
}

impl StoredId {
    fn new(id: &ResourceId) -> StoredId {
        StoredId {
            target: id.target.word().to_owned(),
            site: id.site.to_string(),
            kind: id.kind.to_string(),
            namespace: id.namespace.as_deref().map(str::to_owned),
            name: id.name.to_string(),
        }
    }

    fn into_id(self) -> Result<ResourceId, String> {
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
    fn new(id: &ResourceId, record: &'a Record) -> StoredRecord<'a> {
        let parts = StoredId::new(id);
        StoredRecord {
            id: id.to_string(),
            target: parts.target,
            site: parts.site,
            kind: parts.kind,
            namespace: parts.namespace,
            name: parts.name,
            declaration: record.declaration.as_deref().map(str::to_owned),
            patch: record.patch,
            depends_on: record.depends_on.iter().map(StoredId::new).collect(),
            content_sha256: record.content_sha256.clone(),
            applied: std::borrow::Cow::Borrowed(&*record.applied),
            live: record.live.clone(),
            applied_at: record.applied_at.clone(),
        }
    }

    fn into_record(self) -> Result<(ResourceId, Record), String> {
        let text = self.id.clone();
        let id = StoredId {
            target: self.target,
            site: self.site,
            kind: self.kind,
            namespace: self.namespace,
            name: self.name,
        }
        .into_id()
        .map_err(|e| format!("resource {text}: {e}"))?;
        if id.to_string() != text {
            return Err(format!("resource {text}: its parts make the id {id}"));
        }
        let depends_on = self
            .depends_on
            .into_iter()
            .map(StoredId::into_id)
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
            content_sha256: self.content_sha256,
            applied,
            live: self.live,
            applied_at: self.applied_at,
        };
        Ok((id, record))
    }
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
