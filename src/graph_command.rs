//! `sovereign graph`: the resource DAG as Graphviz DOT, Mermaid, JSON, or
//! SVG through Graphviz's `dot` when it is on the PATH. Tiers and sites are
//! clusters; each kind of resource has its own shape.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};

use serde_json::json;
use sovereign_analyze::Analysis;
use sovereign_analyze::graph::{Resource, ResourceKind};
use sovereign_analyze::view::{SiteId, Tier};
use sovereign_diagnostics::{Format, render};

use crate::check_command::{load, render_config};
use crate::{GraphArgs, GraphFormat};

pub(crate) fn run(args: &GraphArgs) -> ExitCode {
    let config = render_config(args.color);
    let loaded = match load(&args.spec, args.stdlib.as_deref(), config, sovereign_analyze::Keep::Ir) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let checked = &loaded;
    let Some(analysis) = &loaded.analysis else {
        let _ = write!(std::io::stderr(), "{}", render(&checked.diagnostics, &checked.sources, Format::Human, config));
        let _ = writeln!(std::io::stderr(), "error: the spec has errors; fix them to see its graph");
        return ExitCode::from(1);
    };
    if analysis.graph.waves.is_empty() && !analysis.graph.resources.is_empty() {
        // A cycle: the graph is still drawn, and the diagnostic says where.
        let _ = write!(std::io::stderr(), "{}", render(&checked.diagnostics, &checked.sources, Format::Human, config));
    }
    let output = match args.format {
        GraphFormat::Dot => dot(analysis),
        GraphFormat::Mermaid => mermaid(analysis),
        GraphFormat::Json => json_graph(analysis),
        GraphFormat::Svg => match svg(&dot(analysis)) {
            Ok(svg) => svg,
            Err(message) => {
                let _ = writeln!(std::io::stderr(), "error: {message}");
                return ExitCode::from(2);
            }
        },
    };
    let _ = std::io::stdout().write_all(output.as_bytes());
    ExitCode::SUCCESS
}

/// The wave of each resource (0 when there is a cycle).
fn wave_of(analysis: &Analysis) -> Vec<usize> {
    let mut wave = vec![0; analysis.graph.resources.len()];
    for (w, members) in analysis.graph.waves.iter().enumerate() {
        for &r in members {
            wave[r.index()] = w + 1;
        }
    }
    wave
}

fn label(r: &Resource) -> String {
    match &r.id.qualifier {
        Some(q) => format!("{}\\n{}/{q}", r.kind.word(), r.id.name),
        None => format!("{}\\n{}", r.kind.word(), r.id.name),
    }
}

fn dot_shape(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cluster => "box3d",
        ResourceKind::MigLayout => "component",
        ResourceKind::TemporalCluster => "cylinder",
        ResourceKind::TemporalNamespace => "folder",
        ResourceKind::Collector => "hexagon",
        ResourceKind::VectorStore => "cylinder",
        ResourceKind::Serve => "box",
        ResourceKind::Eval => "diamond",
        ResourceKind::EdgeBundle => "note",
    }
}

/// The resources of one site (`None`: not on a site), by index.
type SiteGroup = (Option<SiteId>, Vec<usize>);

/// Resources grouped by tier, then site; resources without a site last.
fn grouped(analysis: &Analysis) -> Vec<(Option<Tier>, Vec<SiteGroup>)> {
    let sites = &analysis.sites;
    let mut groups: Vec<(Option<Tier>, Vec<SiteGroup>)> = Vec::new();
    for tier in [Some(Tier::Cloud), Some(Tier::Server), Some(Tier::Device), None] {
        let mut by_site: Vec<SiteGroup> = Vec::new();
        let site_list: Vec<Option<SiteId>> = match tier {
            Some(t) => sites.ids().filter(|&s| sites[s].tier == t).map(Some).collect(),
            None => vec![None],
        };
        for site in site_list {
            let members: Vec<usize> =
                (0..analysis.graph.resources.len()).filter(|&r| analysis.graph.resources[r].site == site).collect();
            if !members.is_empty() {
                by_site.push((site, members));
            }
        }
        if !by_site.is_empty() {
            groups.push((tier, by_site));
        }
    }
    groups
}

fn dot(analysis: &Analysis) -> String {
    let graph = &analysis.graph;
    let waves = wave_of(analysis);
    let mut out = String::from(
        "// sovereign graph: an edge points from a resource to what must exist before it.\ndigraph fabric {\n    rankdir=RL;\n    compound=true;\n    node [fontname=\"Helvetica\", fontsize=11];\n    edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];\n",
    );
    for (tier, sites) in grouped(analysis) {
        let indent = if tier.is_some() { "        " } else { "    " };
        if let Some(tier) = tier {
            let _ = writeln!(
                out,
                "    subgraph \"cluster_tier_{0}\" {{\n        label=\"{0} tier\";\n        style=\"rounded,dashed\";",
                tier.word()
            );
        }
        for (site, members) in sites {
            if let Some(site) = site {
                let s = &analysis.sites[site];
                let _ = writeln!(
                    out,
                    "{indent}subgraph \"cluster_site_{0}\" {{\n{indent}    label=\"site {0} ({1})\";\n{indent}    style=rounded;",
                    s.name, s.region
                );
            }
            for r in members {
                let res = &graph.resources[r];
                let wave = if waves[r] > 0 { format!("\\nwave {}", waves[r]) } else { String::new() };
                let _ = writeln!(
                    out,
                    "{indent}    \"{}\" [label=\"{}{wave}\", shape={}];",
                    res.id,
                    label(res),
                    dot_shape(res.kind)
                );
            }
            if site.is_some() {
                let _ = writeln!(out, "{indent}}}");
            }
        }
        if tier.is_some() {
            out.push_str("    }\n");
        }
    }
    for e in &graph.edges {
        let _ = writeln!(
            out,
            "    \"{}\" -> \"{}\" [label=\"{}\"];",
            graph.resource(e.from).id,
            graph.resource(e.to).id,
            e.why
        );
    }
    out.push_str("}\n");
    out
}

/// Mermaid ids are bare words: number the resources so that no two
/// names can collide and no name can be a keyword (`end`).
fn mermaid_id(index: usize) -> String {
    format!("r{index}")
}

fn mermaid(analysis: &Analysis) -> String {
    let graph = &analysis.graph;
    let mut out = String::from(
        "%% sovereign graph: an arrow points from a resource to what must exist before it.\nflowchart RL\n",
    );
    for (tier, sites) in grouped(analysis) {
        if let Some(tier) = tier {
            let _ = writeln!(out, "    subgraph tier_{0}[\"{0} tier\"]", tier.word());
        }
        for (site, members) in sites {
            if let Some(site) = site {
                let s = &analysis.sites[site];
                let _ = writeln!(out, "    subgraph site_{}[\"site {} ({})\"]", site.index(), s.name, s.region);
            }
            for r in members {
                let res = &graph.resources[r];
                let text = label(res).replace("\\n", "<br/>");
                let (open, close) = match res.kind {
                    ResourceKind::Cluster => ("[[", "]]"),
                    ResourceKind::MigLayout => ("[/", "/]"),
                    ResourceKind::TemporalCluster | ResourceKind::VectorStore => ("[(", ")]"),
                    ResourceKind::TemporalNamespace => (">", "]"),
                    ResourceKind::Collector => ("{{", "}}"),
                    ResourceKind::Serve => ("(", ")"),
                    ResourceKind::Eval => ("{", "}"),
                    ResourceKind::EdgeBundle => ("[\\", "\\]"),
                };
                let _ = writeln!(out, "        {}{open}\"{text}\"{close}", mermaid_id(r));
            }
            if site.is_some() {
                out.push_str("    end\n");
            }
        }
        if tier.is_some() {
            out.push_str("    end\n");
        }
    }
    for e in &graph.edges {
        let _ = writeln!(out, "    {} -->|{}| {}", mermaid_id(e.from.index()), e.why, mermaid_id(e.to.index()));
    }
    out
}

fn json_graph(analysis: &Analysis) -> String {
    let graph = &analysis.graph;
    let waves = wave_of(analysis);
    let sites = &analysis.sites;
    let nodes: Vec<serde_json::Value> = graph
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "id": r.id.to_string(),
                "kind": r.kind.word(),
                "site": r.site.map(|s| sites[s].name.to_string()),
                "tier": r.site.map(|s| sites[s].tier.word()),
                "wave": if waves[i] > 0 { Some(waves[i]) } else { None },
            })
        })
        .collect();
    let edges: Vec<serde_json::Value> = graph
        .edges
        .iter()
        .map(|e| {
            json!({"from": graph.resource(e.from).id.to_string(), "to": graph.resource(e.to).id.to_string(), "why": e.why.words()})
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&json!({
        "version": crate::analyze_command::ANALYZE_JSON_VERSION,
        "nodes": nodes,
        "edges": edges,
    }))
    .unwrap_or_default();
    text.push('\n');
    text
}

/// Renders DOT with Graphviz's `dot`, if installed.
fn svg(dot: &str) -> Result<String, String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("--format svg needs Graphviz's `dot` on the PATH ({e}); use --format dot and render it elsewhere")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes()).map_err(|e| format!("writing to dot: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("running dot: {e}"))?;
    if !output.status.success() {
        return Err(format!("dot failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("dot wrote invalid UTF-8: {e}"))
}
