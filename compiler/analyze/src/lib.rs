//! The analysis of a checked fabric: where every workload runs and whether
//! it fits, which data flows where and whether it may, and in what order
//! the implied resources must exist.
//!
//! ```text
//! typed Spec ─view─▶ sites, hardware ─capacity (memory, placement)─▶ placed serves, MIG layouts
//!            ─workloads─▶ the sites of every workload ─devices─▶ edge model fits
//!            ─flows─▶ allowed data flows ─graph─▶ resource DAG, waves
//! ```
//!
//! Architecture Invariant: pure and deterministic, like the front end: no
//! IO, the same fabric gives the same analysis. It runs only on a fabric
//! that checked without errors, and reads it through the typed model
//! (`sovereign_model::Spec`), never by kind or property name; its results
//! are keyed by the model's typed ids (`SiteId`, `ServeId`, …).

pub mod capacity;
pub mod devices;
pub mod flows;
pub mod free;
pub mod graph;
pub mod memory;
pub mod placement;
pub mod view;
pub mod workloads;

use std::path::Path;

use sovereign_check::{Checked, Host, Schema, Stdlib};
use sovereign_diagnostics::{Diagnostic, SourceMap};
use sovereign_ir::Fabric;
use sovereign_model::Spec;

/// Everything the analysis decided.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub sites: view::Sites,
    /// One per `serve` that could be sized, in spec order, with its placements.
    pub serves: Vec<capacity::PlacedServe>,
    /// Every accelerator and what holds it (the per-GPU MIG layouts).
    pub inventory: placement::Inventory,
    /// Where every workload runs.
    pub workload_sites: workloads::WorkloadSites,
    pub devices: Vec<devices::DeviceFit>,
    pub flows: flows::Flows,
    pub graph: graph::ResourceGraph,
    pub diagnostics: Vec<Diagnostic>,
}

/// Analyzes a fabric that checked without errors. It reads the typed model
/// only, so a command that needs no IR can release it first (`build`).
#[must_use]
pub fn analyze(spec: &Spec, schema: &Schema) -> Analysis {
    let catalog = &schema.catalog;
    let mut diagnostics = Vec::new();
    let sites = view::Sites::read(spec, catalog);
    let (serves, inventory) = capacity::place_serves(spec, catalog, &sites, &mut diagnostics);
    let stores = capacity::vectorstore_sites(spec, &sites, &serves);
    let workload_sites = workloads::WorkloadSites::new(spec, spec.items(), &serves, &stores);
    let devices = devices::check(spec, catalog, &sites, &mut diagnostics);
    // Flows and the graph only read what came before: on two cores they run
    // side by side. Their diagnostics are merged and sorted, so the output
    // does not depend on which finishes first.
    let (flows, mut flow_diagnostics, graph, mut graph_diagnostics) = std::thread::scope(|scope| {
        let graph = scope.spawn(|| {
            let mut diagnostics = Vec::new();
            let graph = graph::build(spec, &sites, &serves, &inventory, &workload_sites, &mut diagnostics);
            (graph, diagnostics)
        });
        let mut flow_diagnostics = Vec::new();
        let flows = flows::analyze(spec, &sites, &workload_sites, &mut flow_diagnostics);
        let (graph, graph_diagnostics) = match graph.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (flows, flow_diagnostics, graph, graph_diagnostics)
    });
    diagnostics.append(&mut flow_diagnostics);
    diagnostics.append(&mut graph_diagnostics);
    sovereign_diagnostics::sort(&mut diagnostics);
    Analysis { sites, serves, inventory, workload_sites, devices, flows, graph, diagnostics }
}

/// One compilation of a spec: everything the CLI, the editor and the
/// fuzzer show about it, made the same way for all of them.
#[derive(Debug)]
pub struct Compilation {
    /// The stdlib's files, then the spec's.
    pub sources: SourceMap,
    /// The untyped IR; empty when compiled with [`Keep::ModelOnly`].
    pub fabric: Fabric,
    /// The typed model, when the spec resolved without errors.
    pub spec: Option<Spec>,
    /// The check's and, when it ran, the analysis's, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// Present when the check found no errors.
    pub analysis: Option<Analysis>,
    /// The catalog it was checked against (emitters read its chart versions).
    pub catalog: sovereign_catalog::Catalog,
}

impl Compilation {
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// What `sovereign check` runs, for every front end (CLI, editor, fuzzer):
/// checks the spec rooted at `root` against `stdlib` and, when the check
/// finds no errors, analyzes it.
#[must_use]
pub fn compile(stdlib: &Stdlib, root: &Path, bytes: Vec<u8>, host: &dyn Host) -> Compilation {
    compile_keeping(stdlib, root, bytes, host, Keep::Ir)
}

/// What a compilation keeps of the untyped IR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// All of it (the editor, `check`, `plan`'s spans of origin).
    Ir,
    /// None once the typed model is read: the analysis runs without it, so
    /// the peak memory is the model and the analysis, not the IR beside
    /// them (`build`, whose emitters read the model only).
    ModelOnly,
}

/// [`compile`], keeping the IR or releasing it before the analysis.
#[must_use]
pub fn compile_keeping(stdlib: &Stdlib, root: &Path, bytes: Vec<u8>, host: &dyn Host, keep: Keep) -> Compilation {
    let Checked { sources, mut fabric, spec, mut diagnostics } = sovereign_check::check(root, bytes, host, stdlib);
    if keep == Keep::ModelOnly {
        drop(std::mem::take(&mut fabric));
    }
    let analysis = match &spec {
        Some(spec) if !diagnostics.iter().any(Diagnostic::is_error) => {
            let _analyze = tracing::info_span!("analyze", sovereign.phase = "analyze").entered();
            let analysis = analyze(spec, &stdlib.schema);
            diagnostics.extend(analysis.diagnostics.iter().cloned());
            sovereign_diagnostics::sort(&mut diagnostics);
            Some(analysis)
        }
        _ => None,
    };
    let catalog = stdlib.schema.catalog.clone();
    Compilation { sources, fabric, spec, diagnostics, analysis, catalog }
}
