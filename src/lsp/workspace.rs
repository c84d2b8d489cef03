//! The editor's view of the specs: open buffers over the disk, the root
//! spec each buffer belongs to, and the latest checked snapshot per root.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sovereign_analyze::Compilation;
use sovereign_check::{FileKind, Host, Stdlib};
use sovereign_diagnostics::FileId;

use crate::host::DiskHost;

/// An open buffer.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    pub(crate) text: Arc<String>,
    pub(crate) version: i32,
}

/// Open buffers first, the disk for everything else: an import of a file
/// being edited sees the unsaved text.
pub(crate) struct OverlayHost {
    pub(crate) open: BTreeMap<PathBuf, Arc<String>>,
    /// The version of each open buffer as read, to stamp the diagnostics.
    pub(crate) versions: BTreeMap<PathBuf, i32>,
}

impl Host for OverlayHost {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.open.get(&DiskHost.canonical(path)) {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => DiskHost.read(path),
        }
    }
    fn kind(&self, path: &Path) -> FileKind {
        if self.open.contains_key(&DiskHost.canonical(path)) {
            return FileKind::File;
        }
        DiskHost.kind(path)
    }
    fn kdl_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        DiskHost.kdl_files(dir)
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        DiskHost.canonical(path)
    }
}

/// One compilation of one root spec, kept for the requests that follow it:
/// the same [`Compilation`] `sovereign check` makes, with the paths of its files.
pub(crate) struct Snapshot {
    pub(crate) compilation: Compilation,
    /// The canonical path of every spec file read (not the stdlib), resolved
    /// once here rather than on every request.
    pub(crate) files: Vec<(FileId, PathBuf)>,
}

impl Snapshot {
    /// The id of a loaded file by canonical path.
    pub(crate) fn file_of(&self, path: &Path) -> Option<FileId> {
        self.files.iter().find(|(_, p)| p == path).map(|(id, _)| *id)
    }

    /// The canonical path of a loaded spec file.
    pub(crate) fn path_of(&self, file: FileId) -> Option<&Path> {
        self.files.iter().find(|(id, _)| *id == file).map(|(_, p)| p.as_path())
    }
}

/// Everything the server knows; behind one lock, held only briefly.
#[derive(Default)]
pub(crate) struct Workspace {
    /// Open buffers by canonical path.
    pub(crate) documents: BTreeMap<PathBuf, Document>,
    /// The root spec of each open buffer.
    pub(crate) roots: BTreeMap<PathBuf, PathBuf>,
    /// The latest snapshot per root.
    pub(crate) snapshots: BTreeMap<PathBuf, Arc<Snapshot>>,
    /// Roots (or buffers whose root is not known yet) being checked now.
    pub(crate) running: BTreeSet<PathBuf>,
    /// Of those, the ones edited since their check started.
    pub(crate) dirty: BTreeSet<PathBuf>,
    /// Numbers the checks in the order they start.
    pub(crate) sequence: u64,
    /// The number of the check whose result each root shows; older results are dropped.
    pub(crate) applied: BTreeMap<PathBuf, u64>,
    /// Files that got diagnostics from each root, to clear them when they are fixed.
    pub(crate) published: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl Workspace {
    pub(crate) fn overlay(&self) -> OverlayHost {
        OverlayHost {
            open: self.documents.iter().map(|(p, d)| (p.clone(), d.text.clone())).collect(),
            versions: self.documents.iter().map(|(p, d)| (p.clone(), d.version)).collect(),
        }
    }

    /// The snapshot that covers `path`, if any.
    pub(crate) fn snapshot_for(&self, path: &Path) -> Option<Arc<Snapshot>> {
        let root = self.roots.get(path).cloned().unwrap_or_else(|| path.to_path_buf());
        self.snapshots
            .get(&root)
            .cloned()
            .or_else(|| self.snapshots.values().find(|s| s.file_of(path).is_some()).cloned())
    }
}

/// Checks (and, when clean, analyzes) the spec rooted at `root`.
pub(crate) fn check(root: &Path, host: &OverlayHost, stdlib: &Stdlib) -> Snapshot {
    let bytes = host.read(root).unwrap_or_default();
    let compilation = sovereign_analyze::compile(stdlib, root, bytes, host);
    let files = compilation.sources.spec_files().map(|(id, f)| (id, host.canonical(&f.path))).collect();
    Snapshot { compilation, files }
}

impl std::ops::Deref for Snapshot {
    type Target = Compilation;
    fn deref(&self) -> &Compilation {
        &self.compilation
    }
}

/// The root spec of a buffer: the nearest `fabric.kdl` at or above it whose
/// imports reach it, else the buffer itself.
pub(crate) fn find_root(path: &Path, host: &OverlayHost, stdlib: &Stdlib) -> PathBuf {
    if path.file_name().is_some_and(|n| n == "fabric.kdl") {
        return path.to_path_buf();
    }
    let mut dir = path.parent();
    let mut tries = 0;
    while let Some(d) = dir {
        let candidate = d.join("fabric.kdl");
        if candidate.is_file() || host.open.contains_key(&candidate) {
            let bytes = host.read(&candidate).unwrap_or_default();
            let checked = sovereign_check::check(&candidate, bytes, host, stdlib);
            if checked.sources.files().any(|(_, f)| host.canonical(&f.path) == path) {
                return host.canonical(&candidate);
            }
        }
        tries += 1;
        if tries > 8 {
            break;
        }
        dir = d.parent();
    }
    path.to_path_buf()
}
