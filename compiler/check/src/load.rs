//! Loading a spec: the root file and everything it imports, depth first.
//!
//! All file access goes through [`Host`], so the compiler stays pure: the
//! CLI reads the disk, the LSP serves open buffers, tests use memory.

use std::io;
use std::path::{Path, PathBuf};

use sovereign_diagnostics::{Diagnostic, FileId, SourceMap, Span, codes};

use crate::ir::Fabric;
use crate::lower::Lower;
use crate::schema::Schema;

/// Everything the compiler may ask of the outside world.
pub trait Host {
    /// Reads a file as bytes.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` is a folder.
    fn is_dir(&self, path: &Path) -> bool;
    /// Every `.kdl` file under a folder, recursively, sorted by path.
    fn kdl_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// A canonical form of the path, to recognise a file imported twice.
    fn canonical(&self, path: &Path) -> PathBuf;
}

/// Specs larger than this are refused rather than risking offsets past `u32`.
pub const MAX_FILE_BYTES: usize = 1 << 30;

pub(crate) struct Loader<'a> {
    pub(crate) host: &'a dyn Host,
    pub(crate) schema: &'a Schema,
    pub(crate) sources: SourceMap,
    pub(crate) fabric: Fabric,
    pub(crate) diagnostics: Vec<Diagnostic>,
    loaded: Vec<PathBuf>,
    /// The chain of files being loaded, with the span of each import that continued it.
    stack: Vec<(PathBuf, Option<Span>)>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(host: &'a dyn Host, schema: &'a Schema, sources: SourceMap) -> Self {
        Loader {
            host,
            schema,
            sources,
            fabric: Fabric::default(),
            diagnostics: Vec::new(),
            loaded: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Loads a file that was already read (the root, or an editor buffer).
    pub(crate) fn load_text(&mut self, path: &Path, bytes: Vec<u8>, imported_at: Option<Span>) -> FileId {
        let canonical = self.host.canonical(path);
        self.loaded.push(canonical.clone());
        self.stack.push((canonical, imported_at));
        let (text, utf8_error) = match String::from_utf8(bytes) {
            Ok(text) => (text, None),
            Err(error) => {
                let at = error.utf8_error().valid_up_to();
                (String::from_utf8_lossy(error.as_bytes()).into_owned(), Some(at))
            }
        };
        let file = FileId(u32::try_from(self.sources.files().count()).unwrap_or(u32::MAX));
        if let Some(at) = utf8_error {
            self.diagnostics.push(
                Diagnostic::new(
                    codes::INVALID_UTF8,
                    // The valid prefix is unchanged in the lossy text; the first invalid
                    // sequence became one U+FFFD there.
                    Span::new(file, at, (at + '\u{FFFD}'.len_utf8()).min(text.len())),
                    "the file is not valid UTF-8",
                )
                .with_primary_label("invalid bytes start here")
                .with_help("save the file as UTF-8"),
            );
        }
        // About one item per line: reserving up front spares the copies of a
        // doubling vector (a tenth of the time of a 100k-declaration check).
        let lines = text.bytes().filter(|&b| b == b'\n').count();
        self.fabric.items.reserve(lines + 1);
        // Each top-level node is lowered as soon as it is parsed and then
        // dropped: the whole tree of a large file is never alive at once.
        let mut lower = Lower::new(self.schema, &mut self.fabric, &mut self.diagnostics);
        let rest = sovereign_syntax::parse_each(file, &text, |node| lower.top_level(&node));
        let imports = lower.into_imports();
        self.diagnostics.extend(rest.diagnostics);
        let added = self.sources.add(path.to_path_buf(), text);
        debug_assert_eq!(added, file);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for import in imports {
            self.import(&dir, &import.path, import.span);
        }
        self.stack.pop();
        file
    }

    fn import(&mut self, dir: &Path, relative: &str, span: Span) {
        let target = dir.join(relative);
        if self.host.is_dir(&target) {
            match self.host.kdl_files(&target) {
                Ok(files) if files.is_empty() => self.diagnostics.push(
                    Diagnostic::new(
                        codes::UNRESOLVED_IMPORT,
                        span,
                        format!("the folder `{}` has no .kdl files", target.display()),
                    )
                    .with_help("add spec files to it, or remove the import"),
                ),
                Ok(files) => {
                    for file in files {
                        self.import_file(&file, span);
                    }
                }
                Err(error) => self.diagnostics.push(
                    Diagnostic::new(
                        codes::UNRESOLVED_IMPORT,
                        span,
                        format!("cannot read the folder `{}`: {error}", target.display()),
                    )
                    .with_help("check the path and its permissions"),
                ),
            }
        } else {
            self.import_file(&target, span);
        }
    }

    fn import_file(&mut self, path: &Path, span: Span) {
        let canonical = self.host.canonical(path);
        if let Some(position) = self.stack.iter().position(|(p, _)| *p == canonical) {
            let mut d = Diagnostic::new(
                codes::IMPORT_CYCLE,
                span,
                format!("import cycle: `{}` is already being imported", path.display()),
            )
            .with_primary_label("closes the cycle");
            for (_, at) in &self.stack[position + 1..] {
                if let Some(at) = at {
                    d = d.with_label(*at, "imported here");
                }
            }
            self.diagnostics
                .push(d.with_help("remove one of the imports; a file may import another only once along a chain"));
            return;
        }
        if self.loaded.contains(&canonical) {
            return;
        }
        match self.host.read(path) {
            Ok(bytes) if bytes.len() > MAX_FILE_BYTES => self.diagnostics.push(
                Diagnostic::new(codes::UNRESOLVED_IMPORT, span, format!("`{}` is larger than 1 GiB", path.display()))
                    .with_help("split it into smaller files"),
            ),
            Ok(bytes) => {
                self.load_text(path, bytes, Some(span));
            }
            Err(error) => {
                let reason = if error.kind() == io::ErrorKind::NotFound {
                    "no such file or folder".to_owned()
                } else {
                    error.to_string()
                };
                self.diagnostics.push(
                    Diagnostic::new(
                        codes::UNRESOLVED_IMPORT,
                        span,
                        format!("cannot import `{}`: {reason}", path.display()),
                    )
                    .with_primary_label("not found")
                    .with_help("import paths are relative to the importing file; check the spelling"),
                );
            }
        }
    }
}

/// A file system with no files: every import is unresolved. For fuzzing,
/// benchmarks and single-buffer checks.
pub struct EmptyHost;

impl Host for EmptyHost {
    fn read(&self, _: &Path) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn is_dir(&self, _: &Path) -> bool {
        false
    }
    fn kdl_files(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}
