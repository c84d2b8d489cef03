//! The resource graph: every resource the fabric implies (site clusters,
//! MIG layouts, Temporal clusters and namespaces, collectors, vector stores,
//! servers, evals, edge bundles), with implied and explicit (`depends-on`)
//! edges; its cycles (`SOV4006`) and its waves.
//!
//! Waves are topological layers by longest path: a resource's wave is one
//! more than the latest wave among what it needs, so nothing in a wave
//! depends on anything in the same or a later wave, and there are exactly
//! as many waves as the longest chain has resources (the fewest possible).

use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use sovereign_diagnostics::{Diagnostic, Span, codes};
use sovereign_ir::ItemId;
use sovereign_model::{Decl, Spec};

use crate::capacity::PlacedServe;
use crate::placement::{Devices, Inventory};
use crate::view::{SiteId, Sites};
use crate::workloads::WorkloadSites;

/// What a resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Cluster,
    MigLayout,
    TemporalCluster,
    TemporalNamespace,
    Collector,
    VectorStore,
    /// A served model (vLLM).
    Serve,
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
            ResourceKind::Serve => "serve",
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
    pub site: Option<SiteId>,
    /// The declaration it comes from.
    pub item: ItemId,
}

/// The position of a resource in [`ResourceGraph::resources`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceIndex(pub u32);

impl ResourceIndex {
    fn of(index: usize) -> ResourceIndex {
        ResourceIndex(u32::try_from(index).unwrap_or(u32::MAX))
    }

    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why one resource needs another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeReason {
    /// A MIG layout is configured on its site's cluster.
    ConfiguredOn,
    /// A workload runs on its site's cluster.
    RunsOn,
    /// A namespace is registered in its Temporal cluster.
    RegisteredIn,
    /// A serve's replicas are placed on a cluster.
    PlacedOn,
    RunsOnMigSliceOf,
    /// A serve uses a vector store.
    Uses,
    /// An eval evaluates a serve.
    Evaluates,
    /// An eval's workflow runs in a Temporal namespace (or cluster).
    RunsIn,
    /// An edge bundle falls back to a serve.
    FallsBackTo,
    /// Written in the spec.
    DependsOn,
}

impl EdgeReason {
    /// The reason in words, as graphs and messages show it.
    #[must_use]
    pub fn words(self) -> &'static str {
        match self {
            EdgeReason::ConfiguredOn => "configured on",
            EdgeReason::RunsOn => "runs on",
            EdgeReason::RegisteredIn => "registered in",
            EdgeReason::PlacedOn => "placed on",
            EdgeReason::RunsOnMigSliceOf => "runs on a MIG slice of",
            EdgeReason::Uses => "uses",
            EdgeReason::Evaluates => "evaluates",
            EdgeReason::RunsIn => "runs in",
            EdgeReason::FallsBackTo => "falls back to",
            EdgeReason::DependsOn => "depends-on",
        }
    }
}

impl std::fmt::Display for EdgeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words())
    }
}

/// `from` needs `to` to exist first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: ResourceIndex,
    pub to: ResourceIndex,
    pub why: EdgeReason,
    pub span: Span,
}

/// The resource DAG and its waves.
#[derive(Clone, Debug, Default)]
pub struct ResourceGraph {
    pub resources: Vec<Resource>,
    pub edges: Vec<Edge>,
    /// Resources per wave, each in creation order (spec order, which is
    /// deterministic); empty when there is a cycle.
    pub waves: Vec<Vec<ResourceIndex>>,
}

impl ResourceGraph {
    #[must_use]
    pub fn resource(&self, index: ResourceIndex) -> &Resource {
        &self.resources[index.index()]
    }
}

struct Builder {
    graph: ResourceGraph,
    /// The first resource of each declaration, indexed by item (dense: no map
    /// lookups on the hot path); `u32::MAX` when it has none.
    first: Vec<u32>,
    /// The further resources of declarations with several (an `observe`: one collector per site).
    more: HashMap<ItemId, Vec<usize>>,
    /// The resources of a declaration's parts, by the declaration (a site's
    /// MIG layouts, a temporal's namespaces), in the order they were added.
    parts: HashMap<ItemId, Vec<usize>>,
    /// The cluster of each site, by site index.
    clusters: Vec<Option<usize>>,
    /// The MIG layout of each node item.
    layouts: HashMap<ItemId, usize>,
    edge_set: HashSet<(usize, usize)>,
}

impl Builder {
    fn add(
        &mut self,
        kind: ResourceKind,
        name: Arc<str>,
        qualifier: Option<Arc<str>>,
        site: Option<SiteId>,
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

    fn edge(&mut self, from: usize, to: usize, why: EdgeReason, span: Span) {
        if from != to && self.edge_set.insert((from, to)) {
            self.graph.edges.push(Edge { from: ResourceIndex::of(from), to: ResourceIndex::of(to), why, span });
        }
    }

    fn cluster(&self, site: SiteId) -> Option<usize> {
        self.clusters.get(site.index()).copied().flatten()
    }

    /// The first resource of a declaration.
    fn primary(&self, item: ItemId) -> Option<usize> {
        Some(self.first[item.0 as usize]).filter(|&r| r != u32::MAX).map(|r| r as usize)
    }

    /// The resources a declaration stands for (a site: its cluster and MIG
    /// layouts; a temporal: the cluster and namespaces).
    fn resources_of(&self, item: ItemId) -> Vec<usize> {
        let mut out: Vec<usize> = self.own(item).collect();
        out.extend(self.parts.get(&item).into_iter().flatten().copied());
        out
    }

    /// The resources of one item, not of its parts.
    fn own(&self, item: ItemId) -> impl Iterator<Item = usize> + '_ {
        self.primary(item).into_iter().chain(self.more.get(&item).into_iter().flatten().copied())
    }

    /// Records `resource` as a part of the declaration `owner`.
    fn part_of(&mut self, owner: ItemId, resource: usize) {
        self.parts.entry(owner).or_default().push(resource);
    }
}

/// Builds the graph, reports its cycles and computes its waves. It reads
/// the typed model only (the untyped IR may be gone by now).
pub fn build(
    spec: &Spec,
    sites: &Sites,
    serves: &[PlacedServe],
    inventory: &Inventory,
    workload_sites: &WorkloadSites,
    diagnostics: &mut Vec<Diagnostic>,
) -> ResourceGraph {
    use EdgeReason::*;
    let mut b = Builder {
        graph: ResourceGraph::default(),
        first: vec![u32::MAX; spec.items()],
        more: HashMap::new(),
        parts: HashMap::new(),
        clusters: vec![None; sites.sites.len()],
        layouts: HashMap::new(),
        edge_set: HashSet::new(),
    };
    for site in sites.sites.iter().filter(|s| s.has_cluster) {
        b.clusters[site.id.index()] =
            Some(b.add(ResourceKind::Cluster, site.name.clone(), None, Some(site.id), site.item));
    }
    // MIG layouts: one per node with MIG instances.
    for gpu in inventory.gpus.iter().filter(|g| !g.instances.is_empty()) {
        if b.layouts.contains_key(&gpu.node_item) {
            continue;
        }
        let site_name = sites[gpu.site].name.clone();
        let layout = b.add(ResourceKind::MigLayout, site_name, Some(gpu.node.clone()), Some(gpu.site), gpu.node_item);
        b.layouts.insert(gpu.node_item, layout);
        b.part_of(sites[gpu.site].item, layout);
        let name_span = match spec.decl(gpu.node_item) {
            Some(Decl::Node(node)) => spec.node(node).name.span,
            Some(Decl::Pool(pool)) => spec.pool(pool).name.span,
            _ => sites[gpu.site].span,
        };
        if let Some(cluster) = b.cluster(gpu.site) {
            b.edge(layout, cluster, ConfiguredOn, name_span);
        }
    }
    for temporal in spec.temporals.values() {
        let site = temporal.site.value;
        let resource =
            b.add(ResourceKind::TemporalCluster, temporal.name.qualified.clone(), None, Some(site), temporal.item);
        if let Some(cluster) = b.cluster(site) {
            b.edge(resource, cluster, RunsOn, temporal.site.span);
        }
        for ns in &temporal.namespaces {
            let namespace =
                b.add(ResourceKind::TemporalNamespace, ns.name.qualified.clone(), None, Some(site), ns.item);
            b.part_of(temporal.item, namespace);
            b.edge(namespace, resource, RegisteredIn, ns.name.span);
        }
    }
    for observe in spec.observes.values() {
        for site in sites.sites.iter().filter(|s| s.has_cluster) {
            let collector = b.add(
                ResourceKind::Collector,
                observe.name.qualified.clone(),
                Some(site.name.clone()),
                Some(site.id),
                observe.item,
            );
            if let Some(cluster) = b.cluster(site.id) {
                b.edge(collector, cluster, RunsOn, observe.name.span);
            }
        }
    }
    for store in spec.vectorstores.values() {
        let site = workload_sites.site(store.item);
        let resource = b.add(ResourceKind::VectorStore, store.name.qualified.clone(), None, site, store.item);
        if let Some(cluster) = site.and_then(|s| b.cluster(s)) {
            b.edge(resource, cluster, RunsOn, store.name.span);
        }
    }
    for plan in serves {
        let serve = &spec.serves[plan.serve];
        let first_site = plan.placements.first().map(|p| p.site);
        let resource = b.add(ResourceKind::Serve, serve.name.qualified.clone(), None, first_site, serve.item);
        for p in &plan.placements {
            if let Some(cluster) = b.cluster(p.site) {
                b.edge(resource, cluster, PlacedOn, serve.name.span);
            }
            if matches!(p.devices, Devices::Mig { .. })
                && let Some(&layout) = b.layouts.get(&p.node_item)
            {
                b.edge(resource, layout, RunsOnMigSliceOf, serve.name.span);
            }
        }
        for store in &serve.uses {
            if let Some(target) = b.primary(spec.vectorstores[store.value].item) {
                b.edge(resource, target, Uses, store.span);
            }
        }
    }
    for eval in spec.evals.values() {
        let resource = b.add(ResourceKind::Eval, eval.name.qualified.clone(), None, None, eval.item);
        if let Some(target) = b.primary(spec.serves[eval.target.value].item) {
            b.edge(resource, target, Evaluates, eval.target.span);
        }
        let runs_on = &eval.runs_on;
        let namespace = runs_on.namespace.as_ref().map(|n| spec.namespace(n.value).item);
        let temporal = spec.temporals[runs_on.temporal.value].item;
        let target = namespace.and_then(|ns| b.primary(ns)).or_else(|| b.primary(temporal));
        if let Some(target) = target {
            b.graph.resources[resource].site = workload_sites.site(eval.item);
            b.edge(resource, target, RunsIn, runs_on.temporal.span);
        }
    }
    for edge in spec.edges.values() {
        let site = workload_sites.site(edge.item);
        let bundle = b.add(ResourceKind::EdgeBundle, edge.name.qualified.clone(), None, site, edge.item);
        if let Some(fallback) = &edge.fallback
            && let Some(target) = b.primary(spec.serves[fallback.serve.value].item)
        {
            b.edge(bundle, target, FallsBackTo, fallback.serve.span);
        }
    }
    // Explicit depends-on, of any kind: every resource of the declaration
    // needs every resource of the target. In the order they are written
    // (by span), as the edges always were.
    let mut explicit = spec.depends_on();
    explicit.sort_by_key(|(_, target)| (target.span.file, target.span.start, target.span.end));
    for (owner, target) in explicit {
        let froms: Vec<usize> = b.own(owner).collect();
        let tos = b.resources_of(target.value);
        for &from in &froms {
            for &to in &tos {
                b.edge(from, to, DependsOn, target.span);
            }
        }
    }
    let mut graph = b.graph;
    graph.waves = waves(&graph, diagnostics);
    graph
}

/// Layers by longest path, or nothing (and `SOV4006`) when there is a cycle.
fn waves(graph: &ResourceGraph, diagnostics: &mut Vec<Diagnostic>) -> Vec<Vec<ResourceIndex>> {
    // Kahn's algorithm in compressed adjacency (one allocation per array, not
    // per resource): a resource's wave is known once all it needs is placed.
    let n = graph.resources.len();
    let mut dependents_start = vec![0u32; n + 1];
    let mut pending = vec![0u32; n];
    for e in &graph.edges {
        dependents_start[e.to.index() + 1] += 1;
        pending[e.from.index()] += 1;
    }
    for i in 0..n {
        dependents_start[i + 1] += dependents_start[i];
    }
    let mut fill = dependents_start.clone();
    let mut dependents = vec![0u32; graph.edges.len()];
    for e in &graph.edges {
        dependents[fill[e.to.index()] as usize] = e.from.0;
        fill[e.to.index()] += 1;
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
    let mut waves: Vec<Vec<ResourceIndex>> = vec![Vec::new(); count];
    for (r, &w) in wave.iter().enumerate() {
        waves[w].push(ResourceIndex::of(r));
    }
    waves
}

/// Reports every cycle (strongly connected component), only when there is one.
fn report_cycles(graph: &ResourceGraph, diagnostics: &mut Vec<Diagnostic>) {
    let mut g: DiGraph<usize, usize> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..graph.resources.len()).map(|i| g.add_node(i)).collect();
    for (i, e) in graph.edges.iter().enumerate() {
        g.add_edge(nodes[e.from.index()], nodes[e.to.index()], i);
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
    let names: Vec<String> = path.iter().map(|&e| graph.resource(graph.edges[e].from).id.to_string()).collect();
    let first = &graph.edges[*path.first()?];
    let mut d = Diagnostic::new(
        codes::RESOURCE_CYCLE,
        first.span,
        format!("resource cycle: {} → {}", names.join(" → "), graph.resources[start].id),
    )
    .with_primary_label(format!("{} {} {}", graph.resource(first.from).id, first.why, graph.resource(first.to).id));
    for &e in &path[1..] {
        let edge = &graph.edges[e];
        d = d.with_label(
            edge.span,
            format!("{} {} {}", graph.resource(edge.from).id, edge.why, graph.resource(edge.to).id),
        );
    }
    Some(d.with_help("nothing in a cycle can be created first: remove a `depends-on`, or move a workload off the site whose cluster it would have to precede"))
}
