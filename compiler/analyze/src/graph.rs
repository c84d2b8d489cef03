//! The resource graph: every resource the fabric implies (site clusters,
//! MIG layouts, Temporal clusters and namespaces, collectors, vector stores,
//! servers, evals, edge bundles), with implied and explicit (`depends-on`)
//! edges; its cycles (`SOV4006`) and its waves.
//!
//! Waves are topological layers by longest path: a resource's wave is one
//! more than the latest wave among what it needs, so nothing in a wave
//! depends on anything in the same or a later wave, and there are exactly
//! as many waves as the longest chain has resources (the fewest possible).

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use sovereign_diagnostics::{Diagnostic, Span, codes};
use sovereign_ir::{Fabric, ItemId};

use crate::capacity::ServePlan;
use crate::placement::{Devices, Inventory};
use crate::view::{Sites, children, name_of, name_span, ref_prop, ref_target};

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

/// A resource's id, unique and stable: `cluster/fra`, `mig-layout/fra/gpu-01`,
/// `serve/chat`. Its parts are shared with the IR; the text is made only
/// for output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceId {
    pub kind: ResourceKind,
    pub name: Arc<str>,
    pub qualifier: Option<Arc<str>>,
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.word(), self.name)?;
        if let Some(q) = &self.qualifier {
            write!(f, "/{q}")?;
        }
        Ok(())
    }
}

/// One resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub id: ResourceId,
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
    pub why: &'static str,
    pub span: Span,
}

/// The resource DAG and its waves.
#[derive(Clone, Debug, Default)]
pub struct ResourceGraph {
    pub resources: Vec<Resource>,
    pub edges: Vec<Edge>,
    /// Resource indices per wave, each in creation order (spec order, which is
    /// deterministic); empty when there is a cycle.
    pub waves: Vec<Vec<usize>>,
}

struct Builder<'a> {
    fabric: &'a Fabric,
    graph: ResourceGraph,
    /// The first resource of each declaration, indexed by item (dense: no map
    /// lookups on the hot path); `u32::MAX` when it has none.
    first: Vec<u32>,
    /// The further resources of declarations with several (an `observe`: one collector per site).
    more: HashMap<ItemId, Vec<usize>>,
    /// The cluster of each site.
    clusters: Vec<Option<usize>>,
    /// The MIG layout of each node item.
    layouts: HashMap<ItemId, usize>,
    edge_set: HashSet<(usize, usize)>,
}

impl Builder<'_> {
    fn add(
        &mut self,
        kind: ResourceKind,
        name: Arc<str>,
        qualifier: Option<Arc<str>>,
        site: Option<usize>,
        item: ItemId,
    ) -> usize {
        let i = self.graph.resources.len();
        self.graph.resources.push(Resource { id: ResourceId { kind, name, qualifier }, kind, site, item });
        let first = &mut self.first[item.0 as usize];
        if *first == u32::MAX {
            *first = u32::try_from(i).unwrap_or(u32::MAX);
        } else {
            self.more.entry(item).or_default().push(i);
        }
        i
    }

    fn edge(&mut self, from: usize, to: usize, why: &'static str, span: Span) {
        if from != to && self.edge_set.insert((from, to)) {
            self.graph.edges.push(Edge { from, to, why, span });
        }
    }

    fn cluster(&self, site: usize) -> Option<usize> {
        self.clusters.get(site).copied().flatten()
    }

    /// The first resource of a declaration.
    fn primary(&self, item: ItemId) -> Option<usize> {
        Some(self.first[item.0 as usize]).filter(|&r| r != u32::MAX).map(|r| r as usize)
    }

    /// The resources a declaration stands for (a site: its cluster; a temporal: the cluster and namespaces).
    fn resources_of(&self, item: ItemId) -> Vec<usize> {
        let all = |id: ItemId| self.primary(id).into_iter().chain(self.more.get(&id).into_iter().flatten().copied());
        let mut out: Vec<usize> = all(item).collect();
        for &child in &self.fabric.item(item).children {
            out.extend(all(child));
        }
        out
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
        first: vec![u32::MAX; fabric.items.len()],
        more: HashMap::new(),
        clusters: vec![None; sites.sites.len()],
        layouts: HashMap::new(),
        edge_set: HashSet::new(),
    };
    for (i, site) in sites.sites.iter().enumerate() {
        if site.has_cluster {
            b.clusters[i] = Some(b.add(ResourceKind::Cluster, site.name.clone(), None, Some(i), site.id));
        }
    }
    // MIG layouts: one per node with MIG instances.
    for gpu in inventory.gpus.iter().filter(|g| !g.instances.is_empty()) {
        if b.layouts.contains_key(&gpu.node_item) {
            continue;
        }
        let site_name = sites.sites[gpu.site].name.clone();
        let layout = b.add(ResourceKind::MigLayout, site_name, Some(gpu.node.clone()), Some(gpu.site), gpu.node_item);
        b.layouts.insert(gpu.node_item, layout);
        if let Some(cluster) = b.cluster(gpu.site) {
            b.edge(layout, cluster, "configured on", name_span(fabric.item(gpu.node_item)));
        }
    }
    for (id, item) in fabric.of_kind("temporal") {
        let site = ref_prop(item, "site").and_then(|s| sites.by_id(s));
        let temporal = b.add(ResourceKind::TemporalCluster, qualified(fabric, id), None, site, id);
        if let Some(cluster) = site.and_then(|s| b.cluster(s)) {
            b.edge(temporal, cluster, "runs on", item.prop("site").map_or(name_span(item), |v| v.span));
        }
        for (ns_id, ns) in children(fabric, item, "namespace") {
            let namespace = b.add(ResourceKind::TemporalNamespace, qualified(fabric, ns_id), None, site, ns_id);
            b.edge(namespace, temporal, "registered in", name_span(ns));
        }
    }
    for (id, item) in fabric.of_kind("observe") {
        for (i, site) in sites.sites.iter().enumerate().filter(|(_, s)| s.has_cluster) {
            let collector = b.add(ResourceKind::Collector, qualified(fabric, id), Some(site.name.clone()), Some(i), id);
            if let Some(cluster) = b.cluster(i) {
                b.edge(collector, cluster, "runs on", name_span(item));
            }
        }
    }
    for (id, item) in fabric.of_kind("vectorstore") {
        let site = stores.get(&id).copied();
        let store = b.add(ResourceKind::VectorStore, qualified(fabric, id), None, site, id);
        if let Some(cluster) = site.and_then(|s| b.cluster(s)) {
            b.edge(store, cluster, "runs on", name_span(item));
        }
    }
    for plan in serves {
        let item = fabric.item(plan.serve);
        let first_site = plan.placements.first().map(|p| p.site);
        let server = b.add(ResourceKind::Server, qualified(fabric, plan.serve), None, first_site, plan.serve);
        for p in &plan.placements {
            if let Some(cluster) = b.cluster(p.site) {
                b.edge(server, cluster, "placed on", name_span(item));
            }
            if matches!(p.devices, Devices::Mig { .. })
                && let Some(&layout) = b.layouts.get(&p.node_item)
            {
                b.edge(server, layout, "runs on a MIG slice of", name_span(item));
            }
        }
        for (_, uses) in children(fabric, item, "uses") {
            for val in &uses.args {
                if let Some(store) = ref_target(val).and_then(|t| b.primary(t)) {
                    b.edge(server, store, "uses", val.span);
                }
            }
        }
    }
    for (id, item) in fabric.of_kind("eval") {
        let eval = b.add(ResourceKind::Eval, qualified(fabric, id), None, None, id);
        if let (Some(target), Some(val)) = (ref_prop(item, "target"), item.prop("target"))
            && let Some(server) = b.primary(target)
        {
            b.edge(eval, server, "evaluates", val.span);
        }
        if let Some((_, runs_on)) = children(fabric, item, "runs-on").next()
            && let Some(temporal) = runs_on.args.first().and_then(ref_target)
        {
            let namespace = ref_prop(runs_on, "namespace");
            let target = namespace.and_then(|ns| b.primary(ns)).or_else(|| b.primary(temporal));
            if let Some(target) = target {
                let site = b.graph.resources[target].site;
                b.graph.resources[eval].site = site;
                b.edge(eval, target, "runs in", runs_on.args[0].span);
            }
        }
    }
    for (id, item) in fabric.of_kind("edge") {
        let site = ref_prop(item, "fleet").and_then(|f| sites.fleet(f)).map(|(s, _)| s);
        let bundle = b.add(ResourceKind::EdgeBundle, qualified(fabric, id), None, site, id);
        for (_, fallback) in children(fabric, item, "fallback") {
            if let Some(val) = fallback.args.first()
                && let Some(server) = ref_target(val).and_then(|t| b.primary(t))
            {
                b.edge(bundle, server, "falls back to", val.span);
            }
        }
    }
    // Explicit depends-on: every resource of the declaration needs every resource of the target.
    for depends_on in fabric.of_kind_named("depends-on") {
        let index = depends_on.0 as usize;
        let item = fabric.item(depends_on);
        let Some(owner) = item.parent else { continue };
        let owner = fabric.root_of(owner);
        let froms: Vec<usize> =
            b.primary(owner).into_iter().chain(b.more.get(&owner).into_iter().flatten().copied()).collect();
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
    graph.waves = waves(&graph, diagnostics);
    graph
}

/// The shared name of a declared item (no allocation), or its description.
fn qualified(fabric: &Fabric, id: ItemId) -> Arc<str> {
    match &fabric.item(id).name {
        Some(name) => name.qualified.clone(),
        None => name_of(fabric, id).into(),
    }
}

/// Layers by longest path, or nothing (and `SOV4006`) when there is a cycle.
fn waves(graph: &ResourceGraph, diagnostics: &mut Vec<Diagnostic>) -> Vec<Vec<usize>> {
    // Kahn's algorithm in compressed adjacency (one allocation per array, not
    // per resource): a resource's wave is known once all it needs is placed.
    let n = graph.resources.len();
    let mut dependents_start = vec![0u32; n + 1];
    let mut pending = vec![0u32; n];
    for e in &graph.edges {
        dependents_start[e.to + 1] += 1;
        pending[e.from] += 1;
    }
    for i in 0..n {
        dependents_start[i + 1] += dependents_start[i];
    }
    let mut fill = dependents_start.clone();
    let mut dependents = vec![0u32; graph.edges.len()];
    for e in &graph.edges {
        dependents[fill[e.to] as usize] = u32::try_from(e.from).unwrap_or(u32::MAX);
        fill[e.to] += 1;
    }
    let mut wave = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&r| pending[r] == 0).collect();
    let mut done = 0;
    while let Some(r) = ready.pop() {
        done += 1;
        for &d in &dependents[dependents_start[r] as usize..dependents_start[r + 1] as usize] {
            let d = d as usize;
            wave[d] = wave[d].max(wave[r] + 1);
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(d);
            }
        }
    }
    if done < n {
        report_cycles(graph, diagnostics);
        return Vec::new();
    }
    let count = wave.iter().max().map_or(0, |m| m + 1);
    let mut waves: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (r, &w) in wave.iter().enumerate() {
        waves[w].push(r);
    }
    waves
}

/// Reports every cycle (strongly connected component), only when there is one.
fn report_cycles(graph: &ResourceGraph, diagnostics: &mut Vec<Diagnostic>) {
    let mut g: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..graph.resources.len()).map(|i| g.add_node(i)).collect();
    for (i, e) in graph.edges.iter().enumerate() {
        g.add_edge(nodes[e.from], nodes[e.to], i);
    }
    let id = |n: &NodeIndex| &graph.resources[g[*n]].id;
    let mut cycles: Vec<Vec<NodeIndex>> = tarjan_scc(&g).into_iter().filter(|c| c.len() > 1).collect();
    // Sorted by resource id, so the report does not depend on traversal order.
    cycles.iter_mut().for_each(|c| c.sort_by(|a, b| id(a).cmp(id(b))));
    cycles.sort_by(|a, b| id(&a[0]).cmp(id(&b[0])));
    for component in &cycles {
        // A strongly connected component of two or more always has a cycle.
        diagnostics.extend(cycle_diagnostic(graph, &g, component));
    }
}

fn cycle_diagnostic(graph: &ResourceGraph, g: &DiGraph<usize, usize>, component: &[NodeIndex]) -> Option<Diagnostic> {
    let start = g[component[0]];
    let path = sovereign_check::cycles::shortest_cycle(g, component, component[0]);
    let names: Vec<String> = path.iter().map(|&e| graph.resources[graph.edges[e].from].id.to_string()).collect();
    let first = &graph.edges[*path.first()?];
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
    Some(d.with_help("nothing in a cycle can be created first: remove a `depends-on`, or move a workload off the site whose cluster it would have to precede"))
}
