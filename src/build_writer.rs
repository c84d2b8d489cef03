//! How `sovereign build` writes: the layout of a build folder (docs/build.md),
//! a batch rendered into its files, YAML and index lines where it was built,
//! the files written and `index.json` streamed batch by batch, and the
//! atomic swap of the folder.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sovereign_desired::modules::rfc1123;
use sovereign_desired::{DesiredState, Resource, Target};

/// The version of `index.json`; changes that remove or rename a field bump it.
pub(crate) const INDEX_VERSION: u32 = 1;
pub(crate) const MARKER: &str = ".sovereign-build";
const MARKER_TEXT: &[u8] = b"written by sovereign build\n";

/// One entry of `index.json`'s `artifacts`.
#[derive(Serialize)]
struct Artifact<'a> {
    id: IdText<'a>,
    target: &'static str,
    site: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    patch: bool,
    declaration: Option<&'a str>,
    depends_on: IdsText<'a>,
    content_sha256: &'a str,
    path: &'a str,
    document: usize,
}

impl<'a> Artifact<'a> {
    fn new(resource: &'a Resource, path: &'a str, document: usize) -> Artifact<'a> {
        Artifact {
            id: IdText(&resource.id),
            target: resource.id.target.word(),
            site: &resource.id.site,
            kind: &resource.id.kind,
            namespace: resource.id.namespace.as_deref(),
            name: &resource.id.name,
            patch: resource.patch,
            declaration: resource.declaration.as_deref(),
            depends_on: IdsText(&resource.depends_on),
            content_sha256: &resource.hash,
            path,
            document,
        }
    }
}

/// An id as its text, written straight into the index (no `String` per id:
/// a large build's index names a million of them).
struct IdText<'a>(&'a sovereign_desired::ResourceId);

impl Serialize for IdText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

struct IdsText<'a>(&'a sovereign_desired::Dependencies);

impl Serialize for IdsText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(IdText))
    }
}

/// Where a resource of another target than the cluster's goes, outside
/// the site folders (a K3s auto-deploy folder applies every file under it):
/// one folder per target and site, the file named by the resource's scope
/// and name joined with `.` (no RFC 1123 label holds one, so two resources
/// never meet in a name; a folder per scope was 90,000 folders in a large
/// build): `targets/helm/<site>/<namespace>.<release>.yaml` (chart values),
/// `targets/qdrant/<site>/<namespace>.<store>.<collection>.json`
/// (collection bodies), `targets/temporal/<site>/<server>[.<namespace>].<kind>-<name>.json`
/// (request bodies).
fn target_file(resource: &Resource) -> String {
    let id = &resource.id;
    let scope = id.namespace.as_deref().unwrap_or_default();
    let (target, site) = (id.target.word(), rfc1123(&id.site));
    let file = |name: String| {
        let mut parts: Vec<String> = scope.split('/').map(rfc1123).filter(|p| !p.is_empty()).collect();
        parts.push(name);
        parts.join(".")
    };
    match id.target {
        Target::Npu => format!("{}/index.json", bundle_folder(&id.site, scope, &id.name)),
        Target::Helm => format!("targets/{target}/{site}/{}.yaml", file(rfc1123(&id.name))),
        Target::Qdrant => format!("targets/{target}/{site}/{}.json", file(rfc1123(&id.name))),
        _ => format!("targets/{target}/{site}/{}.json", file(format!("{}-{}", rfc1123(&id.kind), rfc1123(&id.name)))),
    }
}

/// A device bundle's folder: `targets/npu/<site>/<fleet>/<edge>`, an OCI
/// image layout (`skopeo inspect oci:FOLDER:bundle`).
fn bundle_folder(site: &str, fleet: &str, edge: &str) -> String {
    let fleet = fleet.rsplit('/').next().unwrap_or(fleet);
    format!("targets/npu/{}/{}/{}", rfc1123(site), rfc1123(fleet), rfc1123(edge))
}

/// One entry of `index.json`'s `files`, kept until the end of the build
/// (one per file written: compact, the digest as bytes).
struct FileDigest {
    path: Box<str>,
    sha256: [u8; 32],
}

impl Serialize for FileDigest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut entry = serializer.serialize_struct("FileDigest", 2)?;
        entry.serialize_field("path", &*self.path)?;
        entry.serialize_field("sha256", &sovereign_desired::hex(&self.sha256))?;
        entry.end()
    }
}

/// The folders made lately in a build: each is made once, not once per
/// file in it (a `mkdir` per file was a twentieth of a large build). The
/// files come site by site, so the recent ones are enough: forgetting the
/// rest keeps a large build's memory flat (making a folder again is one
/// harmless `mkdir`).
#[derive(Default)]
struct Folders(std::collections::HashSet<PathBuf>);

impl Folders {
    const RECENT: usize = 256;

    fn make(&mut self, dir: &Path) -> Result<(), String> {
        if !self.0.contains(dir) {
            if self.0.len() >= Self::RECENT {
                self.0.clear();
            }
            std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, &e))?;
            self.0.insert(dir.to_owned());
        }
        Ok(())
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// Bodies as one YAML stream (`---` between documents, as
/// `serde_saphyr::to_string_multiple` writes them), appended to `out`.
pub(crate) fn yaml_stream<'a>(bodies: impl IntoIterator<Item = &'a str>, out: &mut String) -> Result<(), String> {
    for (at, json) in bodies.into_iter().enumerate() {
        if at > 0 {
            out.push_str("---\n");
        }
        sovereign_desired::yaml::append_document(json, out)?;
    }
    Ok(())
}

/// A batch's output as it is rendered, in the order it is written: a
/// builder thread renders (YAML, hashes, index lines) and sends these; the
/// writer only writes. A file comes in pieces, so that a large site's
/// stream is never in memory whole.
pub(crate) enum Output {
    /// The next pieces are this file's.
    Open(String),
    Bytes(Vec<u8>),
    /// The file is whole; its sha256.
    Close([u8; 32]),
    /// The batch's lines of `index.json`'s `artifacts`, `,\n` between them.
    Index(Vec<u8>),
}

/// Where a builder sends its output; Err when the writer stopped.
pub(crate) type Sink<'s> = dyn FnMut(Output) -> Result<(), String> + 's;

/// Sends a whole file.
fn send_file(sink: &mut Sink<'_>, path: String, bytes: Vec<u8>) -> Result<(), String> {
    let sha256 = Sha256::digest(&bytes).into();
    sink(Output::Open(path))?;
    sink(Output::Bytes(bytes))?;
    sink(Output::Close(sha256))
}

/// Sends bodies as one YAML stream, converted a chunk at a time, `workers`
/// chunks at once (a fabric of one large site is one batch, built by one
/// builder), each chunk sent as it is ready.
fn send_yaml_stream(sink: &mut Sink<'_>, path: String, bodies: &[&str], workers: usize) -> Result<(), String> {
    const CHUNK: usize = 256;
    let convert = |at: usize, chunk: &[&str]| -> Result<Vec<u8>, String> {
        let mut text = String::with_capacity(chunk.iter().map(|json| json.len() * 5 / 4).sum());
        if at > 0 {
            text.push_str("---\n");
        }
        yaml_stream(chunk.iter().copied(), &mut text)?;
        Ok(text.into_bytes())
    };
    let chunks: Vec<&[&str]> = bodies.chunks(CHUNK).collect();
    let mut hash = Sha256::new();
    sink(Output::Open(path))?;
    for (group, at) in chunks.chunks(workers.max(1)).zip((0..).step_by(workers.max(1))) {
        let pieces: Vec<Result<Vec<u8>, String>> = if group.len() == 1 {
            vec![convert(at, group[0])]
        } else {
            std::thread::scope(|scope| {
                let threads: Vec<_> =
                    group.iter().enumerate().map(|(n, chunk)| scope.spawn(move || convert(at + n, chunk))).collect();
                threads
                    .into_iter()
                    .map(|thread| thread.join().unwrap_or_else(|_| Err("a YAML converter stopped".to_owned())))
                    .collect()
            })
        };
        for piece in pieces {
            let piece = piece?;
            hash.update(&piece);
            sink(Output::Bytes(piece))?;
        }
    }
    sink(Output::Close(hash.finalize().into()))
}

/// What every build folder holds the same of: the name of each site's
/// stream and the kustomization that lists it.
pub(crate) struct Layout {
    stream: String,
    kustomization: String,
}

impl Layout {
    pub(crate) fn new(fabric: &str) -> Result<Layout, String> {
        let stream = format!("sovereign-{}.yaml", rfc1123(fabric));
        let kustomization = serde_saphyr::to_string(&json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [&stream],
        }))
        .map_err(|e| format!("cannot write YAML: {e}"))?;
        Ok(Layout { stream, kustomization })
    }

    /// A batch's files: its sites' streams and kustomizations, patches,
    /// other targets' files and bundles, and its lines of the index. Each
    /// site's objects are one YAML stream in dependency order (namespaces
    /// first), so that `kubectl apply -f` and the K3s auto-deploy folder
    /// create them in an order that works; one file per site rather than
    /// per object, because a fabric of thousands of sites would be a
    /// hundred thousand files.
    pub(crate) fn render(
        &self,
        state: &DesiredState,
        bundles: &[sovereign_npu::Bundle],
        workers: usize,
        sink: &mut Sink<'_>,
    ) -> Result<(), String> {
        let order = state.order().map_err(|stuck| format!("the build has a dependency cycle through {}", stuck[0]))?;
        let mut objects: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
        // A file per resource: node patches and other targets' files.
        let mut singles: Vec<(String, &Resource)> = Vec::new();
        for id in order {
            let resource = &state.resources[id];
            if resource.id.target != Target::K3s {
                singles.push((target_file(resource), resource));
            } else if resource.patch {
                let kind = resource.id.kind.rsplit('/').next().unwrap_or_default();
                let name = rfc1123(&format!("{kind}-{}", resource.id.name));
                singles.push((format!("{}/patches/{name}.yaml", resource.id.site), resource));
            } else {
                objects.entry(&*resource.id.site).or_default().push(resource);
            }
        }
        // Per site, its objects then its other files: the index is the
        // same however the sites are batched.
        let mut artifacts: BTreeMap<&str, Vec<(&Resource, String, usize)>> = BTreeMap::new();
        for (site, resources) in &objects {
            // A site's folder sits beside `targets/` and the index.
            if matches!(*site, "targets" | "index.json" | MARKER) || site.starts_with('.') {
                return Err(format!("site \"{site}\" would have the folder of the build's own files; rename the site"));
            }
            let path = format!("{site}/{}", self.stream);
            let bodies: Vec<&str> = resources.iter().map(|r| &*r.json).collect();
            let listed = artifacts.entry(site).or_default();
            listed.extend(resources.iter().enumerate().map(|(document, r)| (*r, path.clone(), document)));
            send_file(sink, format!("{site}/kustomization.yaml"), self.kustomization.clone().into_bytes())?;
            send_yaml_stream(sink, path, &bodies, workers)?;
        }
        for (path, resource) in singles {
            if resource.id.target == Target::Npu {
                // The bundle's own files (below); the artifact points at its index.
            } else if path.ends_with(".json") {
                // A request body for a driver: JSON, as it is sent.
                let mut text = serde_json::to_vec_pretty(&resource.body()).map_err(|e| e.to_string())?;
                text.push(b'\n');
                send_file(sink, path.clone(), text)?;
            } else {
                let mut text = String::with_capacity(resource.json.len() * 5 / 4);
                yaml_stream([&*resource.json], &mut text)?;
                send_file(sink, path.clone(), text.into_bytes())?;
            }
            artifacts.entry(&resource.id.site).or_default().push((resource, path, 0));
        }
        for bundle in bundles {
            let folder = bundle_folder(&bundle.site, &bundle.fleet, &bundle.edge);
            for (path, bytes) in &bundle.files {
                send_file(sink, format!("{folder}/{path}"), bytes.clone())?;
            }
        }
        let mut index = Vec::with_capacity(state.resources.len() * 512);
        for (at, (resource, path, document)) in artifacts.values().flatten().enumerate() {
            if at > 0 {
                index.extend_from_slice(b",\n");
            }
            serde_json::to_writer(&mut index, &Artifact::new(resource, path, *document)).map_err(|e| e.to_string())?;
        }
        sink(Output::Index(index))
    }
}

/// Writes a build into `root`, a rendered batch at a time, in a fixed
/// order: same spec, same bytes. `index.json` is written as the batches
/// come, so no batch is kept once it is written.
pub(crate) struct BuildWriter<'r> {
    root: &'r Path,
    files: Vec<FileDigest>,
    index: std::io::BufWriter<std::fs::File>,
    artifacts: bool,
    folders: Folders,
    /// The file being written, and its path in the build.
    open: Option<(String, std::fs::File)>,
}

impl<'r> BuildWriter<'r> {
    pub(crate) fn new(root: &'r Path) -> Result<BuildWriter<'r>, String> {
        // Not hashed: the index lists the digests of the other files.
        let path = root.join("index.json");
        let file = std::fs::File::create(&path).map_err(|e| io_error("write", &path, &e))?;
        let mut index = std::io::BufWriter::with_capacity(1 << 16, file);
        write!(index, "{{\"version\":{INDEX_VERSION},\n\"artifacts\":[").map_err(|e| io_error("write", &path, &e))?;
        Ok(BuildWriter { root, files: Vec::new(), index, artifacts: false, folders: Folders::default(), open: None })
    }

    /// Writes what a builder rendered, as it comes.
    pub(crate) fn write(&mut self, output: Output) -> Result<(), String> {
        match output {
            Output::Open(path) => {
                if let Some((open, _)) = &self.open {
                    return Err(format!("{path} opened while {open} is open (a bug in sovereign)"));
                }
                let full = self.root.join(&path);
                if let Some(dir) = full.parent() {
                    self.folders.make(dir)?;
                }
                let file = std::fs::File::create(&full).map_err(|e| io_error("write", &full, &e))?;
                self.open = Some((path, file));
            }
            Output::Bytes(bytes) => {
                let Some((path, file)) = &mut self.open else {
                    return Err("bytes for no file (a bug in sovereign)".into());
                };
                file.write_all(&bytes).map_err(|e| io_error("write", Path::new(path), &e))?;
            }
            Output::Close(sha256) => {
                let Some((path, _)) = self.open.take() else {
                    return Err("no file to close (a bug in sovereign)".into());
                };
                self.files.push(FileDigest { path: path.into_boxed_str(), sha256 });
            }
            Output::Index(lines) if lines.is_empty() => {}
            Output::Index(lines) => {
                let io = |e: std::io::Error| io_error("write", Path::new("index.json"), &e);
                self.index.write_all(if self.artifacts { b",\n" } else { b"\n" }).map_err(io)?;
                self.index.write_all(&lines).map_err(io)?;
                self.artifacts = true;
            }
        }
        Ok(())
    }

    /// The rest of the index (every file's digest, what apply creates,
    /// the assumptions, what was not built) and the marker.
    pub(crate) fn finish(
        mut self,
        at_apply: &[String],
        assumptions: &[String],
        unbuilt: &[String],
    ) -> Result<(), String> {
        let io = |e: std::io::Error| io_error("write", Path::new("index.json"), &e);
        fn lines<T: Serialize>(out: &mut impl std::io::Write, items: impl Iterator<Item = T>) -> std::io::Result<()> {
            out.write_all(b"[")?;
            for (n, item) in items.enumerate() {
                out.write_all(if n == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *out, &item)?;
            }
            out.write_all(b"\n]")
        }
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some((open, _)) = &self.open {
            return Err(format!("{open} was never finished (a bug in sovereign)"));
        }
        // Two artifacts whose names meet in one file: the second would have
        // replaced the first.
        if let Some(pair) = self.files.windows(2).find(|pair| pair[0].path == pair[1].path) {
            return Err(format!(
                "two artifacts would be written to {}: their names differ only in characters a file name here cannot hold (`a.b` and `a-b`, `A` and `a`); rename one of the declarations",
                pair[0].path
            ));
        }
        self.index.write_all(b"\n],\n\"files\":").map_err(io)?;
        lines(&mut self.index, self.files.iter()).map_err(io)?;
        for (key, items) in [("at_apply", at_apply), ("assumptions", assumptions), ("unbuilt", unbuilt)] {
            write!(self.index, ",\n\"{key}\":").map_err(io)?;
            lines(&mut self.index, items.iter()).map_err(io)?;
        }
        self.index.write_all(b"}\n").and_then(|()| self.index.flush()).map_err(io)?;
        std::fs::write(self.root.join(MARKER), MARKER_TEXT).map_err(|e| io_error("write", self.root, &e))
    }
}

/// Writes the build into a sibling folder, then swaps it in: `DIR` is the
/// old build or the new one, never half of either. A crash between the two
/// renames leaves `DIR.sovereign-old` and no `DIR`: the next build puts it
/// back first. One build of `DIR` runs at a time (`BuildLock`), and the
/// folders beside it are removed only when a build made them (they carry
/// the marker from the start) or with `--force`.
pub(crate) fn write_atomically(
    out: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let name = out.file_name().ok_or_else(|| format!("{} names no folder", out.display()))?.to_string_lossy();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fresh = parent.join(format!("{name}.sovereign-new"));
    let old = parent.join(format!("{name}.sovereign-old"));
    std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, &e))?;
    let lock = BuildLock::take(&parent.join(format!("{name}.sovereign-lock")), out)?;
    let result = swap_in(out, &fresh, &old, force, write);
    lock.release();
    result
}

/// One build of a folder at a time: a second would remove the first's
/// folder beside it. An exclusive `flock` on a file beside the folder,
/// which goes with the process (a crash frees it) and is removed when the
/// build ends.
struct BuildLock {
    path: PathBuf,
    file: std::fs::File,
}

impl BuildLock {
    fn take(path: &Path, out: &Path) -> Result<BuildLock, String> {
        use std::os::unix::fs::MetadataExt as _;
        for _ in 0..8 {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| io_error("lock", path, &e))?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(format!(
                        "another `sovereign build` is writing {} now; wait for it to finish",
                        out.display()
                    ));
                }
                Err(e) => return Err(io_error("lock", path, &e.into())),
            }
            // Locked, but the file may have been removed by a build that
            // just ended (and another build may lock its successor): only
            // the file at the path counts.
            let (held, named) = (file.metadata(), std::fs::metadata(path));
            if let (Ok(held), Ok(named)) = (held, named)
                && (held.dev(), held.ino()) == (named.dev(), named.ino())
            {
                return Ok(BuildLock { path: path.to_owned(), file });
            }
        }
        Err(format!("cannot lock {}: it is removed and made again as fast as it is locked", path.display()))
    }

    /// Removes the file while it is still locked, then unlocks.
    fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// The swap of `write_atomically`, under its lock.
fn swap_in(
    out: &Path,
    fresh: &Path,
    old: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let io = |what: &str, path: &Path, e: std::io::Error| io_error(what, path, &e);
    // The folders beside DIR are removed only when a build made them.
    let ours = |folder: &Path| {
        force || folder.join(MARKER).is_file() || std::fs::read_dir(folder).is_ok_and(|mut e| e.next().is_none())
    };
    if !out.exists() && old.is_dir() {
        std::fs::rename(old, out).map_err(|e| io("restore", old, e))?;
    }
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(|e| io("read", out, e))?.next().is_none();
        if !empty && !out.join(MARKER).is_file() && !force {
            return Err(format!(
                "{} exists and was not written by `sovereign build`; choose another folder, or pass --force to replace it",
                out.display()
            ));
        }
    }
    for beside in [fresh, old] {
        if beside.exists() && !ours(beside) {
            return Err(format!(
                "{} exists and was not written by `sovereign build`; move it away, or pass --force to replace it",
                beside.display()
            ));
        }
    }
    if fresh.exists() {
        remove_folder(fresh).map_err(|e| io("remove", fresh, e))?;
    }
    std::fs::create_dir_all(fresh).map_err(|e| io("create", fresh, e))?;
    // Marked from the start: a build that crashes halfway leaves a folder
    // the next one knows it may remove.
    std::fs::write(fresh.join(MARKER), MARKER_TEXT).map_err(|e| io("write", fresh, e))?;
    if let Err(message) = write(fresh) {
        // Nothing of a refused or failed build stays beside DIR.
        let _ = remove_folder(fresh);
        return Err(message);
    }
    // Everything on disk before the swap, in one flush of the file system
    // (an fsync per file made a build of 20,000 files take seconds).
    let folder = std::fs::File::open(fresh).map_err(|e| io("open", fresh, e))?;
    rustix::fs::syncfs(&folder).map_err(|e| io("sync", fresh, e.into()))?;
    if out.exists() {
        if old.exists() {
            remove_folder(old).map_err(|e| io("remove", old, e))?;
        }
        std::fs::rename(out, old).map_err(|e| io("move aside", out, e))?;
    }
    std::fs::rename(fresh, out).map_err(|e| io("move into place", fresh, e))?;
    if old.exists() {
        remove_folder(old).map_err(|e| io("remove", old, e))?;
    }
    Ok(())
}

/// Removes a folder and everything in it on every core: a build of
/// 100,000 files took most of a second to remove on one. Its tree is opened
/// breadth-first until there is enough to share out; each thread removes
/// its share of those entries whole, then the opened folders go, deepest
/// first. Symbolic links are removed, never followed.
fn remove_folder(root: &Path) -> std::io::Result<()> {
    const ENOUGH: usize = 256;
    // A link in the folder's place goes, never what it points at.
    if std::fs::symlink_metadata(root)?.file_type().is_symlink() {
        return std::fs::remove_file(root);
    }
    // The marker goes last: a removal that fails halfway leaves a folder
    // the next build still knows it made.
    let marker = root.join(MARKER);
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut opened = vec![root.to_owned()];
    let mut entries: Vec<(PathBuf, bool)> = Vec::new();
    let mut next = 0;
    while next < opened.len() {
        let folder = opened[next].clone();
        next += 1;
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let is_dir = entry.file_type()?.is_dir();
            if entry.path() == marker {
                continue;
            }
            if is_dir && entries.len() + opened.len() < ENOUGH {
                opened.push(entry.path());
            } else {
                entries.push((entry.path(), is_dir));
            }
        }
    }
    let remove = |(path, is_dir): &(PathBuf, bool)| {
        if *is_dir { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) }
    };
    if workers <= 1 || entries.len() < 2 {
        entries.iter().try_for_each(remove)?;
    } else {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..workers.min(entries.len()))
                .map(|first| {
                    let (entries, remove) = (&entries, &remove);
                    scope.spawn(move || entries.iter().skip(first).step_by(workers).try_for_each(remove))
                })
                .collect();
            threads.into_iter().try_for_each(|thread| {
                thread.join().unwrap_or_else(|_| Err(std::io::Error::other("a remover stopped")))
            })
        })?;
    }
    match std::fs::remove_file(&marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Folders opened later are deeper: they go first.
    opened.iter().rev().try_for_each(std::fs::remove_dir)
}

#[cfg(test)]
mod tests {
    use super::remove_folder;

    /// A tree wider and deeper than what is opened before sharing out,
    /// with a link to a folder outside it: all of it goes, the outside stays.
    #[test]
    fn remove_folder_removes_a_large_tree_and_follows_no_link() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("build"), tmp.path().join("outside"));
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), "keep").unwrap();
        for site in 0..300 {
            let folder = root.join(format!("site-{site}")).join("patches").join("deep");
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("node.yaml"), "kind: Node\n").unwrap();
            std::fs::write(root.join(format!("site-{site}")).join("stream.yaml"), "kind: X\n").unwrap();
        }
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("site-7").join("link")).unwrap();
        remove_folder(&root).unwrap();
        assert!(!root.exists());
        assert!(outside.join("keep.txt").is_file());
    }
}
