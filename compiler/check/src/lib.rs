//! The middle of the compiler: from KDL files to a checked Fabric IR.
//!
//! ```text
//! files ─parse─▶ KDL trees ─lower (schema, defaults)─▶ IR items ─resolve─▶ names and references
//!       ─model─▶ typed Spec ─domain, cycles─▶ Checked { sources, fabric, spec, diagnostics }
//! ```
//!
//! Architecture Invariant: pure. No file, network, clock or environment
//! access: files come through [`Host`]. The same input gives the same
//! output, with diagnostics in a stable order.

pub mod cycles;
pub mod domain;
mod load;
pub mod lower;
pub mod reference;
pub mod resolve;
pub mod schema;

use std::path::{Path, PathBuf};

use sovereign_ir as ir;

use sovereign_diagnostics::{Diagnostic, FileId, SourceMap, Span};

pub use load::{EmptyHost, FileKind, Host, MAX_FILE_BYTES, MAX_IMPORT_DEPTH, MemoryHost};
pub use schema::Schema;

/// The stdlib a compilation reads: the schema (with its catalogs) and the
/// files it was read from, which diagnostics about the stdlib point into.
/// Read once per process and shared by every compilation (the CLI, each
/// LSP check, each fuzz input).
#[derive(Clone, Debug)]
pub struct Stdlib {
    pub schema: Schema,
    /// Only the stdlib's files; a compilation adds the spec's after them.
    pub sources: SourceMap,
}

impl Stdlib {
    /// The stdlib embedded in the binary, and what is wrong with it (nothing, as tests keep it).
    #[must_use]
    pub fn embedded() -> (Stdlib, Vec<Diagnostic>) {
        let mut sources = SourceMap::new();
        let (schema, diagnostics) = embedded_schema(&mut sources);
        (Stdlib { schema, sources }, diagnostics)
    }

    /// A stdlib from files already read (`--stdlib DIR`): schema files and
    /// catalog files, each as (path, text).
    #[must_use]
    pub fn from_files(schema: Vec<(PathBuf, String)>, catalog: Vec<(PathBuf, String)>) -> (Stdlib, Vec<Diagnostic>) {
        let mut sources = SourceMap::new();
        let schema_ids: Vec<FileId> = schema.into_iter().map(|(path, text)| sources.add_stdlib(path, text)).collect();
        let catalog_ids: Vec<FileId> = catalog.into_iter().map(|(path, text)| sources.add_stdlib(path, text)).collect();
        let files = |ids: &[FileId]| -> Vec<(FileId, &str)> { ids.iter().map(|&id| (id, sources.text(id))).collect() };
        let (schema, diagnostics) = Schema::load(&files(&schema_ids), &files(&catalog_ids));
        (Stdlib { schema, sources }, diagnostics)
    }
}

/// The result of checking a spec.
#[derive(Debug)]
pub struct Checked {
    /// Every file read: the stdlib's first, then the spec's.
    pub sources: SourceMap,
    pub fabric: ir::Fabric,
    /// The typed model, when the spec resolved without errors.
    pub spec: Option<sovereign_model::Spec>,
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads the embedded stdlib into `sources` and reads the schema from it.
#[must_use]
fn embedded_schema(sources: &mut SourceMap) -> (Schema, Vec<Diagnostic>) {
    let files = |list: &[sovereign_stdlib::StdlibFile], sources: &mut SourceMap| -> Vec<(FileId, &'static str)> {
        list.iter()
            .map(|f| (sources.add_stdlib(Path::new("<stdlib>").join(f.path), f.text.to_owned()), f.text))
            .collect()
    };
    let schema_files = files(sovereign_stdlib::SCHEMA, sources);
    let catalog_files = files(sovereign_stdlib::CATALOG, sources);
    Schema::load(&schema_files, &catalog_files)
}

/// Checks the spec whose root file is `root` (already read as `bytes`)
/// against `stdlib`.
#[must_use]
pub fn check(root: &Path, bytes: Vec<u8>, host: &dyn Host, stdlib: &Stdlib) -> Checked {
    let schema = &stdlib.schema;
    let _check = tracing::info_span!("check", sovereign.phase = "check").entered();
    let mut loader = load::Loader::new(host, schema, stdlib.sources.clone());
    let root_file = {
        let parse = tracing::info_span!("parse", sovereign.phase = "parse", sovereign.files = tracing::field::Empty);
        let _parse = parse.enter();
        let root_file = loader.load_root(root, bytes);
        // As i64: the OpenTelemetry bridge sends u64s as text.
        parse.record("sovereign.files", i64::try_from(loader.sources.spec_files().count()).unwrap_or(i64::MAX));
        root_file
    };
    let mut diagnostics = std::mem::take(&mut loader.diagnostics);
    let mut fabric = std::mem::take(&mut loader.fabric);
    let secret_names = std::mem::take(&mut loader.secret_names);
    resolve::resolve(&mut fabric, &secret_names, Span::new(root_file, 0, 0), &mut diagnostics);
    drop(secret_names);
    let resolved = !diagnostics.iter().any(Diagnostic::is_error);
    // The dependency graph first, then the typed model (and the domain
    // checks on it), one after the other on this thread: side by side they
    // saved a few milliseconds and held both at once, on two allocator
    // heaps, at the front end's peak of memory. The diagnostics are sorted
    // after.
    let dependencies = cycles::dependencies(&fabric);
    cycles::check_cycles(&fabric, &dependencies, &mut diagnostics);
    drop(dependencies);
    let (spec, domain_diagnostics) = if resolved {
        match sovereign_model::read(&fabric) {
            Ok(spec) => {
                let mut found = Vec::new();
                domain::check(&spec, &schema.catalog, &mut found);
                (Some(spec), found)
            }
            Err(problems) => (None, problems),
        }
    } else {
        (None, Vec::new())
    };
    diagnostics.extend(domain_diagnostics);
    sovereign_diagnostics::sort(&mut diagnostics);
    Checked { sources: loader.sources, fabric, spec, diagnostics }
}
