//! The resource graph: every resource the fabric implies (site clusters,
//! MIG layouts, Temporal clusters and namespaces, collectors, vector stores,
//! servers, evals, edge bundles), with implied and explicit (`depends-on`)
//! edges; its cycles (`SOV4006`) and its waves.
//!
//! Waves are topological layers by longest path: a resource's wave is one
//! more than the latest wave among what it needs, so nothing in a wave
//! depends on anything in the same or a later wave, and there are exactly
//! as many waves as the longest chain has resources (the fewest possible).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use sovereign_check::ir::{Fabric, ItemId};
use sovereign_diagnostics::{Diagnostic, Span, codes};

use crate::capacity::ServePlan;
use crate::placement::{Devices, Inventory};
use crate::view::{Sites, children, name_of, name_span, ref_prop, ref_target, str_prop};

/// What a resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Cluster,
    MigLayout,
    TemporalCluster,
    TemporalNamespace,
    Collector,
    VectorStore,
    Server,
    Eval,
    EdgeBundle,
}

impl ResourceKind {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            ResourceKind::Cluster => "cluster",
            ResourceKind::MigLayout => "mig-layout",
            ResourceKind::TemporalCluster => "temporal",
            ResourceKind::TemporalNamespace => "temporal-namespace",
            ResourceKind::Collector => "collector",
            ResourceKind::VectorStore => "vectorstore",
            ResourceKind::Server => "serve",
            ResourceKind::Eval => "eval",
            ResourceKind::EdgeBundle => "edge-bundle",
        }
    }
}

/// One resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Unique and stable: `cluster/fra`, `mig-layout/fra/gpu-01`, `serve/chat`.
    pub id: String,
    pub kind: ResourceKind,
    /// The site it runs on, when it runs on one.
    pub site: Option<usize>,
    /// The declaration it comes from.
    pub item: ItemId,
}

/// `from` needs `to` to exist first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// Why: `placed on`, `uses`, `depends-on`.
    pub why: String,
    pub span: Span,
}

/// The resource DAG and its waves.
#[derive(Clone, Debug, Default)]
pub struct ResourceGraph {
    pub resources: Vec<Resource>,
    pub edges: Vec<Edge>,
    /// Resource indices per wave, each sorted by id; empty when there is a cycle.
    pub waves: Vec<Vec<usize>>,
}

struct Builder<'a> {
    fabric: &'a Fabric,
    graph: ResourceGraph,
    index: BTreeMap<String, usize>,
    by_item: BTreeMap<ItemId, Vec<usize>>,
    edge_set: BTreeSet<(usize, usize)>,
}

impl Builder<'_> {
    fn add(&mut self, id: String, kind: ResourceKind, site: Option<usize>, item: ItemId) -> usize {
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        let i = self.graph.resources.len();
        self.index.insert(id.clone(), i);
        self.graph.resources.push(Resource { id, kind, site, item });
        self.by_item.entry(item).or_default().push(i);
        i
    }

    fn edge(&mut self, from: usize, to: usize, why: &str, span: Span) {
        if from != to && self.edge_set.insert((from, to)) {
            self.graph.edges.push(Edge { from, to, why: why.to_owned(), span });
        }
    }

    fn cluster(&self, sites: &Sites, site: usize) -> Option<usize> {
        self.index.get(&format!("cluster/{}", sites.sites[site].name)).copied()
    }
}

/// Builds the graph, reports its cycles and computes its waves.
pub fn build(
    fabric: &Fabric,
    sites: &Sites,
    serves: &[ServePlan],
    inventory: &Inventory,
    stores: &BTreeMap<ItemId, usize>,
    diagnostics: &mut Vec<Diagnostic>,
) -> ResourceGraph {
    let mut b = Builder {
        fabric,
        graph: ResourceGraph::default(),
        index: BTreeMap::new(),
        by_item: BTreeMap::new(),
        edge_set: BTreeSet::new(),
    };
    for (i, site) in sites.sites.iter().enumerate() {
        if site.has_cluster {
            b.add(format!("cluster/{}", site.name), ResourceKind::Cluster, Some(i), site.id);
        }
    }
    // MIG layouts: one per node with MIG instances.
    for gpu in inventory.gpus.iter().filter(|g| !g.instances.is_empty()) {
        let id = format!("mig-layout/{}/{}", sites.sites[gpu.site].name, gpu.node);
        let layout = b.add(id, ResourceKind::MigLayout, Some(gpu.site), gpu.node_item);
        if let Some(cluster) = b.cluster(sites, gpu.site) {
            b.edge(layout, cluster, "configured on", name_span(fabric.item(gpu.node_item)));
        }
    }
    for (id, item) in fabric.of_kind("temporal") {
        let site = ref_prop(item, "site").and_then(|s| sites.by_id(s));
        let temporal = b.add(format!("temporal/{}", name_of(fabric, id)), ResourceKind::TemporalCluster, site, id);
        if let Some(cluster) = site.and_then(|s| b.cluster(sites, s)) {
            b.edge(temporal, cluster, "runs on", item.prop("site").map_or(name_span(item), |v| v.span));
        }
        for (ns_id, ns) in children(fabric, item, "namespace") {
            let namespace = b.add(
                format!("temporal-namespace/{}", name_of(fabric, ns_id)),
                ResourceKind::TemporalNamespace,
                site,
                ns_id,
            );
            b.edge(namespace, temporal, "registered in", name_span(ns));
        }
    }
    for (id, item) in fabric.of_kind("observe") {
        for (i, site) in sites.sites.iter().enumerate().filter(|(_, s)| s.has_cluster) {
            let collector =
                b.add(format!("collector/{}/{}", name_of(fabric, id), site.name), ResourceKind::Collector, Some(i), id);
            if let Some(cluster) = b.cluster(sites, i) {
                b.edge(collector, cluster, "runs on", name_span(item));
            }
        }
    }
    for (id, item) in fabric.of_kind("vectorstore") {
        let site = stores.get(&id).copied();
        let store = b.add(format!("vectorstore/{}", name_of(fabric, id)), ResourceKind::VectorStore, site, id);
        if let Some(cluster) = site.and_then(|s| b.cluster(sites, s)) {
            b.edge(store, cluster, "runs on", name_span(item));
        }
    }
    for plan in serves {
        let item = fabric.item(plan.serve);
        let first_site = plan.placements.first().map(|p| p.site);
        let server = b.add(format!("serve/{}", plan.name), ResourceKind::Server, first_site, plan.serve);
        for p in &plan.placements {
            if let Some(cluster) = b.cluster(sites, p.site) {
                b.edge(server, cluster, "placed on", name_span(item));
            }
            if matches!(p.devices, Devices::Mig { .. }) {
                let layout = format!("mig-layout/{}/{}", sites.sites[p.site].name, p.node);
                if let Some(&l) = b.index.get(&layout) {
                    b.edge(server, l, "runs on a MIG slice of", name_span(item));
                }
            }
        }
        for (_, uses) in children(fabric, item, "uses") {
            for val in &uses.args {
                if let Some(store) = ref_target(val).and_then(|t| b.by_item.get(&t)).and_then(|r| r.first().copied()) {
                    b.edge(server, store, "uses", val.span);
                }
            }
        }
    }
    for (id, item) in fabric.of_kind("eval") {
        let eval = b.add(format!("eval/{}", name_of(fabric, id)), ResourceKind::Eval, None, id);
        if let (Some(target), Some(val)) = (ref_prop(item, "target"), item.prop("target"))
            && let Some(server) = b.by_item.get(&target).and_then(|r| r.first().copied())
        {
            b.edge(eval, server, "evaluates", val.span);
        }
        if let Some((_, runs_on)) = children(fabric, item, "runs-on").next()
            && let Some(temporal) = runs_on.args.first().and_then(ref_target)
        {
            let namespace = str_prop(runs_on, "namespace")
                .map(|ns| format!("temporal-namespace/{}/{ns}", name_of(fabric, temporal)));
            let target = namespace
                .and_then(|ns| b.index.get(&ns).copied())
                .or_else(|| b.by_item.get(&temporal).and_then(|r| r.first().copied()));
            if let Some(target) = target {
                let site = b.graph.resources[target].site;
                b.graph.resources[eval].site = site;
                b.edge(eval, target, "runs in", runs_on.args[0].span);
            }
        }
    }
    for (id, item) in fabric.of_kind("edge") {
        let site = ref_prop(item, "fleet").and_then(|f| sites.fleet(f)).map(|(s, _)| s);
        let bundle = b.add(format!("edge-bundle/{}", name_of(fabric, id)), ResourceKind::EdgeBundle, site, id);
        for (_, fallback) in children(fabric, item, "fallback") {
            if let Some(val) = fallback.args.first()
                && let Some(server) = ref_target(val).and_then(|t| b.by_item.get(&t)).and_then(|r| r.first().copied())
            {
                b.edge(bundle, server, "falls back to", val.span);
            }
        }
    }
    // Explicit depends-on: every resource of the declaration needs every resource of the target.
    for (index, item) in fabric.items.iter().enumerate() {
        if !item.kind.ends_with("/depends-on") {
            continue;
        }
        let Some(owner) = item.parent else { continue };
        let owner = fabric.root_of(owner);
        let froms = b.by_item.get(&owner).cloned().unwrap_or_default();
        for val in &fabric.items[index].args {
            let Some(target) = ref_target(val) else { continue };
            let tos = b.resources_of(target);
            for &from in &froms {
                for &to in &tos {
                    b.edge(from, to, "depends-on", val.span);
                }
            }
        }
    }
    let mut graph = b.graph;
    graph.waves = waves(fabric, &graph, diagnostics);
    graph
}

impl Builder<'_> {
    /// The resources a declaration stands for (a site: its cluster; a temporal: the cluster and namespaces).
    fn resources_of(&self, item: ItemId) -> Vec<usize> {
        let mut out: Vec<usize> = self.by_item.get(&item).cloned().unwrap_or_default();
        for (child, _) in self.fabric.item(item).children.iter().map(|&c| (c, ())) {
            out.extend(self.by_item.get(&child).cloned().unwrap_or_default());
        }
        out
    }
}

/// Layers by longest path, or nothing (and `SOV4006`) when there is a cycle.
fn waves(fabric: &Fabric, graph: &ResourceGraph, diagnostics: &mut Vec<Diagnostic>) -> Vec<Vec<usize>> {
    let mut g: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..graph.resources.len()).map(|i| g.add_node(i)).collect();
    for (i, e) in graph.edges.iter().enumerate() {
        g.add_edge(nodes[e.from], nodes[e.to], i);
    }
    let id = |n: &NodeIndex| graph.resources[g[*n]].id.as_str();
    let mut cycles: Vec<Vec<NodeIndex>> = tarjan_scc(&g).into_iter().filter(|c| c.len() > 1).collect();
    if !cycles.is_empty() {
        // Sorted by resource id, so the report does not depend on traversal order.
        cycles.iter_mut().for_each(|c| c.sort_by(|a, b| id(a).cmp(id(b))));
        cycles.sort_by(|a, b| id(&a[0]).cmp(id(&b[0])));
        for component in &cycles {
            diagnostics.push(cycle_diagnostic(fabric, graph, &g, component));
        }
        return Vec::new();
    }
    // tarjan_scc returns components in reverse topological order: with
    // edges from dependent to dependency, dependencies come first.
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); graph.resources.len()];
    for e in &graph.edges {
        needs[e.from].push(e.to);
    }
    let mut wave = vec![0usize; graph.resources.len()];
    for component in components_in_order(&g) {
        let r = g[component];
        wave[r] = needs[r].iter().map(|&to| wave[to] + 1).max().unwrap_or(0);
    }
    let count = wave.iter().max().map_or(0, |m| m + 1);
    let mut waves: Vec<Vec<usize>> = vec![Vec::new(); if graph.resources.is_empty() { 0 } else { count }];
    for (r, &w) in wave.iter().enumerate() {
        waves[w].push(r);
    }
    for w in &mut waves {
        w.sort_unstable_by(|a, b| graph.resources[*a].id.cmp(&graph.resources[*b].id));
    }
    waves
}

/// Nodes with every dependency before its dependents (the graph is acyclic here).
fn components_in_order(g: &DiGraph<usize, usize>) -> Vec<NodeIndex> {
    tarjan_scc(g).into_iter().map(|c| c[0]).collect()
}

fn cycle_diagnostic(
    fabric: &Fabric,
    graph: &ResourceGraph,
    g: &DiGraph<usize, usize>,
    component: &[NodeIndex],
) -> Diagnostic {
    let members: Vec<usize> = component.iter().map(|n| g[*n]).collect();
    // Walk the cycle from the first member along edges inside the component.
    let start = members[0];
    let mut path: Vec<usize> = Vec::new();
    let mut at = start;
    let mut visited = vec![at];
    while let Some(e) = graph
        .edges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.from == at && members.contains(&e.to))
        .min_by_key(|(_, e)| (e.to != start, graph.resources[e.to].id.clone()))
        .map(|(i, _)| i)
    {
        path.push(e);
        at = graph.edges[e].to;
        if at == start || visited.contains(&at) {
            break;
        }
        visited.push(at);
    }
    let names: Vec<&str> = path.iter().map(|&e| graph.resources[graph.edges[e].from].id.as_str()).collect();
    let first = &graph.edges[path[0]];
    let mut d = Diagnostic::new(
        codes::RESOURCE_CYCLE,
        first.span,
        format!("resource cycle: {} → {}", names.join(" → "), graph.resources[start].id),
    )
    .with_primary_label(format!("{} {} {}", graph.resources[first.from].id, first.why, graph.resources[first.to].id));
    for &e in &path[1..] {
        let edge = &graph.edges[e];
        d = d.with_label(
            edge.span,
            format!("{} {} {}", graph.resources[edge.from].id, edge.why, graph.resources[edge.to].id),
        );
    }
    let _ = fabric;
    d.with_help("nothing in a cycle can be created first: remove a `depends-on`, or move a workload off the site whose cluster it would have to precede")
}
