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
    let cyclic = may_be_cyclic(fabric.items.len(), deps);
    if !cyclic.contains(&true) {
        return;
    }
    // The graph of what is left: every cycle is in it whole, and each edge
    // keeps its index into `deps` as its weight, so the components and the
    // cycles shown are those of the whole graph.
    let mut graph: DiGraph<ItemId, usize> = DiGraph::new();
    let mut index: Vec<Option<NodeIndex>> = vec![None; fabric.items.len()];
    let mut node = |graph: &mut DiGraph<ItemId, usize>, id: ItemId| {
        *index[id.0 as usize].get_or_insert_with(|| graph.add_node(id))
    };
    for (i, dep) in deps.iter().enumerate().filter(|(i, _)| cyclic[*i]) {
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

/// Which dependencies may lie on a cycle: those left once what depends on
/// nothing left, and then what nothing left depends on, is peeled away, one
/// declaration at a time. An edge on a cycle is never peeled (both its ends
/// keep an edge in and an edge out of the cycle), so every cycle is left
/// whole; a fabric without one is left with nothing, and the check builds
/// no graph for it (which was the front end's peak of memory).
fn may_be_cyclic(items: usize, deps: &[Dependency]) -> Vec<bool> {
    // The edges grouped by one end, as offsets into one array (u32: the
    // item and edge counts of a spec are far below it).
    let grouped = |end: &dyn Fn(&Dependency) -> usize| -> (Vec<u32>, Vec<u32>) {
        let mut start = vec![0u32; items + 1];
        for dep in deps {
            start[end(dep) + 1] += 1;
        }
        for i in 0..items {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut edges = vec![0u32; deps.len()];
        for (i, dep) in deps.iter().enumerate() {
            let at = &mut next[end(dep)];
            edges[*at as usize] = i as u32;
            *at += 1;
        }
        (start, edges)
    };
    let (into_start, into) = grouped(&|dep| dep.to.0 as usize);
    let (from_start, from) = grouped(&|dep| dep.from.0 as usize);
    let mut left = vec![true; deps.len()];
    let (mut outgoing, mut incoming) = (vec![0u32; items], vec![0u32; items]);
    for dep in deps {
        outgoing[dep.from.0 as usize] += 1;
        incoming[dep.to.0 as usize] += 1;
    }
    // What depends on nothing left goes, with the edges into it; then what
    // nothing left depends on, with the edges out of it.
    let into = Peel { grouped: &into_start, edges: &into, far: |dep: &Dependency| dep.from.0 as usize };
    into.run(deps, &mut left, &mut outgoing, &mut incoming);
    let from = Peel { grouped: &from_start, edges: &from, far: |dep: &Dependency| dep.to.0 as usize };
    from.run(deps, &mut left, &mut incoming, &mut outgoing);
    left
}

/// One direction of [`may_be_cyclic`]'s peeling: the edges at each
/// declaration (as offsets into `edges`), and the end of an edge that is
/// not that declaration.
struct Peel<'a, F> {
    grouped: &'a [u32],
    edges: &'a [u32],
    far: F,
}

impl<F: Fn(&Dependency) -> usize> Peel<'_, F> {
    /// Removes every declaration whose `empty` count is 0 and the edges at
    /// it (`near` counts them at the declaration), until none is left to
    /// remove.
    fn run(&self, deps: &[Dependency], left: &mut [bool], empty: &mut [u32], near: &mut [u32]) {
        let mut peel: Vec<usize> = (0..empty.len()).filter(|&n| empty[n] == 0 && near[n] > 0).collect();
        while let Some(node) = peel.pop() {
            for &edge in &self.edges[self.grouped[node] as usize..self.grouped[node + 1] as usize] {
                let edge = edge as usize;
                if std::mem::replace(&mut left[edge], false) {
                    let far = (self.far)(&deps[edge]);
                    near[node] -= 1;
                    empty[far] -= 1;
                    if empty[far] == 0 {
                        peel.push(far);
                    }
                }
            }
        }
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
