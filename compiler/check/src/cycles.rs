//! The dependency graph between top-level declarations, and its cycles.
//!
//! Every resolved reference is an edge from the declaration that holds it
//! to the declaration it names (`depends-on` included). A cycle is reported
//! once per strongly connected component, with every edge on its own span.

use std::collections::BTreeMap;
use std::sync::Arc;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use sovereign_diagnostics::{Diagnostic, Span, codes};

use sovereign_ir::{Fabric, ItemId, ValueKind};

/// One dependency: `from` needs `to`, because of the value at `span`.
#[derive(Clone, Debug)]
pub struct Dependency {
    pub from: ItemId,
    pub to: ItemId,
    pub span: Span,
    /// What the reference is (`uses`, `model`, `depends-on`…).
    pub via: Arc<str>,
}

/// All dependencies between top-level declarations, in item order.
#[must_use]
pub fn dependencies(fabric: &Fabric) -> Vec<Dependency> {
    let mut out = Vec::new();
    for (index, item) in fabric.items.iter().enumerate() {
        let target = |val: &sovereign_ir::Value| match &val.kind {
            ValueKind::Ref { target: Some(t), .. } | ValueKind::Secret { target: Some(t), .. } => Some(*t),
            _ => None,
        };
        let from = fabric.root_of(ItemId(index as u32));
        // An argument is named after its node (`uses "store"`): made once per item, only when needed.
        let mut via_node: Option<Arc<str>> = None;
        for val in &item.args {
            let Some(to) = target(val) else { continue };
            let via = via_node.get_or_insert_with(|| item.kind.rsplit('/').next().unwrap_or(&item.kind).into()).clone();
            out.push(Dependency { from, to: fabric.root_of(to), span: val.span, via });
        }
        for (key, val) in &item.props {
            let Some(to) = target(val) else { continue };
            out.push(Dependency { from, to: fabric.root_of(to), span: val.span, via: key.clone() });
        }
    }
    out
}

/// Reports every dependency cycle.
pub fn check_cycles(fabric: &Fabric, deps: &[Dependency], diagnostics: &mut Vec<Diagnostic>) {
    let mut graph: DiGraph<ItemId, usize> = DiGraph::new();
    let mut index: Vec<Option<NodeIndex>> = vec![None; fabric.items.len()];
    let mut node = |graph: &mut DiGraph<ItemId, usize>, id: ItemId| {
        *index[id.0 as usize].get_or_insert_with(|| graph.add_node(id))
    };
    for (i, dep) in deps.iter().enumerate() {
        let a = node(&mut graph, dep.from);
        let b = node(&mut graph, dep.to);
        graph.add_edge(a, b, i);
    }
    let mut components = tarjan_scc(&graph);
    for component in &mut components {
        component.sort_by_key(|n| graph[*n]);
    }
    components.sort_by_key(|c| graph[c[0]]);
    for component in components {
        let start = component[0];
        let is_cycle = component.len() > 1 || graph.find_edge(start, start).is_some();
        if !is_cycle {
            continue;
        }
        let path = shortest_cycle(&graph, &component, start);
        if path.is_empty() {
            continue;
        }
        let first = &deps[path[0]];
        let mut d = Diagnostic::new(
            codes::DEPENDENCY_CYCLE,
            first.span,
            format!(
                "dependency cycle: {}",
                path.iter()
                    .map(|&e| fabric.describe(deps[e].from))
                    .chain(std::iter::once(fabric.describe(first.from)))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        )
        .with_primary_label(format!(
            "{} needs {} (via `{}`)",
            fabric.describe(first.from),
            fabric.describe(first.to),
            first.via
        ));
        for &edge in &path[1..] {
            let dep = &deps[edge];
            d = d.with_label(
                dep.span,
                format!("{} needs {} (via `{}`)", fabric.describe(dep.from), fabric.describe(dep.to), dep.via),
            );
        }
        d = d.with_help("nothing in a cycle can be created first: remove one of these references or `depends-on`");
        diagnostics.push(d);
    }
}

/// A shortest cycle through `start` inside its strongly connected
/// `component`, as the weights of its edges in order; edges are taken in
/// weight order, so the cycle shown is deterministic. Shared by the
/// dependency check here and the resource graph of the analysis: one way to
/// turn a cycle into the path a diagnostic walks.
#[must_use]
pub fn shortest_cycle<N>(graph: &DiGraph<N, usize>, component: &[NodeIndex], start: NodeIndex) -> Vec<usize> {
    // Membership by index, not `component.contains`: a 14,000-node cycle
    // made that quadratic.
    let mut inside = vec![false; graph.node_count()];
    for n in component {
        inside[n.index()] = true;
    }
    let out_edges = |node: NodeIndex| {
        let mut out: Vec<(usize, NodeIndex)> =
            graph.edges(node).map(|e| (*e.weight(), petgraph::visit::EdgeRef::target(&e))).collect();
        out.sort();
        out
    };
    if let Some((w, _)) = out_edges(start).iter().find(|(_, t)| *t == start) {
        return vec![*w];
    }
    let mut previous: BTreeMap<NodeIndex, (NodeIndex, usize)> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for (weight, next) in out_edges(node) {
            if !inside[next.index()] {
                continue;
            }
            if next == start {
                let mut path = vec![weight];
                let mut at = node;
                while at != start {
                    let Some(&(prev, w)) = previous.get(&at) else { break };
                    path.push(w);
                    at = prev;
                }
                path.reverse();
                return path;
            }
            if let std::collections::btree_map::Entry::Vacant(entry) = previous.entry(next) {
                entry.insert((node, weight));
                queue.push_back(next);
            }
        }
    }
    Vec::new()
}
