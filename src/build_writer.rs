//! How `sovereign build` writes: the layout of a build folder (docs/build.md),
//! its files hashed as they are written, YAML converted on every core,
//! `index.json` streamed batch by batch, and the atomic swap of the folder.

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

/// One entry of `index.json`'s `artifacts`.
#[derive(Serialize)]
struct Artifact<'a> {
    id: String,
    target: &'static str,
    site: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    patch: bool,
    declaration: Option<&'a str>,
    depends_on: Vec<String>,
    content_sha256: &'a str,
    path: &'a str,
    document: usize,
}

impl<'a> Artifact<'a> {
    fn new(resource: &'a Resource, path: &'a str, document: usize) -> Artifact<'a> {
        Artifact {
            id: resource.id.to_string(),
            target: resource.id.target.word(),
            site: &resource.id.site,
            kind: &resource.id.kind,
            namespace: resource.id.namespace.as_deref(),
            name: &resource.id.name,
            patch: resource.patch,
            declaration: resource.declaration.as_deref(),
            depends_on: resource.depends_on.iter().map(ToString::to_string).collect(),
            content_sha256: &resource.hash,
            path,
            document,
        }
    }
}

/// Where a resource of another target than the cluster's goes, outside
/// the site folders (a K3s auto-deploy folder applies every file under it):
/// `targets/helm/<site>/<namespace>/<release>-values.yaml` (chart values),
/// `targets/qdrant/<site>/<namespace>/<store>/<collection>.json`
/// (collection bodies), `targets/temporal/<site>/<server>/[<namespace>/]<kind>-<name>.json`
/// (request bodies).
fn target_file(resource: &Resource) -> String {
    let id = &resource.id;
    let scope: Vec<String> = id.namespace.as_deref().unwrap_or_default().split('/').map(rfc1123).collect();
    let (target, site, scope, name) = (id.target.word(), rfc1123(&id.site), scope.join("/"), rfc1123(&id.name));
    match id.target {
        Target::Npu => format!("{}/index.json", bundle_folder(&id.site, &scope, &id.name)),
        Target::Helm => format!("targets/{target}/{site}/{scope}/{name}-values.yaml"),
        Target::Qdrant => format!("targets/{target}/{site}/{scope}/{name}.json"),
        _ => format!("targets/{target}/{site}/{scope}/{}-{name}.json", rfc1123(&id.kind)),
    }
}

/// A device bundle's folder: `targets/npu/<site>/<fleet>/<edge>`, an OCI
/// image layout (`skopeo inspect oci:FOLDER:bundle`).
fn bundle_folder(site: &str, fleet: &str, edge: &str) -> String {
    let fleet = fleet.rsplit('/').next().unwrap_or(fleet);
    format!("targets/npu/{}/{}/{}", rfc1123(site), rfc1123(fleet), rfc1123(edge))
}

/// One entry of `index.json`'s `files`.
#[derive(Serialize)]
struct FileDigest {
    path: String,
    sha256: String,
}

/// A file being written into the new build folder, hashed as it is
/// written. Unbuffered: what is written to it comes in large pieces (a
/// chunk of YAML), or through a `BufWriter` around it (the index).
struct HashedFile {
    path: PathBuf,
    out: std::fs::File,
    hash: Sha256,
}

impl HashedFile {
    fn create(root: &Path, path: PathBuf) -> Result<HashedFile, String> {
        let full = root.join(&path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, &e))?;
        }
        let file = std::fs::File::create(&full).map_err(|e| io_error("write", &full, &e))?;
        Ok(HashedFile { path, out: file, hash: Sha256::new() })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.hash.update(bytes);
        self.out.write_all(bytes).map_err(|e| io_error("write", &self.path, &e))
    }

    fn finish(self) -> Result<FileDigest, String> {
        Ok(FileDigest {
            path: self.path.to_string_lossy().into_owned(),
            sha256: sovereign_desired::hex(&self.hash.finalize()),
        })
    }
}

impl std::io::Write for HashedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.hash.update(bytes);
        self.out.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// Each list of bodies as one YAML stream (`---` between documents, as
/// `serde_saphyr::to_string_multiple` writes them), handed to `sink` with
/// the stream's index, in order, a chunk at a time: no whole stream is held
/// in memory. Chunks are converted on every core (YAML is half of a
/// build), by one set of threads for all the streams of a build.
pub(crate) fn yaml_streams(
    streams: &[Vec<&str>],
    mut sink: impl FnMut(usize, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    const CHUNK: usize = 128;
    let mut chunks: Vec<(usize, usize, usize)> = Vec::new();
    for (stream, bodies) in streams.iter().enumerate() {
        chunks.push((stream, 0, bodies.len().min(CHUNK)));
        chunks.extend((CHUNK..bodies.len()).step_by(CHUNK).map(|at| (stream, at, bodies.len().min(at + CHUNK))));
    }
    let convert = |chunk: usize| -> Result<String, String> {
        let (stream, first, end) = chunks[chunk];
        let mut out = String::with_capacity((end - first) * 2048);
        for (at, json) in streams[stream][first..end].iter().enumerate() {
            if first + at > 0 {
                out.push_str("---\n");
            }
            sovereign_desired::yaml::append_document(json, &mut out)?;
        }
        Ok(out)
    };
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(chunks.len());
    if workers <= 1 {
        for (chunk, &(stream, ..)) in chunks.iter().enumerate() {
            sink(stream, convert(chunk)?.as_bytes())?;
        }
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (done, converted) = std::sync::mpsc::sync_channel::<(usize, Result<String, String>)>(workers * 2);
        for _ in 0..workers {
            let done = done.clone();
            let (next, convert, count) = (&next, &convert, chunks.len());
            scope.spawn(move || {
                loop {
                    let chunk = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // A closed channel: the writer stopped on an error.
                    if chunk >= count || done.send((chunk, convert(chunk))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // Chunks arrive in any order; they are written in theirs.
        let mut waiting = BTreeMap::new();
        let mut wanted = 0;
        for (chunk, text) in converted {
            waiting.insert(chunk, text);
            while let Some(text) = waiting.remove(&wanted) {
                sink(chunks[wanted].0, text?.as_bytes())?;
                wanted += 1;
            }
        }
        Ok(())
    })
}

/// Writes a build into `root`, a batch of sites at a time, in a fixed
/// order: same spec, same bytes. Each site's objects are one YAML stream in
/// dependency order (namespaces first), so that `kubectl apply -f` and the
/// K3s auto-deploy folder create them in an order that works; one file per
/// site rather than per object, because a fabric of thousands of sites
/// would be a hundred thousand files. `index.json` is written as the
/// batches come, so no batch is kept once it is written.
pub(crate) struct BuildWriter<'r> {
    root: &'r Path,
    stream: String,
    kustomization: String,
    files: Vec<FileDigest>,
    index: std::io::BufWriter<std::fs::File>,
    artifacts: usize,
}

impl<'r> BuildWriter<'r> {
    pub(crate) fn new(root: &'r Path, fabric: &str) -> Result<BuildWriter<'r>, String> {
        let stream = format!("sovereign-{}.yaml", rfc1123(fabric));
        let kustomization = serde_saphyr::to_string(&json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [&stream],
        }))
        .map_err(|e| format!("cannot write YAML: {e}"))?;
        // Not hashed: the index lists the digests of the other files.
        let path = root.join("index.json");
        let file = std::fs::File::create(&path).map_err(|e| io_error("write", &path, &e))?;
        let mut index = std::io::BufWriter::with_capacity(1 << 16, file);
        write!(index, "{{\"version\":{INDEX_VERSION},\n\"artifacts\":[").map_err(|e| io_error("write", &path, &e))?;
        Ok(BuildWriter { root, stream, kustomization, files: Vec::new(), index, artifacts: 0 })
    }

    /// Writes one batch: its sites' streams and kustomizations, patches,
    /// other targets' files and bundles, and their lines of the index.
    pub(crate) fn add(&mut self, state: &DesiredState, bundles: &[sovereign_npu::Bundle]) -> Result<(), String> {
        let root = self.root;
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
        let streams: Vec<String> = objects.keys().map(|site| format!("{site}/{}", self.stream)).collect();
        let mut artifacts: Vec<(&Resource, &str, usize)> = Vec::with_capacity(state.resources.len());
        // The YAML files: one stream per site, then one file per patch or values file.
        let mut paths: Vec<&str> = streams.iter().map(String::as_str).collect();
        let mut bodies: Vec<Vec<&str>> = objects.values().map(|rs| rs.iter().map(|r| &*r.json).collect()).collect();
        for ((site, resources), path) in objects.iter().zip(&streams) {
            artifacts.extend(resources.iter().enumerate().map(|(document, r)| (*r, path.as_str(), document)));
            let mut file = HashedFile::create(root, Path::new(site).join("kustomization.yaml"))?;
            file.write(self.kustomization.as_bytes())?;
            self.files.push(file.finish()?);
        }
        for (path, resource) in &singles {
            artifacts.push((*resource, path.as_str(), 0));
            if resource.id.target == Target::Npu {
                // The bundle's own files (below); the artifact points at its index.
                continue;
            }
            if path.ends_with(".json") {
                // A request body for a driver: JSON, as it is sent.
                let mut file = HashedFile::create(root, PathBuf::from(path))?;
                let mut text = serde_json::to_string_pretty(&resource.body()).map_err(|e| e.to_string())?;
                text.push('\n');
                file.write(text.as_bytes())?;
                self.files.push(file.finish()?);
            } else {
                paths.push(path);
                bodies.push(vec![&*resource.json]);
            }
        }
        for bundle in bundles {
            let folder = bundle_folder(&bundle.site, &bundle.fleet, &bundle.edge);
            for (path, bytes) in &bundle.files {
                let mut file = HashedFile::create(root, PathBuf::from(format!("{folder}/{path}")))?;
                file.write(bytes)?;
                self.files.push(file.finish()?);
            }
        }
        let files = &mut self.files;
        let mut current: Option<(usize, HashedFile)> = None;
        yaml_streams(&bodies, |stream, bytes| {
            if current.as_ref().is_none_or(|(at, _)| *at != stream) {
                if let Some((_, file)) = current.take() {
                    files.push(file.finish()?);
                }
                current = Some((stream, HashedFile::create(root, PathBuf::from(paths[stream]))?));
            }
            current.as_mut().map_or(Ok(()), |(_, file)| file.write(bytes))
        })?;
        if let Some((_, file)) = current {
            files.push(file.finish()?);
        }
        let mut line = Vec::with_capacity(512);
        for (resource, path, document) in artifacts {
            line.clear();
            line.extend_from_slice(if self.artifacts == 0 { b"\n" } else { b",\n" });
            serde_json::to_writer(&mut line, &Artifact::new(resource, path, document)).map_err(|e| e.to_string())?;
            self.index.write_all(&line).map_err(|e| io_error("write", Path::new("index.json"), &e))?;
            self.artifacts += 1;
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
        self.index.write_all(b"\n],\n\"files\":").map_err(io)?;
        lines(&mut self.index, self.files.iter()).map_err(io)?;
        for (key, items) in [("at_apply", at_apply), ("assumptions", assumptions), ("unbuilt", unbuilt)] {
            write!(self.index, ",\n\"{key}\":").map_err(io)?;
            lines(&mut self.index, items.iter()).map_err(io)?;
        }
        self.index.write_all(b"}\n").and_then(|()| self.index.flush()).map_err(io)?;
        std::fs::write(self.root.join(MARKER), b"written by sovereign build\n")
            .map_err(|e| io_error("write", self.root, &e))
    }
}

/// Writes the build into a sibling folder, then swaps it in: `DIR` is the
/// old build or the new one, never half of either. A crash between the two
/// renames leaves `DIR.sovereign-old` and no `DIR`: the next build puts it
/// back first.
pub(crate) fn write_atomically(
    out: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let name = out.file_name().ok_or_else(|| format!("{} names no folder", out.display()))?.to_string_lossy();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fresh = parent.join(format!("{name}.sovereign-new"));
    let old = parent.join(format!("{name}.sovereign-old"));
    let io = |what: &str, path: &Path, e: std::io::Error| io_error(what, path, &e);
    if !out.exists() && old.is_dir() {
        std::fs::rename(&old, out).map_err(|e| io("restore", &old, e))?;
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
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(|e| io("remove", &fresh, e))?;
    }
    std::fs::create_dir_all(&fresh).map_err(|e| io("create", &fresh, e))?;
    if let Err(message) = write(&fresh) {
        // Nothing of a refused or failed build stays beside DIR.
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(message);
    }
    // Everything on disk before the swap, in one flush of the file system
    // (an fsync per file made a build of 20,000 files take seconds).
    let folder = std::fs::File::open(&fresh).map_err(|e| io("open", &fresh, e))?;
    rustix::fs::syncfs(&folder).map_err(|e| io("sync", &fresh, e.into()))?;
    if out.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io("remove", &old, e))?;
        }
        std::fs::rename(out, &old).map_err(|e| io("move aside", out, e))?;
    }
    std::fs::rename(&fresh, out).map_err(|e| io("move into place", &fresh, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io("remove", &old, e))?;
    }
    Ok(())
}
