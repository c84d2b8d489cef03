//! Sovereignty: where every dataset flows, and whether it may.
//!
//! Data enters where it is read (`edge reads`, an eval's `dataset`), or at
//! its ledger's site when the ledger names one. It then flows along every
//! edge that carries it: an edge's `fallback` (what the edge reads), an
//! eval's `target` (the eval sends its dataset to the serve), `serve uses`
//! (both ways), and telemetry: each site's collector gathers what the
//! workloads on that site process, and every `export` sends it on (spans
//! can carry payloads) unless the export redacts.
//!
//! Rules, at each hop into site T:
//! - residency: T's jurisdiction must be the dataset's residency, redacted or not (`SOV5003`);
//! - restricted: it may not leave the site it is on unless the hop redacts (`SOV5001`);
//! - confidential: it may reach only server-tier sites unless the hop redacts (`SOV5002`);
//! - restricted and confidential data are never read directly in the cloud tier;
//! - a redacting hop turns restricted and confidential into internal.

use std::collections::VecDeque;
use std::ops::Index;

use hashbrown::{HashMap, HashSet};

use sovereign_diagnostics::{Diagnostic, Span, codes};
use sovereign_ir::ItemId;
use sovereign_model::{Dataset as DatasetDecl, Edge, Eval, Export, ExportDestination, Id, Spec, VectorStore};

use crate::view::{ServeId, SiteId, Sites, Tier};
use crate::workloads::WorkloadSites;

pub use sovereign_model::Classification as Class;

/// A place data can be: a site of the fabric or an outside service.
#[derive(Clone, Debug)]
pub struct Place {
    pub name: String,
    pub tier: Tier,
    pub jurisdiction: String,
    /// The site, when the place is one of the fabric's.
    pub site: Option<SiteId>,
}

/// The index of a [`Place`] in [`Flows::places`]: the fabric's sites first,
/// in site order (place `i` is site `i`), then outside services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlaceId(pub u32);

impl PlaceId {
    fn of_site(site: SiteId) -> PlaceId {
        PlaceId(u32::try_from(site.index()).unwrap_or(u32::MAX))
    }

    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The places data can be, indexed by [`PlaceId`].
#[derive(Clone, Debug, Default)]
pub struct Places(pub Vec<Place>);

impl Index<PlaceId> for Places {
    type Output = Place;
    fn index(&self, id: PlaceId) -> &Place {
        &self.0[id.index()]
    }
}

impl Places {
    fn push(&mut self, place: Place) -> PlaceId {
        self.0.push(place);
        PlaceId(u32::try_from(self.0.len() - 1).unwrap_or(u32::MAX))
    }

    /// Every place with its id.
    pub fn iter(&self) -> impl Iterator<Item = (PlaceId, &Place)> {
        self.0.iter().enumerate().map(|(i, p)| (PlaceId(u32::try_from(i).unwrap_or(u32::MAX)), p))
    }
}

/// One allowed hop of one dataset: the K3s target turns these into NetworkPolicies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFlow {
    /// The workloads at both ends, by IR item (`Spec::decl` types them).
    pub from: ItemId,
    pub from_place: PlaceId,
    pub to: ItemId,
    pub to_place: PlaceId,
    pub dataset: Id<DatasetDecl>,
    /// The class as it arrives.
    pub class: Class,
    pub redacted: bool,
    pub because: Because,
}

/// Why a flow is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Because {
    /// It does not leave the site.
    SameSite,
    Public,
    /// Internal data may go to any site.
    Internal,
    /// Confidential data may go to the server tier.
    ConfidentialToServer,
    /// The hop redacts it to internal.
    Redacted,
}

impl DataFlow {
    /// The reason in words, with the receiving place's jurisdiction.
    #[must_use]
    pub fn because(&self, places: &Places) -> String {
        let to = &places[self.to_place];
        let residency = format!("{} is in {}", to.name, to.jurisdiction);
        match self.because {
            Because::SameSite => format!("same site; {residency}"),
            Because::Public => "public".to_owned(),
            Because::Internal => format!("internal may go to any site; {residency}"),
            Because::ConfidentialToServer => format!("confidential to the server tier; {residency}"),
            Because::Redacted => format!("redacted to internal; {residency}"),
        }
    }
}

/// The result of the sovereignty analysis.
#[derive(Clone, Debug, Default)]
pub struct Flows {
    pub places: Places,
    pub flows: Vec<DataFlow>,
}

/// A workload at a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Point {
    item: ItemId,
    place: PlaceId,
}

/// An edge that carries data.
struct Carrier {
    from: Point,
    to: Point,
    redact: bool,
    span: Span,
    hop: Hop,
    /// The one dataset it carries (a read from a ledger), or everything at `from`.
    only: Option<Id<DatasetDecl>>,
}

/// What a step of a path is; put into words only when a violation is reported.
#[derive(Clone, Copy)]
enum Hop {
    Declared { dataset: Id<DatasetDecl> },
    EdgeReads { edge: Id<Edge>, place: PlaceId },
    EvalReads { eval: Id<Eval>, place: PlaceId },
    FallsBack { serve: ServeId, place: PlaceId, redact: bool },
    SentForEvaluation { serve: ServeId, place: PlaceId },
    Stored { store: Id<VectorStore>, place: PlaceId },
    Retrieved { serve: ServeId, place: PlaceId },
    Exported { place: PlaceId, redact: bool },
}

impl Hop {
    fn text(self, spec: &Spec, places: &Places) -> String {
        let redacted = |r: bool| if r { ", redacted" } else { "" };
        match self {
            Hop::Declared { dataset } => {
                let dataset = &spec.datasets[dataset];
                format!("dataset \"{}\" is {}", dataset.name.qualified, dataset.classification.value.word())
            }
            Hop::EdgeReads { edge, place } => {
                format!("edge \"{}\" reads it on site {}", spec.edges[edge].name.qualified, places[place].name)
            }
            Hop::EvalReads { eval, place } => {
                format!("eval \"{}\" reads it on site {}", spec.evals[eval].name.qualified, places[place].name)
            }
            Hop::FallsBack { serve, place, redact } => format!(
                "falls back to serve \"{}\" on site {}{}",
                spec.serves[serve].name.qualified,
                places[place].name,
                redacted(redact)
            ),
            Hop::SentForEvaluation { serve, place } => format!(
                "sent to serve \"{}\" under evaluation on site {}",
                spec.serves[serve].name.qualified, places[place].name
            ),
            Hop::Stored { store, place } => format!(
                "stored in vectorstore \"{}\" on site {}",
                spec.vectorstores[store].name.qualified, places[place].name
            ),
            Hop::Retrieved { serve, place } => {
                format!("retrieved by serve \"{}\" on site {}", spec.serves[serve].name.qualified, places[place].name)
            }
            Hop::Exported { place, redact } => {
                format!("its telemetry is exported to {}{}", places[place].name, redacted(redact))
            }
        }
    }
}

/// The paths data took, as a tree of steps: each carried datum points at its
/// last step, so extending a path is one push, not a copy.
#[derive(Default)]
struct Trail {
    steps: Vec<(Option<u32>, Span, Hop)>,
}

impl Trail {
    fn push(&mut self, parent: Option<u32>, span: Span, hop: Hop) -> u32 {
        self.steps.push((parent, span, hop));
        u32::try_from(self.steps.len() - 1).unwrap_or(u32::MAX)
    }

    /// The steps from the first to `last`.
    fn path(&self, last: u32) -> Vec<(Span, Hop)> {
        let mut path = Vec::new();
        let mut at = Some(last);
        while let Some(i) = at {
            let (parent, span, hop) = self.steps[i as usize];
            path.push((span, hop));
            at = parent;
        }
        path.reverse();
        path
    }
}

/// Data on its way: where it is, as what, and how it got there.
#[derive(Clone, Copy)]
struct Carried {
    at: Point,
    dataset: Id<DatasetDecl>,
    class: Class,
    redacted: bool,
    /// Its last step in the [`Trail`].
    step: u32,
}

struct Dataset {
    class: Class,
    residency: String,
    /// The ledger's site, where the data lives, if declared.
    home: Option<PlaceId>,
}

/// Follows every dataset along every carrier and checks each hop.
pub fn analyze(spec: &Spec, sites: &Sites, sites_of: &WorkloadSites, diagnostics: &mut Vec<Diagnostic>) -> Flows {
    let mut places = Places(
        sites
            .sites
            .iter()
            .map(|s| Place {
                name: s.name.to_string(),
                tier: s.tier,
                jurisdiction: s.jurisdiction.clone(),
                site: Some(s.id),
            })
            .collect(),
    );
    let datasets = read_datasets(spec, sites);
    let place_of = |item: ItemId| sites_of.site(item).map(PlaceId::of_site);
    let places_of = |item: ItemId| sites_of.sites(item).map(PlaceId::of_site);

    let mut carriers: Vec<Carrier> = Vec::new();
    let mut entries: Vec<Carried> = Vec::new();
    let mut trail = Trail::default();
    // Entries: edge reads and eval datasets.
    for (edge_id, edge) in spec.edges.iter() {
        let Some(site) = place_of(edge.item) else { continue };
        let at = Point { item: edge.item, place: site };
        for dataset in &edge.reads {
            let hop = Hop::EdgeReads { edge: edge_id, place: site };
            entry(spec, &datasets, &mut carriers, &mut trail, &mut entries, dataset.value, at, dataset.span, hop);
        }
        // fallback: what the edge reads goes to the serve.
        if let Some(fallback) = &edge.fallback {
            let (target, redact) = (fallback.serve.value, fallback.redact.value);
            let target_item = spec.serves[target].item;
            for to_site in places_of(target_item) {
                carriers.push(Carrier {
                    from: at,
                    to: Point { item: target_item, place: to_site },
                    redact,
                    span: fallback.serve.span,
                    hop: Hop::FallsBack { serve: target, place: to_site, redact },
                    only: None,
                });
            }
        }
    }
    for (eval_id, eval) in spec.evals.iter() {
        let Some(site) = place_of(eval.item) else { continue };
        let at = Point { item: eval.item, place: site };
        let hop = Hop::EvalReads { eval: eval_id, place: site };
        entry(spec, &datasets, &mut carriers, &mut trail, &mut entries, eval.dataset.value, at, eval.dataset.span, hop);
        let (target, target_item) = (eval.target.value, spec.serves[eval.target.value].item);
        for to_site in places_of(target_item) {
            carriers.push(Carrier {
                from: at,
                to: Point { item: target_item, place: to_site },
                redact: false,
                span: eval.target.span,
                hop: Hop::SentForEvaluation { serve: target, place: to_site },
                only: None,
            });
        }
    }
    // serve uses: both ways.
    for (serve_id, serve) in spec.serves.iter() {
        for store in &serve.uses {
            let store_item = spec.vectorstores[store.value].item;
            for from_site in places_of(serve.item) {
                for to_site in places_of(store_item) {
                    let a = Point { item: serve.item, place: from_site };
                    let b = Point { item: store_item, place: to_site };
                    carriers.push(Carrier {
                        from: a,
                        to: b,
                        redact: false,
                        span: store.span,
                        hop: Hop::Stored { store: store.value, place: to_site },
                        only: None,
                    });
                    carriers.push(Carrier {
                        from: b,
                        to: a,
                        redact: false,
                        span: store.span,
                        hop: Hop::Retrieved { serve: serve_id, place: from_site },
                        only: None,
                    });
                }
            }
        }
    }
    // Telemetry: every workload point on a site with a cluster, through each export.
    let workload_points: Vec<Point> = {
        let mut points: Vec<Point> =
            carriers.iter().flat_map(|c| [c.from, c.to]).chain(entries.iter().map(|e| e.at)).collect();
        points.sort();
        points.dedup();
        points.into_iter().filter(|p| places[p.place].site.is_some_and(|s| sites[s].has_cluster)).collect()
    };
    for observe in spec.observes.values() {
        for export in &observe.exports {
            let Some(destination) = export_destination(export, &mut places, diagnostics, &workload_points) else {
                continue;
            };
            let redact = export.redact.value;
            for &from in &workload_points {
                let to_place = destination.unwrap_or(from.place);
                if destination.is_none() {
                    // In-cluster: stays on each site.
                    continue;
                }
                carriers.push(Carrier {
                    from,
                    to: Point { item: export.item, place: to_place },
                    redact,
                    span: export.span,
                    hop: Hop::Exported { place: to_place, redact },
                    only: None,
                });
            }
        }
    }

    // Breadth first from every entry; the first path to reach a state is a shortest one.
    let mut outgoing: HashMap<Point, Vec<usize>> = HashMap::new();
    for (i, c) in carriers.iter().enumerate() {
        outgoing.entry(c.from).or_default().push(i);
    }
    let mut seen: HashSet<(Point, Id<DatasetDecl>, bool)> = HashSet::new();
    let mut flows: Vec<DataFlow> = Vec::new();
    let mut flow_set = HashSet::new();
    let mut reported: HashSet<(Id<DatasetDecl>, PlaceId, u8)> = HashSet::new();
    let mut queue: VecDeque<Carried> = VecDeque::new();
    let report = |code, dataset, message: &str, step, trail: &Trail, places: &Places| {
        let path: Vec<(Span, String)> =
            trail.path(step).into_iter().map(|(span, hop)| (span, hop.text(spec, places))).collect();
        violation(spec, code, dataset, message, &path)
    };
    for carried in entries {
        // Read where it lives: only residency and the cloud rule apply.
        match judge_read(&places, &datasets[carried.dataset.index()], carried.at.place) {
            Ok(()) => queue.push_back(carried),
            Err((code, message)) => {
                if reported.insert((carried.dataset, carried.at.place, code_rank(code))) {
                    diagnostics.push(report(code, carried.dataset, &message, carried.step, &trail, &places));
                }
            }
        }
    }
    while let Some(carried) = queue.pop_front() {
        if !seen.insert((carried.at, carried.dataset, carried.redacted)) {
            continue;
        }
        for &c in outgoing.get(&carried.at).map(Vec::as_slice).unwrap_or_default() {
            let carrier = &carriers[c];
            if carrier.only.is_some_and(|only| only != carried.dataset) {
                continue;
            }
            let data = &datasets[carried.dataset.index()];
            let verdict = judge(&places, data, carried.class, carrier.from.place, carrier.to.place, carrier.redact);
            match verdict {
                Err((code, message)) => {
                    if reported.insert((carried.dataset, carrier.to.place, code_rank(code))) {
                        let step = trail.push(Some(carried.step), carrier.span, carrier.hop);
                        diagnostics.push(report(code, carried.dataset, &message, step, &trail, &places));
                    }
                }
                Ok(because) => {
                    let (class, redacted) = if carrier.redact && carrier.from.place != carrier.to.place {
                        (carried.class.redacted(), carried.redacted || carried.class > Class::Internal)
                    } else {
                        (carried.class, carried.redacted)
                    };
                    let key = (carrier.from, carrier.to, carried.dataset, redacted);
                    if flow_set.insert(key) {
                        flows.push(DataFlow {
                            from: carrier.from.item,
                            from_place: carrier.from.place,
                            to: carrier.to.item,
                            to_place: carrier.to.place,
                            dataset: carried.dataset,
                            class,
                            redacted,
                            because,
                        });
                    }
                    if !seen.contains(&(carrier.to, carried.dataset, redacted)) {
                        let step = trail.push(Some(carried.step), carrier.span, carrier.hop);
                        queue.push_back(Carried { at: carrier.to, dataset: carried.dataset, class, redacted, step });
                    }
                }
            }
        }
    }
    flows.sort_by_key(|f| (f.from.0, f.from_place, f.to.0, f.to_place, spec.datasets[f.dataset].item.0, f.redacted));
    Flows { places, flows }
}

fn code_rank(code: sovereign_diagnostics::Code) -> u8 {
    code.id.as_bytes().last().copied().unwrap_or(0)
}

/// Adds the entry of `dataset` at `at`: directly, or from its ledger's site.
#[allow(clippy::too_many_arguments)]
fn entry(
    spec: &Spec,
    datasets: &[Dataset],
    carriers: &mut Vec<Carrier>,
    trail: &mut Trail,
    entries: &mut Vec<Carried>,
    dataset: Id<DatasetDecl>,
    at: Point,
    span: Span,
    hop: Hop,
) {
    let data = &datasets[dataset.index()];
    let declared_as = &spec.datasets[dataset];
    let declared = trail.push(None, declared_as.name.span, Hop::Declared { dataset });
    match data.home {
        Some(home) => {
            let ledger = declared_as.ledger.as_ref().map_or(declared_as.item, |l| spec.ledgers[l.value].item);
            let source = Point { item: ledger, place: home };
            // Only this dataset: the lake holds others that this reader does not read.
            carriers.push(Carrier { from: source, to: at, redact: false, span, hop, only: Some(dataset) });
            entries.push(Carried { at: source, dataset, class: data.class, redacted: false, step: declared });
        }
        None => {
            // Read where it lives: the reading site is its home. Still check the site.
            let step = trail.push(Some(declared), span, hop);
            entries.push(Carried { at, dataset, class: data.class, redacted: false, step });
        }
    }
}

/// Whether `data` may be read at `place` where it lives (no hop).
fn judge_read(places: &Places, data: &Dataset, place: PlaceId) -> Result<(), (sovereign_diagnostics::Code, String)> {
    let target = &places[place];
    if !target.jurisdiction.is_empty() && !data.residency.is_empty() && target.jurisdiction != data.residency {
        return Err((
            codes::RESIDENCY_VIOLATION,
            format!("must stay in {} but is read on {} in {}", data.residency, target.name, target.jurisdiction),
        ));
    }
    match data.class {
        Class::Restricted if target.tier == Tier::Cloud => Err((
            codes::RESTRICTED_LEAVES_SITE,
            format!("is restricted and is read on {}, in the cloud tier", target.name),
        )),
        Class::Confidential if target.tier == Tier::Cloud => Err((
            codes::CONFIDENTIAL_OFF_SERVER,
            format!("is confidential and is read on {}, in the cloud tier", target.name),
        )),
        _ => Ok(()),
    }
}

/// Whether `class` data of `data` may go from place `from` to place `to`, and why.
fn judge(
    places: &Places,
    data: &Dataset,
    class: Class,
    from: PlaceId,
    to: PlaceId,
    redact: bool,
) -> Result<Because, (sovereign_diagnostics::Code, String)> {
    let target = &places[to];
    if !target.jurisdiction.is_empty() && !data.residency.is_empty() && target.jurisdiction != data.residency {
        return Err((
            codes::RESIDENCY_VIOLATION,
            format!("must stay in {} but reaches {} in {}", data.residency, target.name, target.jurisdiction),
        ));
    }
    if from == to {
        return Ok(Because::SameSite);
    }
    match class {
        Class::Restricted if !redact => Err((
            codes::RESTRICTED_LEAVES_SITE,
            format!("is restricted and leaves site {} for {} without redaction", places[from].name, target.name),
        )),
        Class::Confidential if !redact && target.tier != Tier::Server => Err((
            codes::CONFIDENTIAL_OFF_SERVER,
            format!("is confidential and reaches {} ({} tier) without redaction", target.name, target.tier.word()),
        )),
        Class::Confidential if !redact => Ok(Because::ConfidentialToServer),
        Class::Restricted | Class::Confidential => Ok(Because::Redacted),
        Class::Internal => Ok(Because::Internal),
        Class::Public => Ok(Because::Public),
    }
}

fn violation(
    spec: &Spec,
    code: sovereign_diagnostics::Code,
    dataset: Id<DatasetDecl>,
    message: &str,
    path: &[(Span, String)],
) -> Diagnostic {
    let (last_span, last_label) = path.last().cloned().unwrap_or_default();
    let name = &spec.datasets[dataset].name.qualified;
    let mut d =
        Diagnostic::new(code, last_span, format!("dataset \"{name}\" {message}")).with_primary_label(last_label);
    for (span, label) in &path[..path.len().saturating_sub(1)] {
        d = d.with_label(*span, label.clone());
    }
    let help = if code == codes::RESIDENCY_VIOLATION {
        "keep the flow inside the dataset's jurisdiction: move the receiving workload to a site there, or remove the edge"
    } else {
        "redact on the hop that leaves (`redact=#true` on the fallback or export), move the receiving workload to a server-tier site, or lower the dataset's classification if it is wrong"
    };
    d.with_help(help)
}

/// Every dataset's class, residency and home, indexed like `spec.datasets`.
fn read_datasets(spec: &Spec, sites: &Sites) -> Vec<Dataset> {
    spec.datasets
        .values()
        .map(|d| Dataset {
            class: d.classification.value,
            residency: d
                .residency
                .as_ref()
                .map(|r| r.value.to_string())
                .or_else(|| sites.residency.clone())
                .unwrap_or_default(),
            home: d
                .ledger
                .as_ref()
                .and_then(|l| spec.ledgers[l.value].site.as_ref())
                .map(|s| PlaceId::of_site(s.value)),
        })
        .collect()
}

/// Where an export sends telemetry: `Some(Some(place))` an outside place or
/// another site, `Some(None)` in-cluster (stays on each site), `None` unknown
/// (reported when anything but public data would go there).
fn export_destination(
    export: &Export,
    places: &mut Places,
    diagnostics: &mut Vec<Diagnostic>,
    workload_points: &[Point],
) -> Option<Option<PlaceId>> {
    let service = export.destination.value.word();
    let region = export.region.as_ref().map(|r| &*r.value);
    let endpoint = export.endpoint.as_ref().map(|e| &e.value);
    // A hosted service (Logfire) is where its provider runs it, in the
    // region named: a `site=` or an endpoint cannot move it.
    let hosted = export.destination.value == ExportDestination::Logfire;
    if !hosted {
        if let Some(site) = &export.site {
            return Some(Some(PlaceId::of_site(site.value)));
        }
        if endpoint.is_some_and(|e| in_cluster(e.host())) {
            return Some(None);
        }
    }
    if let Some(region) = region {
        let name = format!("{service} ({region})");
        let found = places.iter().find(|(_, p)| p.name == name).map(|(id, _)| id);
        let place = match found {
            Some(id) => id,
            None => places.push(Place { name, tier: Tier::Cloud, jurisdiction: region.to_owned(), site: None }),
        };
        return Some(Some(place));
    }
    if !workload_points.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                codes::UNKNOWN_DESTINATION,
                export.span,
                format!(
                    "telemetry is exported to {}, but where that is is not declared",
                    endpoint.map_or(service, |e| e.as_str())
                ),
            )
            .with_primary_label("destination site and jurisdiction unknown")
            .with_help("give the export `site=` (a site of the fabric that hosts it) or `region=` (the jurisdiction of an outside service), or point it at an in-cluster address (`….svc.cluster.local`)"),
        );
    }
    None
}

/// An address inside the cluster the collector runs in: its host (parsed
/// as RFC 3986 authority by [`sovereign_model::Uri::host`], so a path,
/// query, fragment or userinfo cannot pass for one) is a Service name or
/// the loopback.
fn in_cluster(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    host.ends_with(".svc")
        || host.ends_with(".svc.cluster.local")
        || matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod uri_tests {
    use super::*;
    use sovereign_model::Uri;

    #[test]
    fn only_the_host_counts() {
        let schemes = ["http".to_owned(), "https".to_owned()];
        let inside = |text: &str| in_cluster(Uri::parse(text, &schemes).unwrap().host());
        assert!(inside("http://otel.obs.svc:4318/v1/traces"));
        assert!(inside("http://otel.obs.svc.cluster.local./"));
        assert!(inside("http://[::1]:4318"));
        for outside in [
            "https://collector.example.com/#.svc",
            "https://collector.example.com/x.svc",
            "https://collector.example.com?h=a.svc",
            "https://a.svc@collector.example.com",
            "https://evil-svc/",
            "https://a.svc.example.com",
        ] {
            assert!(!inside(outside), "{outside}");
        }
    }
}
