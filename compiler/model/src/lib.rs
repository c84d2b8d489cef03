//! The typed fabric model: what a checked spec declares, one struct per
//! declaration kind, read once from the IR so the analysis, the emitters,
//! the planner and the drivers never look kinds or properties up by string.
//!
//! ```text
//! IR (resolved, defaults filled in) ─read─▶ Spec { sites, models, serves, … }
//! ```
//!
//! Architecture Invariant: pure, like the IR it reads. It is read only from
//! a fabric that checked without errors, so every required value is there
//! and every reference resolved; what the schema allows but this binary does
//! not understand (a `--stdlib` schema newer than it) is a diagnostic
//! (`SOV2019`), never a value silently dropped. References are typed ids
//! ([`Id`]): an `Id<Site>` indexes [`Spec::sites`] and nothing else. Every
//! value keeps its span (for a schema default, the declaration's keyword),
//! so diagnostics about emitted output point at the spec.

mod arena;
pub mod enums;
mod read;

use std::sync::Arc;

use sovereign_diagnostics::Span;
use sovereign_ir::ItemId;
pub use sovereign_ir::registry;
pub use sovereign_ir::values::{Condition, Cron, MigProfile, SecretSource, Uri};

pub use arena::{Arena, Id};
pub use enums::*;

/// A value and where the spec says it.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
    /// The spec left it out; the value is the schema's default and `span` the declaration's keyword.
    pub defaulted: bool,
}

impl<T> Spanned<T> {
    /// The span, when the spec wrote the value: labels point only at what was written.
    #[must_use]
    pub fn written_span(&self) -> Option<Span> {
        (!self.defaulted).then_some(self.span)
    }
}

/// A declared name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// `parent/name` for nested declarations, else the name; shared with the IR.
    pub qualified: Arc<str>,
    pub span: Span,
}

impl Name {
    /// The name as written, without its parent.
    #[must_use]
    pub fn text(&self) -> &str {
        self.qualified.rsplit('/').next().unwrap_or(&self.qualified)
    }
}

/// The checked spec, typed.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub fabric: FabricDecl,
    pub sites: Arena<Site>,
    pub models: Arena<Model>,
    pub secrets: Arena<Secret>,
    pub ledgers: Arena<Ledger>,
    pub datasets: Arena<Dataset>,
    pub temporals: Arena<Temporal>,
    pub observes: Arena<Observe>,
    pub serves: Arena<Serve>,
    pub vectorstores: Arena<VectorStore>,
    pub evals: Arena<Eval>,
    pub edges: Arena<Edge>,
    decls: Decls,
}

/// What each IR item declares, dense by item: every reference is looked up
/// here, so no hashing on the way.
#[derive(Clone, Debug, Default)]
pub(crate) struct Decls(Vec<Option<Decl>>);

impl Decls {
    pub(crate) fn with_items(items: usize) -> Decls {
        Decls(vec![None; items])
    }

    pub(crate) fn insert(&mut self, item: ItemId, decl: Decl) {
        if let Some(slot) = self.0.get_mut(item.0 as usize) {
            *slot = Some(decl);
        }
    }

    pub(crate) fn get(&self, item: ItemId) -> Option<Decl> {
        self.0.get(item.0 as usize).copied().flatten()
    }
}

/// What an IR item is in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decl {
    Fabric,
    Site(Id<Site>),
    Node(NodeId),
    Pool(PoolId),
    Fleet(FleetId),
    Model(Id<Model>),
    Secret(Id<Secret>),
    Ledger(Id<Ledger>),
    Dataset(Id<Dataset>),
    Temporal(Id<Temporal>),
    Namespace(NamespaceId),
    Observe(Id<Observe>),
    Export(ExportId),
    Serve(Id<Serve>),
    VectorStore(Id<VectorStore>),
    Collection(CollectionId),
    Eval(Id<Eval>),
    Metric(MetricId),
    Edge(Id<Edge>),
}

/// A child of a declaration: its parent's id and its index among the parent's children of its kind.
macro_rules! child_id {
    ($(#[$meta:meta])* $name:ident of $parent:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name {
            pub parent: Id<$parent>,
            pub index: u32,
        }
    };
}

child_id!(/// A GPU server of a site.
    NodeId of Site);
child_id!(/// An accelerator pool of a site.
    PoolId of Site);
child_id!(/// A device fleet of a site.
    FleetId of Site);
child_id!(/// A namespace of a Temporal cluster.
    NamespaceId of Temporal);
child_id!(/// An export of an `observe`.
    ExportId of Observe);
child_id!(/// A collection of a vector store.
    CollectionId of VectorStore);
child_id!(/// A metric of an eval.
    MetricId of Eval);

/// `Decl::serve(decl)`: the id, when the declaration is of that kind (the
/// model's reader passes these where a reference must name one kind).
macro_rules! decl_accessors {
    ($($method:ident: $variant:ident -> $id:ty),+ $(,)?) => {
        impl Decl {
            $(
                #[must_use]
                pub fn $method(self) -> Option<$id> {
                    match self {
                        Decl::$variant(id) => Some(id),
                        _ => None,
                    }
                }
            )+
        }
    };
}

decl_accessors!(
    site: Site -> Id<Site>,
    fleet: Fleet -> FleetId,
    model: Model -> Id<Model>,
    secret: Secret -> Id<Secret>,
    ledger: Ledger -> Id<Ledger>,
    dataset: Dataset -> Id<Dataset>,
    temporal: Temporal -> Id<Temporal>,
    namespace: Namespace -> NamespaceId,
    serve: Serve -> Id<Serve>,
    vector_store: VectorStore -> Id<VectorStore>,
);

impl Spec {
    /// What IR item `item` declares, if it is a declaration the model reads.
    #[must_use]
    pub fn decl(&self, item: ItemId) -> Option<Decl> {
        self.decls.get(item)
    }

    /// Every declaration's `depends-on` targets, with the declaration's
    /// item: the kinds whose schema allows `depends-on` are the ones with a
    /// `depends_on` field, all of them listed here.
    #[must_use]
    pub fn depends_on(&self) -> Vec<(ItemId, Spanned<ItemId>)> {
        let mut out = Vec::new();
        let mut add = |item: ItemId, targets: &[Spanned<ItemId>]| {
            out.extend(targets.iter().map(|target| (item, target.clone())));
        };
        self.sites.values().for_each(|d| add(d.item, &d.depends_on));
        self.ledgers.values().for_each(|d| add(d.item, &d.depends_on));
        self.temporals.values().for_each(|d| add(d.item, &d.depends_on));
        self.observes.values().for_each(|d| add(d.item, &d.depends_on));
        self.serves.values().for_each(|d| add(d.item, &d.depends_on));
        self.vectorstores.values().for_each(|d| add(d.item, &d.depends_on));
        self.evals.values().for_each(|d| add(d.item, &d.depends_on));
        self.edges.values().for_each(|d| add(d.item, &d.depends_on));
        out
    }

    /// How many IR items the model was read from (item ids are below it):
    /// what a pass sizes its dense tables by once the IR is gone.
    #[must_use]
    pub fn items(&self) -> usize {
        self.decls.0.len()
    }

    #[must_use]
    pub fn node(&self, id: NodeId) -> &Node {
        &self.sites[id.parent].nodes[id.index as usize]
    }

    #[must_use]
    pub fn pool(&self, id: PoolId) -> &Pool {
        &self.sites[id.parent].pools[id.index as usize]
    }

    #[must_use]
    pub fn fleet(&self, id: FleetId) -> &Fleet {
        &self.sites[id.parent].fleets[id.index as usize]
    }

    #[must_use]
    pub fn namespace(&self, id: NamespaceId) -> &TemporalNamespace {
        &self.temporals[id.parent].namespaces[id.index as usize]
    }

    #[must_use]
    pub fn export(&self, id: ExportId) -> &Export {
        &self.observes[id.parent].exports[id.index as usize]
    }

    #[must_use]
    pub fn collection(&self, id: CollectionId) -> &Collection {
        &self.vectorstores[id.parent].collections[id.index as usize]
    }

    #[must_use]
    pub fn metric(&self, id: MetricId) -> &Metric {
        &self.evals[id.parent].metrics[id.index as usize]
    }

    /// The fabric's residency (a jurisdiction), if declared.
    #[must_use]
    pub fn residency(&self) -> Option<&str> {
        self.fabric.residency.as_ref().map(|r| &*r.value)
    }
}

/// The `fabric` declaration.
#[derive(Clone, Debug, Default)]
pub struct FabricDecl {
    pub item: Option<ItemId>,
    pub name: Option<Name>,
    /// A jurisdiction from the catalog.
    pub residency: Option<Spanned<Arc<str>>>,
    pub state: Option<State>,
}

/// Where the state of applies lives.
#[derive(Clone, Debug)]
pub struct State {
    pub item: ItemId,
    /// The `state` keyword.
    pub span: Span,
    pub backend: Spanned<StateBackend>,
    pub site: Option<Spanned<Id<Site>>>,
    pub path: Option<Spanned<Arc<str>>>,
}

#[derive(Clone, Debug)]
pub struct Site {
    pub item: ItemId,
    pub name: Name,
    pub tier: Spanned<Tier>,
    /// A region from the catalog.
    pub region: Spanned<Arc<str>>,
    pub provider: Option<Spanned<Provider>>,
    pub cluster: Option<Cluster>,
    pub nodes: Vec<Node>,
    pub pools: Vec<Pool>,
    pub fleets: Vec<Fleet>,
    /// Where the fleet's device bundles are pushed.
    pub registry: Option<Spanned<Uri>>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub item: ItemId,
    pub kind: Spanned<ClusterKind>,
    /// The kubeconfig context that reaches it.
    pub context: Spanned<Arc<str>>,
}

/// A server of a site.
#[derive(Clone, Debug)]
pub struct Node {
    pub item: ItemId,
    pub name: Name,
    /// A GPU of the catalog.
    pub gpu: Option<Spanned<Arc<str>>>,
    pub gpus: Spanned<u32>,
    pub mig: Spanned<bool>,
    pub cpu: Option<Spanned<u32>>,
    /// Bytes.
    pub memory: Option<Spanned<u64>>,
}

/// An autoscaled accelerator pool of a cloud site.
#[derive(Clone, Debug)]
pub struct Pool {
    pub item: ItemId,
    pub name: Name,
    /// A TPU or GPU of the catalog.
    pub accelerator: Spanned<Arc<str>>,
    /// GPUs per machine, for a GPU pool.
    pub gpus: Spanned<u32>,
    pub topology: Option<Spanned<Arc<str>>>,
    pub min: Spanned<u32>,
    pub max: Spanned<u32>,
    pub spot: Spanned<bool>,
}

/// A device fleet.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub item: ItemId,
    /// `site/fleet`.
    pub name: Name,
    /// A system-on-chip of the catalog.
    pub soc: Spanned<Arc<str>>,
    pub count: Spanned<u32>,
    /// Bytes per device.
    pub memory: Spanned<u64>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub item: ItemId,
    pub name: Name,
    /// A model of the catalog.
    pub base: Spanned<Arc<str>>,
    pub dtype: Spanned<Dtype>,
    pub format: Spanned<WeightFormat>,
    /// Where the weights are (`pvc://CLAIM/PATH`).
    pub source: Option<Spanned<Uri>>,
}

#[derive(Clone, Debug)]
pub struct Secret {
    pub item: ItemId,
    pub name: Name,
    /// Where the value comes from; never the value.
    pub from: Spanned<SecretSource>,
}

/// An Iceberg lake.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub item: ItemId,
    pub name: Name,
    pub site: Option<Spanned<Id<Site>>>,
    pub catalog: Spanned<IcebergCatalog>,
    pub uri: Option<Spanned<Uri>>,
    pub warehouse: Spanned<Uri>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub item: ItemId,
    pub name: Name,
    pub classification: Spanned<Classification>,
    /// The jurisdiction it must stay in, when it says; else the fabric's.
    pub residency: Option<Spanned<Arc<str>>>,
    pub ledger: Option<Spanned<Id<Ledger>>>,
    pub table: Option<Spanned<Arc<str>>>,
}

/// A Temporal cluster.
#[derive(Clone, Debug)]
pub struct Temporal {
    pub item: ItemId,
    pub name: Name,
    pub site: Spanned<Id<Site>>,
    /// An existing server's HTTP API: nothing is deployed, the namespaces are registered there.
    pub endpoint: Option<Spanned<Uri>>,
    pub persistence: Option<Persistence>,
    pub namespaces: Vec<TemporalNamespace>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

#[derive(Clone, Debug)]
pub struct Persistence {
    pub item: ItemId,
    pub engine: Spanned<PersistenceEngine>,
    /// The volume size in bytes.
    pub size: Option<Spanned<u64>>,
}

#[derive(Clone, Debug)]
pub struct TemporalNamespace {
    pub item: ItemId,
    /// `temporal/namespace`.
    pub name: Name,
    /// Milliseconds.
    pub retention: Spanned<u64>,
}

/// Telemetry: the collectors of every cluster and where they export.
#[derive(Clone, Debug)]
pub struct Observe {
    pub item: ItemId,
    pub name: Name,
    pub collector: Option<Collector>,
    pub exports: Vec<Export>,
    pub ebpf: Spanned<bool>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

#[derive(Clone, Debug)]
pub struct Collector {
    pub item: ItemId,
    pub mode: Spanned<CollectorMode>,
}

#[derive(Clone, Debug)]
pub struct Export {
    pub item: ItemId,
    /// The `export` keyword: an export declares no name.
    pub span: Span,
    pub destination: Spanned<ExportDestination>,
    /// A jurisdiction (Logfire: `eu` or `us`).
    pub region: Option<Spanned<Arc<str>>>,
    pub token: Option<Spanned<Id<Secret>>>,
    pub endpoint: Option<Spanned<Uri>>,
    pub site: Option<Spanned<Id<Site>>>,
    pub redact: Spanned<bool>,
}

/// A served model (vLLM).
#[derive(Clone, Debug)]
pub struct Serve {
    pub item: ItemId,
    pub name: Name,
    pub model: Spanned<Id<Model>>,
    pub tier: Option<Spanned<Tier>>,
    pub site: Option<Spanned<Id<Site>>>,
    pub mig: Option<Spanned<MigProfile>>,
    pub gpus: Option<Spanned<u32>>,
    pub tensor_parallel: Option<Spanned<u32>>,
    pub replicas: Spanned<u32>,
    pub max_model_len: Option<Spanned<u64>>,
    pub gpu_memory_utilization: Spanned<f64>,
    pub kv_cache_dtype: Spanned<KvCacheDtype>,
    pub uses: Vec<Spanned<Id<VectorStore>>>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

/// A Qdrant deployment and its collections.
#[derive(Clone, Debug)]
pub struct VectorStore {
    pub item: ItemId,
    pub name: Name,
    pub tier: Option<Spanned<Tier>>,
    pub site: Option<Spanned<Id<Site>>>,
    pub collections: Vec<Collection>,
    /// Bytes.
    pub storage: Option<Spanned<u64>>,
    pub replicas: Spanned<u32>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

#[derive(Clone, Debug)]
pub struct Collection {
    pub item: ItemId,
    /// `vectorstore/collection`.
    pub name: Name,
    pub dims: Spanned<u32>,
    pub distance: Spanned<Distance>,
}

/// An evaluation gate.
#[derive(Clone, Debug)]
pub struct Eval {
    pub item: ItemId,
    pub name: Name,
    pub target: Spanned<Id<Serve>>,
    pub dataset: Spanned<Id<Dataset>>,
    pub schedule: Option<Spanned<Cron>>,
    pub metrics: Vec<Metric>,
    pub on_fail: Spanned<OnFail>,
    pub runs_on: RunsOn,
    pub depends_on: Vec<Spanned<ItemId>>,
}

#[derive(Clone, Debug)]
pub struct Metric {
    pub item: ItemId,
    /// `eval/metric`.
    pub name: Name,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
}

/// Where an eval's workflow runs.
#[derive(Clone, Debug)]
pub struct RunsOn {
    pub item: ItemId,
    pub temporal: Spanned<Id<Temporal>>,
    pub namespace: Option<Spanned<NamespaceId>>,
}

/// An on-device model on a fleet.
#[derive(Clone, Debug)]
pub struct Edge {
    pub item: ItemId,
    pub name: Name,
    pub fleet: Spanned<FleetId>,
    pub model: Spanned<Id<Model>>,
    /// The tag of this edge's bundle in the site's registry.
    pub version: Option<Spanned<Arc<str>>>,
    /// The secret whose ed25519 key signs this edge's bundles.
    pub signing_key: Option<Spanned<Id<Secret>>>,
    pub reads: Vec<Spanned<Id<Dataset>>>,
    pub fallback: Option<Fallback>,
    pub depends_on: Vec<Spanned<ItemId>>,
}

/// Where an edge sends what it cannot answer.
#[derive(Clone, Debug)]
pub struct Fallback {
    pub item: ItemId,
    pub serve: Spanned<Id<Serve>>,
    pub when: Spanned<Condition>,
    pub redact: Spanned<bool>,
    /// Milliseconds.
    pub timeout: Option<Spanned<u64>>,
}

pub use read::read;
