//! The analysis of a checked fabric: where every workload runs and whether
//! it fits, which data flows where and whether it may, and in what order
//! the implied resources must exist.
//!
//! ```text
//! Fabric IR ─view─▶ sites, hardware ─capacity (memory, placement)─▶ serve plans, MIG layouts
//!           ─devices─▶ edge model fits ─flows─▶ allowed data flows ─graph─▶ resource DAG, waves
//! ```
//!
//! Architecture Invariant: pure and deterministic, like the front end: no
//! IO, the same fabric gives the same analysis. It runs only on a fabric
//! that checked without errors (references are resolved).

pub mod capacity;
pub mod devices;
pub mod flows;
pub mod free;
pub mod graph;
pub mod memory;
pub mod placement;
pub mod view;

use std::path::Path;

use sovereign_check::{Checked, Host, Schema};
use sovereign_diagnostics::{Diagnostic, SourceMap};
use sovereign_ir::Fabric;

/// Everything the analysis decided.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub sites: view::Sites,
    /// One per `serve`, in spec order, with its placements.
    pub serves: Vec<capacity::ServePlan>,
    /// Every accelerator and what holds it (the per-GPU MIG layouts).
    pub inventory: placement::Inventory,
    pub devices: Vec<devices::DeviceFit>,
    pub flows: flows::Flows,
    pub graph: graph::ResourceGraph,
    pub diagnostics: Vec<Diagnostic>,
}

/// Analyzes a fabric that checked without errors.
#[must_use]
pub fn analyze(fabric: &Fabric, schema: &Schema) -> Analysis {
    let catalog = &schema.catalog;
    let mut diagnostics = Vec::new();
    let sites = view::Sites::read(fabric, catalog);
    let (serves, inventory) = capacity::plan(fabric, catalog, &sites, &mut diagnostics);
    let stores = capacity::vectorstore_sites(fabric, &sites, &serves);
    let devices = devices::check(fabric, catalog, &sites, &mut diagnostics);
    // Flows and the graph only read what came before: on two cores they run
    // side by side. Their diagnostics are merged and sorted, so the output
    // does not depend on which finishes first.
    let (flows, mut flow_diagnostics, graph, mut graph_diagnostics) = std::thread::scope(|scope| {
        let graph = scope.spawn(|| {
            let mut diagnostics = Vec::new();
            let graph = graph::build(fabric, &sites, &serves, &inventory, &stores, &mut diagnostics);
            (graph, diagnostics)
        });
        let mut flow_diagnostics = Vec::new();
        let flows = flows::analyze(fabric, &sites, &serves, &stores, &mut flow_diagnostics);
        let (graph, graph_diagnostics) = match graph.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (flows, flow_diagnostics, graph, graph_diagnostics)
    });
    diagnostics.append(&mut flow_diagnostics);
    diagnostics.append(&mut graph_diagnostics);
    sovereign_diagnostics::sort(&mut diagnostics);
    Analysis { sites, serves, inventory, devices, flows, graph, diagnostics }
}

/// What `sovereign check` runs, for every front end (CLI, editor, fuzzer):
/// checks the spec rooted at `root` and, when the check finds no errors,
/// analyzes it. The checked diagnostics then include the analysis's, sorted.
#[must_use]
pub fn check_and_analyze(
    root: &Path,
    bytes: Vec<u8>,
    host: &dyn Host,
    schema: &Schema,
    sources: SourceMap,
) -> (Checked, Option<Analysis>) {
    let mut checked = sovereign_check::check(root, bytes, host, schema, sources);
    if checked.has_errors() {
        return (checked, None);
    }
    // The reference graph has done its work (cycles); the analysis builds its own.
    checked.dependencies = Vec::new();
    let analysis = analyze(&checked.fabric, schema);
    checked.diagnostics.extend(analysis.diagnostics.iter().cloned());
    sovereign_diagnostics::sort(&mut checked.diagnostics);
    (checked, Some(analysis))
}
