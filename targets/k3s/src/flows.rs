//! NetworkPolicies that allow exactly the flows the sovereignty analysis
//! proved, on top of each namespace's default deny.
//!
//! A proved `DataFlow` is a hop of a dataset between two workloads; the
//! network connection behind it goes from the client to the server:
//! - a serve and the vector store it `uses` (both directions of data):
//!   serve → Qdrant's HTTP and gRPC ports;
//! - an eval and its target: eval worker → the serve's port;
//! - a ledger read: eval worker → the catalog's host;
//! - an export: the collector on the workload's cluster → the exporter's host;
//! - an edge fallback: a device → the serve's port.
//!
//! Plus telemetry inside each cluster (allowed by construction: it does
//! not leave the site): every workload → the collector's OTLP ports.
//!
//! Each connection inside one cluster is two policies: egress from the
//! client's pods and ingress to the server's. A host outside the cluster
//! (Logfire, a catalog, a device, another site's cluster) cannot be named
//! by a NetworkPolicy, which knows only pods and IP blocks: the rule then
//! opens the port to any address, for the client's pods only, and its
//! `sovereign.dev/why` annotation says so. A flow the analysis did not
//! allow gets no rule.
//!
//! Pod labels: sovereign's own (`sovereign.dev/serve`, `sovereign.dev/eval`)
//! and the charts' selector labels (`app.kubernetes.io/name` and
//! `app.kubernetes.io/instance`, the `selectorLabels` helper of the Qdrant
//! and OpenTelemetry Collector charts).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use sovereign_analyze::Analysis;
use sovereign_analyze::flows::Places;
use sovereign_desired::DesiredState;
use sovereign_desired::modules::{Module, SERVE_PORT, namespace_name};
use sovereign_model::{Decl, Spec};

use crate::labels::{Context, object_name, workload_label};
use crate::namespaces::namespace_id;
use crate::objects::Spec as Rest;

/// Pods of one workload: their namespace and labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pods {
    module: Module,
    labels: BTreeMap<&'static str, String>,
    /// For names: `serve-chat`.
    short: String,
}

/// Where a connection goes: pods on the same cluster, or a host outside it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Pods(Pods),
    /// Any pod of a namespace sovereign does not manage (an in-cluster
    /// exporter's Service, `name.namespace.svc`): its pods' labels are unknown.
    Namespace(String),
    Outside(String),
}

/// One allowed connection on one cluster; the reasons are kept beside it
/// (several datasets may flow over one connection).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Connection {
    site: usize,
    client: Peer,
    server: Peer,
    ports: Vec<u16>,
}

fn serve_pods(spec: &Spec, serve: sovereign_model::Id<sovereign_model::Serve>) -> Pods {
    let name = &spec.serves[serve].name.qualified;
    Pods {
        module: Module::Kinetic,
        labels: BTreeMap::from([("sovereign.dev/serve", workload_label(name))]),
        short: format!("serve-{}", sovereign_helm::label(name)),
    }
}

fn chart_pods(module: Module, chart: &str, release: String, short: String) -> Pods {
    Pods {
        module,
        labels: BTreeMap::from([("app.kubernetes.io/name", chart.to_owned()), ("app.kubernetes.io/instance", release)]),
        short,
    }
}

fn eval_pods(name: &str) -> Pods {
    Pods {
        module: Module::Alchemist,
        labels: BTreeMap::from([("sovereign.dev/eval", workload_label(name))]),
        short: format!("eval-{}", sovereign_helm::label(name)),
    }
}

fn host_port(uri: &sovereign_model::Uri) -> (String, u16) {
    let authority = uri.authority();
    let default = if uri.scheme() == "http" { 80 } else { 443 };
    match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (host.to_owned(), port.parse().unwrap_or(default)),
        _ => (uri.host().to_owned(), default),
    }
}

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    let places: &Places = &analysis.flows.places;
    let site_of = |place| places[place].site.map(|s: sovereign_analyze::view::SiteId| s.index());
    let collector = |observe: &sovereign_model::Observe| {
        let release = sovereign_helm::collector_release(&observe.name.qualified);
        chart_pods(Module::Autopilot, "opentelemetry-collector", release.clone(), release)
    };
    let mut connections: BTreeMap<Connection, BTreeSet<String>> = BTreeMap::new();
    for flow in &analysis.flows.flows {
        let (Some(from), Some(to)) = (spec.decl(flow.from), spec.decl(flow.to)) else { continue };
        let (from_site, to_site) = (site_of(flow.from_place), site_of(flow.to_place));
        // Every rule of a flow is on the cluster of one of its ends.
        if !from_site.is_some_and(|s| context.wants(s)) && !to_site.is_some_and(|s| context.wants(s)) {
            continue;
        }
        let because = flow.because(places);
        let dataset = &spec.datasets[flow.dataset].name.qualified;
        let mut add = |site: Option<usize>, client: Peer, server: Peer, ports: Vec<u16>, what: String| {
            if let Some(site) = site {
                let why = format!("{what}: dataset \"{dataset}\" ({because})");
                connections.entry(Connection { site, client, server, ports }).or_default().insert(why);
            }
        };
        let across = |site: Option<usize>, other: Option<usize>, pods: Pods| match (site, other) {
            (Some(a), Some(b)) if a == b => Peer::Pods(pods),
            _ => Peer::Outside(format!("the cluster of {}", places[flow.to_place].name)),
        };
        match (from, to) {
            (Decl::Serve(serve), Decl::VectorStore(store)) | (Decl::VectorStore(store), Decl::Serve(serve)) => {
                let serve_site = if matches!(from, Decl::Serve(_)) { from_site } else { to_site };
                let store_site = if matches!(from, Decl::Serve(_)) { to_site } else { from_site };
                let name = &spec.vectorstores[store].name.qualified;
                let release = sovereign_helm::label(name);
                let store_pods = chart_pods(Module::Kinetic, "qdrant", release.clone(), format!("qdrant-{release}"));
                let ports = vec![sovereign_helm::QDRANT_HTTP_PORT, sovereign_helm::QDRANT_HTTP_PORT + 1];
                let what = format!("serve \"{}\" uses vectorstore \"{name}\"", spec.serves[serve].name.qualified);
                add(
                    serve_site,
                    Peer::Pods(serve_pods(spec, serve)),
                    across(serve_site, store_site, store_pods.clone()),
                    ports.clone(),
                    what.clone(),
                );
                if serve_site != store_site {
                    add(
                        store_site,
                        Peer::Outside(format!("serve \"{}\" on another cluster", spec.serves[serve].name.qualified)),
                        Peer::Pods(store_pods),
                        ports,
                        what,
                    );
                }
            }
            (Decl::Eval(eval), Decl::Serve(serve)) => {
                let name = &spec.evals[eval].name.qualified;
                let what =
                    format!("eval \"{name}\" sends its dataset to serve \"{}\"", spec.serves[serve].name.qualified);
                add(
                    from_site,
                    Peer::Pods(eval_pods(name)),
                    across(from_site, to_site, serve_pods(spec, serve)),
                    vec![SERVE_PORT],
                    what.clone(),
                );
                if from_site != to_site {
                    add(
                        to_site,
                        Peer::Outside(format!("eval \"{name}\" on another cluster")),
                        Peer::Pods(serve_pods(spec, serve)),
                        vec![SERVE_PORT],
                        what,
                    );
                }
            }
            (Decl::Edge(edge), Decl::Serve(serve)) => {
                let edge = &spec.edges[edge];
                let what = format!(
                    "the devices of edge \"{}\" fall back to serve \"{}\"",
                    edge.name.qualified, spec.serves[serve].name.qualified
                );
                add(
                    to_site,
                    Peer::Outside(format!("devices of edge \"{}\"", edge.name.qualified)),
                    Peer::Pods(serve_pods(spec, serve)),
                    vec![SERVE_PORT],
                    what,
                );
            }
            (Decl::Ledger(ledger), Decl::Eval(eval)) => {
                let ledger = &spec.ledgers[ledger];
                let Some(uri) = &ledger.uri else { continue };
                let (host, port) = host_port(&uri.value);
                let name = &spec.evals[eval].name.qualified;
                let what = format!("eval \"{name}\" reads ledger \"{}\" at {host}", ledger.name.qualified);
                add(to_site, Peer::Pods(eval_pods(name)), Peer::Outside(host), vec![port], what);
            }
            (_, Decl::Export(export)) => {
                let export_decl = spec.export(export);
                let observe = &spec.observes[export.parent];
                let (host, port) = match (&export_decl.endpoint, export_decl.destination.value) {
                    (Some(uri), _) => host_port(&uri.value),
                    (None, sovereign_model::ExportDestination::Logfire) => {
                        let region = export_decl.region.as_ref().map_or("eu", |r| &*r.value);
                        (format!("logfire-{region}.pydantic.dev"), 443)
                    }
                    (None, _) => continue,
                };
                let what = format!("observe \"{}\" exports to {host}", observe.name.qualified);
                add(from_site, Peer::Pods(collector(observe)), Peer::Outside(host), vec![port], what);
            }
            _ => {}
        }
    }
    // Telemetry inside each cluster: every workload's pods → the collector,
    // and the collector → an exporter that is a Service of the same cluster
    // (`name.namespace.svc[.cluster.local]`; the analysis keeps these on-site).
    for observe in spec.observes.values() {
        for export in &observe.exports {
            let Some(uri) = &export.endpoint else { continue };
            let (host, port) = host_port(&uri.value);
            let labels: Vec<&str> = host.split('.').collect();
            let in_cluster = matches!(labels.as_slice(), [_, _, "svc"] | [_, _, "svc", "cluster", "local"]);
            if !in_cluster {
                continue;
            }
            for site in analysis.sites.sites.iter().filter(|s| s.has_cluster && context.wants(s.id.index())) {
                let why =
                    format!("observe \"{}\" exports to {host}, a Service of the same cluster", observe.name.qualified);
                let connection = Connection {
                    site: site.id.index(),
                    client: Peer::Pods(collector(observe)),
                    server: Peer::Namespace(labels[1].to_owned()),
                    ports: vec![port],
                };
                connections.entry(connection).or_default().insert(why);
            }
        }
        let mut clients: BTreeSet<(usize, Pods)> = BTreeSet::new();
        for (id, serve) in spec.serves.iter() {
            for site in analysis.workload_sites.sites(serve.item).filter(|s| context.wants(s.index())) {
                clients.insert((site.index(), serve_pods(spec, id)));
            }
        }
        for store in spec.vectorstores.values() {
            for site in analysis.workload_sites.sites(store.item).filter(|s| context.wants(s.index())) {
                let release = sovereign_helm::label(&store.name.qualified);
                clients.insert((
                    site.index(),
                    chart_pods(Module::Kinetic, "qdrant", release.clone(), format!("qdrant-{release}")),
                ));
            }
        }
        for (site, pods) in clients {
            if !analysis.sites.sites[site].has_cluster {
                continue;
            }
            let why = format!("telemetry to observe \"{}\"'s collector stays on its cluster", observe.name.qualified);
            let ports = vec![sovereign_helm::OTLP_GRPC_PORT, sovereign_helm::OTLP_HTTP_PORT];
            let connection =
                Connection { site, client: Peer::Pods(pods), server: Peer::Pods(collector(observe)), ports };
            connections.entry(connection).or_default().insert(why);
        }
    }
    for (connection, whys) in connections {
        if !context.wants(connection.site) {
            continue;
        }
        let why = whys.into_iter().collect::<Vec<_>>().join("; ");
        policies(&connection, &why, analysis, context, state);
    }
}

/// The peers of a rule (`to` or `from`).
fn peer_rule(peer: &Peer, fabric: &str) -> Value {
    match peer {
        Peer::Pods(pods) => json!([{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace_name(fabric, pods.module) } },
            "podSelector": { "matchLabels": pods.labels },
        }]),
        Peer::Namespace(namespace) => {
            json!([{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } } }])
        }
        // Any address, IPv4 and IPv6: NetworkPolicy cannot name a host (see the annotation).
        Peer::Outside(_) => any_address(),
    }
}

/// A direction of traffic a NetworkPolicy rule allows.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Egress,
    Ingress,
}

/// A NetworkPolicy spec of one rule, without its `podSelector`: egress
/// `to` the peers or ingress `from` them, on the ports. Built by putting
/// values in place, not by interpolating them into `json!` (which would
/// serialize each into a new tree).
pub(crate) fn one_rule(direction: Direction, peers: Value, ports: Value) -> Value {
    let (kind, key, peer_key) = match direction {
        Direction::Egress => ("Egress", "egress", "to"),
        Direction::Ingress => ("Ingress", "ingress", "from"),
    };
    let mut rule = Value::Object(serde_json::Map::new());
    rule[peer_key] = peers;
    rule["ports"] = ports;
    let mut spec = json!({ "policyTypes": [kind] });
    spec[key] = Value::Array(vec![rule]);
    spec
}

/// Every address of either family, for a peer a NetworkPolicy cannot name.
pub(crate) fn any_address() -> Value {
    json!([{ "ipBlock": { "cidr": "0.0.0.0/0" } }, { "ipBlock": { "cidr": "::/0" } }])
}

fn short(peer: &Peer) -> String {
    match peer {
        Peer::Pods(pods) => pods.short.clone(),
        Peer::Namespace(namespace) => format!("namespace-{namespace}"),
        Peer::Outside(host) => sovereign_helm::label(host),
    }
}

fn policies(connection: &Connection, why: &str, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    let site: &Arc<str> = &analysis.sites.sites[connection.site].name;
    let ports: Vec<Value> = connection.ports.iter().map(|p| json!({ "protocol": "TCP", "port": p })).collect();
    let name = |direction: &str| {
        object_name(&format!("{direction}-{}-to-{}", short(&connection.client), short(&connection.server)))
    };
    let outside = |peer: &Peer| match peer {
        Peer::Outside(what) => format!(
            " {what} is outside this cluster and a NetworkPolicy can name only pods and IP blocks: the port is open to any address, for these pods only"
        ),
        Peer::Pods(_) | Peer::Namespace(_) => String::new(),
    };
    let mut add = |pods: &Pods, name: String, rest: Value, why: String| {
        let namespace = namespace_name(&context.fabric, pods.module);
        let mut metadata = context.metadata(&name, Some(&namespace), None);
        metadata.annotations.insert("sovereign.dev/why", why);
        let mut policy =
            context.object(site, "networking.k8s.io/v1", "NetworkPolicy", &metadata, Rest { spec: rest }, None);
        policy.depends_on.insert(namespace_id(site, &namespace));
        state.add(policy);
    };
    if let Peer::Pods(client) = &connection.client {
        let peers = peer_rule(&connection.server, &context.fabric);
        let mut rest = one_rule(Direction::Egress, peers, Value::Array(ports.clone()));
        rest["podSelector"] = json!({ "matchLabels": client.labels });
        add(client, name("egress"), rest, format!("{why}.{}", outside(&connection.server)));
    }
    if let Peer::Pods(server) = &connection.server {
        let peers = peer_rule(&connection.client, &context.fabric);
        let mut rest = one_rule(Direction::Ingress, peers, Value::Array(ports));
        rest["podSelector"] = json!({ "matchLabels": server.labels });
        add(server, name("ingress"), rest, format!("{why}.{}", outside(&connection.client)));
    }
}
