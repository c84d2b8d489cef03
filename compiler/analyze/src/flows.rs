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

use std::collections::{BTreeMap, VecDeque};

use hashbrown::{HashMap, HashSet};

use sovereign_diagnostics::{Diagnostic, Span, codes};
use sovereign_ir::{Fabric, Item, ItemId, ValueKind};

use crate::capacity::ServePlan;
use crate::view::{Sites, Tier, bool_prop, children, name_of, name_span, ref_prop, ref_target, str_prop};

/// A data classification, ordered from least to most sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl Class {
    fn parse(text: &str) -> Class {
        match text {
            "public" => Class::Public,
            "internal" => Class::Internal,
            "confidential" => Class::Confidential,
            _ => Class::Restricted,
        }
    }

    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Class::Public => "public",
            Class::Internal => "internal",
            Class::Confidential => "confidential",
            Class::Restricted => "restricted",
        }
    }

    /// What a redacting hop leaves of it.
    fn redacted(self) -> Class {
        self.min(Class::Internal)
    }
}

/// A place data can be: a site of the fabric or an outside service.
#[derive(Clone, Debug)]
pub struct Place {
    pub name: String,
    pub tier: Tier,
    pub jurisdiction: String,
    /// The site, when the place is one of the fabric's.
    pub site: Option<usize>,
}

/// One allowed hop of one dataset: the K3s target turns these into NetworkPolicies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFlow {
    pub from: ItemId,
    pub from_place: usize,
    pub to: ItemId,
    pub to_place: usize,
    pub dataset: ItemId,
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
    pub fn because(&self, places: &[Place]) -> String {
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
    pub places: Vec<Place>,
    pub flows: Vec<DataFlow>,
}

/// A workload at a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Point {
    item: ItemId,
    place: usize,
}

/// An edge that carries data.
struct Carrier {
    from: Point,
    to: Point,
    redact: bool,
    span: Span,
    hop: Hop,
}

/// What a step of a path is; put into words only when a violation is reported.
#[derive(Clone, Copy)]
enum Hop {
    Declared { dataset: ItemId },
    EdgeReads { edge: ItemId, place: usize },
    EvalReads { eval: ItemId, place: usize },
    FallsBack { serve: ItemId, place: usize, redact: bool },
    SentForEvaluation { serve: ItemId, place: usize },
    Stored { store: ItemId, place: usize },
    Retrieved { serve: ItemId, place: usize },
    Exported { place: usize, redact: bool },
}

impl Hop {
    fn text(self, fabric: &Fabric, places: &[Place], datasets: &HashMap<ItemId, Dataset>) -> String {
        let redacted = |r: bool| if r { ", redacted" } else { "" };
        match self {
            Hop::Declared { dataset } => format!(
                "dataset \"{}\" is {}",
                name_of(fabric, dataset),
                datasets.get(&dataset).map_or("", |d| d.class.word())
            ),
            Hop::EdgeReads { edge, place } => {
                format!("edge \"{}\" reads it on site {}", name_of(fabric, edge), places[place].name)
            }
            Hop::EvalReads { eval, place } => {
                format!("eval \"{}\" reads it on site {}", name_of(fabric, eval), places[place].name)
            }
            Hop::FallsBack { serve, place, redact } => format!(
                "falls back to serve \"{}\" on site {}{}",
                name_of(fabric, serve),
                places[place].name,
                redacted(redact)
            ),
            Hop::SentForEvaluation { serve, place } => {
                format!("sent to serve \"{}\" under evaluation on site {}", name_of(fabric, serve), places[place].name)
            }
            Hop::Stored { store, place } => {
                format!("stored in vectorstore \"{}\" on site {}", name_of(fabric, store), places[place].name)
            }
            Hop::Retrieved { serve, place } => {
                format!("retrieved by serve \"{}\" on site {}", name_of(fabric, serve), places[place].name)
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
    dataset: ItemId,
    class: Class,
    redacted: bool,
    /// Its last step in the [`Trail`].
    step: u32,
}

struct Dataset {
    class: Class,
    residency: String,
    /// The ledger's site, where the data lives, if declared.
    home: Option<usize>,
}

/// Follows every dataset along every carrier and checks each hop.
pub fn analyze(
    fabric: &Fabric,
    sites: &Sites,
    serves: &[ServePlan],
    stores: &BTreeMap<ItemId, usize>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Flows {
    let mut places: Vec<Place> = sites
        .sites
        .iter()
        .enumerate()
        .map(|(i, s)| Place {
            name: s.name.to_string(),
            tier: s.tier,
            jurisdiction: s.jurisdiction.clone(),
            site: Some(i),
        })
        .collect();
    let datasets = read_datasets(fabric, sites);
    let sites_of = Workloads::new(fabric, sites, serves, stores);

    let mut carriers: Vec<Carrier> = Vec::new();
    let mut entries: Vec<Carried> = Vec::new();
    let mut trail = Trail::default();
    // Entries: edge reads and eval datasets.
    for (edge_id, edge) in fabric.of_kind("edge") {
        let Some(site) = sites_of.site(edge_id) else { continue };
        let at = Point { item: edge_id, place: site };
        for (_, reads) in children(fabric, edge, "reads") {
            for val in &reads.args {
                if let Some(dataset) = ref_target(val) {
                    let hop = Hop::EdgeReads { edge: edge_id, place: site };
                    entry(fabric, &datasets, &mut carriers, &mut trail, &mut entries, dataset, at, val.span, hop);
                }
            }
            // fallback: what the edge reads goes to the serve.
        }
        for (_, fallback) in children(fabric, edge, "fallback") {
            let Some(target) = fallback.args.first().and_then(ref_target) else { continue };
            let redact = bool_prop(fallback, "redact").unwrap_or(false);
            for to_site in sites_of.sites(target) {
                carriers.push(Carrier {
                    from: at,
                    to: Point { item: target, place: to_site },
                    redact,
                    span: fallback.args[0].span,
                    hop: Hop::FallsBack { serve: target, place: to_site, redact },
                });
            }
        }
    }
    for (eval_id, eval) in fabric.of_kind("eval") {
        let Some(site) = sites_of.site(eval_id) else { continue };
        let at = Point { item: eval_id, place: site };
        if let (Some(dataset), Some(val)) = (ref_prop(eval, "dataset"), eval.prop("dataset")) {
            let hop = Hop::EvalReads { eval: eval_id, place: site };
            entry(fabric, &datasets, &mut carriers, &mut trail, &mut entries, dataset, at, val.span, hop);
        }
        if let (Some(target), Some(val)) = (ref_prop(eval, "target"), eval.prop("target")) {
            for to_site in sites_of.sites(target) {
                carriers.push(Carrier {
                    from: at,
                    to: Point { item: target, place: to_site },
                    redact: false,
                    span: val.span,
                    hop: Hop::SentForEvaluation { serve: target, place: to_site },
                });
            }
        }
    }
    // serve uses: both ways.
    for plan in serves {
        let serve = fabric.item(plan.serve);
        for (_, uses) in children(fabric, serve, "uses") {
            for val in &uses.args {
                let Some(store) = ref_target(val) else { continue };
                for from_site in sites_of.sites(plan.serve) {
                    for to_site in sites_of.sites(store) {
                        let a = Point { item: plan.serve, place: from_site };
                        let b = Point { item: store, place: to_site };
                        carriers.push(Carrier {
                            from: a,
                            to: b,
                            redact: false,
                            span: val.span,
                            hop: Hop::Stored { store, place: to_site },
                        });
                        carriers.push(Carrier {
                            from: b,
                            to: a,
                            redact: false,
                            span: val.span,
                            hop: Hop::Retrieved { serve: plan.serve, place: from_site },
                        });
                    }
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
        points.into_iter().filter(|p| places[p.place].site.is_some_and(|s| sites.sites[s].has_cluster)).collect()
    };
    for (_, observe) in fabric.of_kind("observe") {
        for (export_id, export) in children(fabric, observe, "export") {
            let Some(destination) = export_destination(sites, export, &mut places, diagnostics, &workload_points)
            else {
                continue;
            };
            let redact = bool_prop(export, "redact").unwrap_or(false);
            for &from in &workload_points {
                let to_place = destination.unwrap_or(from.place);
                if destination.is_none() {
                    // In-cluster: stays on each site.
                    continue;
                }
                carriers.push(Carrier {
                    from,
                    to: Point { item: export_id, place: to_place },
                    redact,
                    span: export.keyword_span,
                    hop: Hop::Exported { place: to_place, redact },
                });
            }
        }
    }

    // Breadth first from every entry; the first path to reach a state is a shortest one.
    let mut outgoing: HashMap<Point, Vec<usize>> = HashMap::new();
    for (i, c) in carriers.iter().enumerate() {
        outgoing.entry(c.from).or_default().push(i);
    }
    let mut seen: HashSet<(Point, ItemId, bool)> = HashSet::new();
    let mut flows: Vec<DataFlow> = Vec::new();
    let mut flow_set = HashSet::new();
    let mut reported: HashSet<(ItemId, usize, u8)> = HashSet::new();
    let mut queue: VecDeque<Carried> = VecDeque::new();
    let report = |code, dataset, message: &str, step, trail: &Trail, places: &[Place]| {
        let path: Vec<(Span, String)> =
            trail.path(step).into_iter().map(|(span, hop)| (span, hop.text(fabric, places, &datasets))).collect();
        violation(fabric, code, dataset, message, &path)
    };
    for carried in entries {
        // Read where it lives: only residency and the cloud rule apply.
        match judge_read(&places, &datasets[&carried.dataset], carried.at.place) {
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
            let data = &datasets[&carried.dataset];
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
    flows.sort_by_key(|f| (f.from.0, f.from_place, f.to.0, f.to_place, f.dataset.0, f.redacted));
    Flows { places, flows }
}

fn code_rank(code: sovereign_diagnostics::Code) -> u8 {
    code.id.as_bytes().last().copied().unwrap_or(0)
}

/// Adds the entry of `dataset` at `at`: directly, or from its ledger's site.
#[allow(clippy::too_many_arguments)]
fn entry(
    fabric: &Fabric,
    datasets: &HashMap<ItemId, Dataset>,
    carriers: &mut Vec<Carrier>,
    trail: &mut Trail,
    entries: &mut Vec<Carried>,
    dataset: ItemId,
    at: Point,
    span: Span,
    hop: Hop,
) {
    let Some(data) = datasets.get(&dataset) else { return };
    let item = fabric.item(dataset);
    let declared = trail.push(None, name_span(item), Hop::Declared { dataset });
    match data.home {
        Some(home) => {
            let ledger = ref_prop(item, "ledger").unwrap_or(dataset);
            let source = Point { item: ledger, place: home };
            carriers.push(Carrier { from: source, to: at, redact: false, span, hop });
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
fn judge_read(places: &[Place], data: &Dataset, place: usize) -> Result<(), (sovereign_diagnostics::Code, String)> {
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
    places: &[Place],
    data: &Dataset,
    class: Class,
    from: usize,
    to: usize,
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
    fabric: &Fabric,
    code: sovereign_diagnostics::Code,
    dataset: ItemId,
    message: &str,
    path: &[(Span, String)],
) -> Diagnostic {
    let (last_span, last_label) = path.last().cloned().unwrap_or_default();
    let mut d = Diagnostic::new(code, last_span, format!("dataset \"{}\" {message}", name_of(fabric, dataset)))
        .with_primary_label(last_label);
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

fn read_datasets(fabric: &Fabric, sites: &Sites) -> HashMap<ItemId, Dataset> {
    let mut out = HashMap::new();
    for (id, item) in fabric.of_kind("dataset") {
        let home = ref_prop(item, "ledger").and_then(|l| ref_prop(fabric.item(l), "site")).and_then(|s| sites.by_id(s));
        out.insert(
            id,
            Dataset {
                class: Class::parse(str_prop(item, "classification").unwrap_or("restricted")),
                residency: str_prop(item, "residency")
                    .map(str::to_owned)
                    .or_else(|| sites.residency.clone())
                    .unwrap_or_default(),
                home,
            },
        );
    }
    out
}

/// Where an export sends telemetry: `Some(Some(place))` an outside place or
/// another site, `Some(None)` in-cluster (stays on each site), `None` unknown
/// (reported when anything but public data would go there).
fn export_destination(
    sites: &Sites,
    export: &Item,
    places: &mut Vec<Place>,
    diagnostics: &mut Vec<Diagnostic>,
    workload_points: &[Point],
) -> Option<Option<usize>> {
    let service = export.args.first().and_then(|v| match &v.kind {
        ValueKind::Str(s) => Some(s.as_str()),
        _ => None,
    })?;
    let region = str_prop(export, "region");
    let endpoint = export.prop("endpoint").and_then(|v| match &v.kind {
        ValueKind::Uri(uri) => Some(uri.as_str()),
        _ => None,
    });
    // A hosted service (Logfire) is where its provider runs it, in the
    // region named: a `site=` or an endpoint cannot move it.
    let hosted = service == "logfire";
    if !hosted {
        if let Some(site) = ref_prop(export, "site").and_then(|s| sites.by_id(s)) {
            return Some(Some(site));
        }
        if endpoint.is_some_and(in_cluster) {
            return Some(None);
        }
    }
    if let Some(region) = region {
        let name = format!("{service} ({region})");
        let place = places.iter().position(|p| p.name == name).unwrap_or_else(|| {
            places.push(Place { name, tier: Tier::Cloud, jurisdiction: region.to_owned(), site: None });
            places.len() - 1
        });
        return Some(Some(place));
    }
    if !workload_points.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                codes::UNKNOWN_DESTINATION,
                export.keyword_span,
                format!("telemetry is exported to {}, but where that is is not declared", endpoint.unwrap_or(service)),
            )
            .with_primary_label("destination site and jurisdiction unknown")
            .with_help("give the export `site=` (a site of the fabric that hosts it) or `region=` (the jurisdiction of an outside service), or point it at an in-cluster address (`….svc.cluster.local`)"),
        );
    }
    None
}

/// An address inside the cluster the collector runs in: its host (parsed
/// as RFC 3986 authority, so a path, query, fragment or userinfo cannot pass
/// for one) is a Service name or the loopback.
fn in_cluster(endpoint: &str) -> bool {
    let host = uri_host(endpoint).to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    host.ends_with(".svc")
        || host.ends_with(".svc.cluster.local")
        || matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// The host of `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
fn uri_host(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        // An IPv6 literal, with its brackets.
        return host_port.split_once(']').map_or(host_port, |(h, _)| &host_port[..=h.len()]);
    }
    host_port.split(':').next().unwrap_or_default()
}

/// The sites of workloads that are not placed by capacity: edges, evals,
/// vector stores; and of serves, from their placements.
struct Workloads {
    /// The first (usually only) site of each workload, by item; `u32::MAX` when unknown.
    first: Vec<u32>,
    /// All the sites of workloads on several (serves placed on several sites).
    several: HashMap<ItemId, Vec<usize>>,
}

impl Workloads {
    fn new(fabric: &Fabric, sites: &Sites, serves: &[ServePlan], stores: &BTreeMap<ItemId, usize>) -> Self {
        let mut w = Workloads { first: vec![u32::MAX; fabric.items.len()], several: HashMap::new() };
        let set = |w: &mut Workloads, id: ItemId, site: usize| {
            w.first[id.0 as usize] = u32::try_from(site).unwrap_or(u32::MAX);
        };
        for plan in serves {
            let mut placed: Vec<usize> = plan.placements.iter().map(|p| p.site).collect();
            placed.sort_unstable();
            placed.dedup();
            if let Some(&first) = placed.first() {
                set(&mut w, plan.serve, first);
            }
            if placed.len() > 1 {
                w.several.insert(plan.serve, placed);
            }
        }
        for (id, item) in fabric.of_kind("edge") {
            if let Some((site, _)) = ref_prop(item, "fleet").and_then(|f| sites.fleet(f)) {
                set(&mut w, id, site);
            }
        }
        for (id, item) in fabric.of_kind("temporal") {
            if let Some(site) = ref_prop(item, "site").and_then(|s| sites.by_id(s)) {
                set(&mut w, id, site);
            }
        }
        for (id, item) in fabric.of_kind("eval") {
            let runs_on =
                children(fabric, item, "runs-on").next().and_then(|(_, r)| r.args.first()).and_then(ref_target);
            if let Some(site) = runs_on.and_then(|t| w.site(t)) {
                set(&mut w, id, site);
            }
        }
        for (&id, &site) in stores {
            set(&mut w, id, site);
        }
        w
    }

    fn site(&self, id: ItemId) -> Option<usize> {
        Some(self.first[id.0 as usize]).filter(|&s| s != u32::MAX).map(|s| s as usize)
    }

    /// Every site of a workload, without allocating for the usual single one.
    fn sites(&self, id: ItemId) -> impl Iterator<Item = usize> + '_ {
        let several = self.several.get(&id);
        let single = if several.is_none() { self.site(id) } else { None };
        several.into_iter().flatten().copied().chain(single)
    }
}

#[cfg(test)]
mod uri_tests {
    use super::*;

    #[test]
    fn only_the_host_counts() {
        assert!(in_cluster("http://otel.obs.svc:4318/v1/traces"));
        assert!(in_cluster("http://otel.obs.svc.cluster.local./"));
        assert!(in_cluster("http://[::1]:4318"));
        for outside in [
            "https://collector.example.com/#.svc",
            "https://collector.example.com/x.svc",
            "https://collector.example.com?h=a.svc",
            "https://a.svc@collector.example.com",
            "https://evil-svc/",
            "https://a.svc.example.com",
        ] {
            assert!(!in_cluster(outside), "{outside}");
        }
    }
}
