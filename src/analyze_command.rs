//! `sovereign analyze`: the placement table, MIG layouts, device fits, data
//! flows and waves, for people (tables) or machines (`--json`, versioned,
//! documented in docs/analyze-json.md).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Value, json};
use sovereign_analyze::Analysis;
use sovereign_analyze::capacity::{Wanted, describe_wanted};
use sovereign_analyze::memory::gib;
use sovereign_analyze::placement::{Devices, Shape};
use sovereign_diagnostics::{Format, Severity, render};
use sovereign_ir::Fabric;
use sovereign_model::Spec;

use crate::AnalyzeArgs;
use crate::check_command::{load, render_config};

/// The version of the `--json` document; bumped on any incompatible change.
pub(crate) const ANALYZE_JSON_VERSION: u32 = 1;

pub(crate) fn run(args: &AnalyzeArgs) -> ExitCode {
    let config = render_config(args.color);
    let loaded = match load(&args.spec, args.stdlib.as_deref(), config, sovereign_analyze::Keep::Ir) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let checked = &loaded;
    let errors = checked.diagnostics.iter().any(|d| d.severity == Severity::Error);
    let (Some(analysis), Some(spec)) = (&loaded.analysis, &checked.spec) else {
        // The spec does not check: show why, like `check`.
        let _ = write!(std::io::stderr(), "{}", render(&checked.diagnostics, &checked.sources, Format::Human, config));
        let _ = writeln!(std::io::stderr(), "error: the spec has errors; fix them to see the analysis");
        return ExitCode::from(1);
    };
    if args.json {
        let mut document = json_document(&checked.fabric, spec, analysis);
        let diagnostics: Value =
            serde_json::from_str(&render(&checked.diagnostics, &checked.sources, Format::Json, config))
                .unwrap_or(Value::Null);
        document["diagnostics"] = diagnostics["diagnostics"].clone();
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        let _ = std::io::stdout().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().write_all(tables(&checked.fabric, spec, analysis).as_bytes());
        if !checked.diagnostics.is_empty() {
            let _ =
                write!(std::io::stderr(), "{}", render(&checked.diagnostics, &checked.sources, Format::Human, config));
        }
    }
    if errors { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// One row per replica.
struct Row {
    serve: String,
    replica: String,
    site: String,
    node: String,
    accelerator: String,
    devices: String,
    profile: String,
    slice: String,
    weights: String,
    kv: String,
    usable: String,
    free: String,
    sequences: String,
}

fn rows(analysis: &Analysis) -> Vec<Row> {
    let mut rows = Vec::new();
    for plan in &analysis.serves {
        for p in &plan.placements {
            let memory = plan.memory_on(&p.accelerator);
            let (devices, profile, slice) = match &p.devices {
                Devices::Mig { gpu, profile, start, size } => {
                    (gpu.to_string(), profile.clone(), format!("{start}-{}", start + size - 1))
                }
                Devices::Gpus { indices } => (
                    indices.iter().map(u32::to_string).collect::<Vec<_>>().join("+"),
                    if indices.len() == 1 { "whole".to_owned() } else { format!("tp={}", indices.len()) },
                    "-".to_owned(),
                ),
                Devices::Tpu { machine, chips } => (format!("#{machine}"), format!("{chips} chips"), "-".to_owned()),
            };
            rows.push(Row {
                serve: plan.name.clone(),
                replica: p.replica.to_string(),
                site: analysis.sites[p.site].name.to_string(),
                node: p.node.to_string(),
                accelerator: p.accelerator.to_string(),
                devices,
                profile,
                slice,
                weights: memory.map_or_else(String::new, |m| gib(m.weights)),
                kv: memory.map_or_else(String::new, |m| gib(m.kv_per_sequence)),
                usable: memory.map_or_else(String::new, |m| gib(m.usable)),
                free: memory.map_or_else(String::new, |m| gib(m.headroom())),
                sequences: memory.map_or_else(String::new, |m| m.concurrent_sequences().to_string()),
            });
        }
    }
    rows
}

/// A plain-text table with aligned columns.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[String]| {
        let text: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "  {}", text.join("  ").trim_end());
    };
    line(out, &header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    for row in rows {
        line(out, row);
    }
}

fn tables(fabric: &Fabric, spec: &Spec, analysis: &Analysis) -> String {
    let mut out = String::new();
    out.push_str("Placement (memory per device: weights, KV of one max-length sequence, usable, free after weights)\n");
    let placement: Vec<Vec<String>> = rows(analysis)
        .into_iter()
        .map(|r| {
            vec![
                r.serve,
                r.replica,
                r.site,
                r.node,
                r.accelerator,
                r.devices,
                r.profile,
                r.slice,
                r.weights,
                r.kv,
                r.usable,
                r.free,
                r.sequences,
            ]
        })
        .collect();
    if placement.is_empty() {
        out.push_str("  (no serves)\n");
    } else {
        table(
            &mut out,
            &[
                "serve",
                "replica",
                "site",
                "node",
                "accelerator",
                "gpu",
                "profile",
                "slices",
                "weights",
                "kv/seq",
                "usable",
                "free",
                "seqs",
            ],
            &placement,
        );
    }
    for plan in &analysis.serves {
        if plan.placements.len() < plan.replicas as usize {
            let _ = writeln!(out, "  ! {}: {} of {} replicas placed", plan.name, plan.placements.len(), plan.replicas);
        }
    }
    out.push_str("\nMIG layouts\n");
    let layouts = mig_layouts(analysis, spec);
    if layouts.is_empty() {
        out.push_str("  (none)\n");
    }
    for (gpu, slots) in layouts {
        let _ = writeln!(out, "  {gpu}: {}", slots.join(", "));
    }
    out.push_str("\nDevice fits\n");
    if analysis.devices.is_empty() {
        out.push_str("  (no edge models)\n");
    } else {
        let rows: Vec<Vec<String>> = analysis
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    d.fleet.clone(),
                    d.soc.clone(),
                    d.devices.to_string(),
                    d.base.clone(),
                    format!("{}/{}", d.dtype, d.format),
                    gib(d.weights),
                    gib(d.memory as f64),
                    if d.fits() && d.supported { "yes".to_owned() } else { "no".to_owned() },
                ]
            })
            .collect();
        table(
            &mut out,
            &["edge", "fleet", "soc", "devices", "model", "dtype/format", "weights", "memory", "fits"],
            &rows,
        );
    }
    out.push_str("\nData flows\n");
    if analysis.flows.flows.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = analysis
            .flows
            .flows
            .iter()
            .map(|f| {
                vec![
                    format!("{}@{}", short(fabric, f.from), analysis.flows.places[f.from_place].name),
                    format!("{}@{}", short(fabric, f.to), analysis.flows.places[f.to_place].name),
                    spec.datasets[f.dataset].name.qualified.to_string(),
                    f.class.word().to_owned(),
                    if f.redacted { "yes" } else { "no" }.to_owned(),
                    f.because(&analysis.flows.places),
                ]
            })
            .collect();
        table(&mut out, &["from", "to", "data", "class", "redacted", "allowed because"], &rows);
    }
    out.push_str("\nWaves\n");
    if analysis.graph.waves.is_empty() {
        out.push_str("  (none)\n");
    }
    for (i, wave) in analysis.graph.waves.iter().enumerate() {
        let ids: Vec<String> = wave.iter().map(|&r| analysis.graph.resource(r).id.to_string()).collect();
        let _ = writeln!(out, "  {}: {}", i + 1, ids.join(", "));
    }
    out
}

/// `serve/chat`: kind word and name of a declaration.
fn short(fabric: &Fabric, id: sovereign_ir::ItemId) -> String {
    let item = fabric.item(id);
    let kind = item.kind.rsplit('/').next().unwrap_or(&item.kind);
    format!("{kind}/{}", fabric.name_of(id))
}

/// `site/node/gpu` → its MIG instances in slot order.
fn mig_layouts(analysis: &Analysis, spec: &Spec) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for gpu in analysis.inventory.gpus.iter().filter(|g| !g.instances.is_empty()) {
        let mut instances = gpu.instances.clone();
        instances.sort_by_key(|i| i.start);
        let slots = instances
            .iter()
            .map(|i| {
                format!("[{}-{}] {} {}", i.start, i.start + i.size - 1, i.profile, spec.serves[i.serve].name.qualified)
            })
            .collect();
        out.push((format!("{}/{}/{} ({})", analysis.sites[gpu.site].name, gpu.node, gpu.index, gpu.model), slots));
    }
    out
}

fn json_document(fabric: &Fabric, spec: &Spec, analysis: &Analysis) -> Value {
    let sites = &analysis.sites;
    let placements: Vec<Value> = analysis
        .serves
        .iter()
        .flat_map(|plan| {
            plan.placements.iter().map(move |p| {
                let memory = plan.memory_on(&p.accelerator);
                let devices = match &p.devices {
                    Devices::Mig { gpu, profile, start, size } => {
                        json!({"kind": "mig", "gpu": gpu, "profile": profile, "start": start, "slices": size})
                    }
                    Devices::Gpus { indices } => json!({"kind": "gpus", "gpus": indices}),
                    Devices::Tpu { machine, chips } => json!({"kind": "tpu", "machine": machine, "chips": chips}),
                };
                json!({
                    "serve": plan.name,
                    "replica": p.replica,
                    "site": &*sites[p.site].name,
                    "node": &*p.node,
                    "accelerator": &*p.accelerator,
                    "devices": devices,
                    "memory": memory.map(|m| json!({
                        "weights_bytes": m.weights.round() as u64,
                        "kv_per_sequence_bytes": m.kv_per_sequence.round() as u64,
                        "usable_bytes": m.usable.round() as u64,
                        "free_bytes": m.headroom().round() as i64,
                        "device_bytes": m.device.round() as u64,
                        "gpu_memory_utilization": m.utilization,
                        "max_model_len": m.max_len,
                        "concurrent_sequences": m.concurrent_sequences(),
                    })),
                })
            })
        })
        .collect();
    let serves: Vec<Value> = analysis
        .serves
        .iter()
        .map(|plan| {
            let shape = match &plan.shape {
                Shape::Mig(profile) => json!({"kind": "mig", "profile": profile}),
                Shape::Gpus(n) => json!({"kind": "gpus", "gpus": n}),
                Shape::TpuSlice => json!({"kind": "tpu"}),
            };
            json!({
                "serve": plan.name,
                "model": plan.base,
                "dtype": plan.dtype.word(),
                "replicas": plan.replicas,
                "placed": plan.placements.len(),
                "shape": shape,
                "wanted": describe_wanted(&analysis.sites, Wanted::of_serve(&spec.serves[plan.serve])),
            })
        })
        .collect();
    let layouts: Vec<Value> = analysis
        .inventory
        .gpus
        .iter()
        .filter(|g| !g.instances.is_empty())
        .map(|g| {
            let mut instances = g.instances.clone();
            instances.sort_by_key(|i| i.start);
            json!({
                "site": &*sites[g.site].name,
                "node": &*g.node,
                "gpu": g.index,
                "model": &*g.model,
                "instances": instances.iter().map(|i| json!({
                    "profile": i.profile, "start": i.start, "slices": i.size,
                    "serve": &*spec.serves[i.serve].name.qualified,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let devices: Vec<Value> = analysis
        .devices
        .iter()
        .map(|d| {
            json!({
                "edge": d.name, "fleet": d.fleet, "soc": d.soc, "devices": d.devices, "model": d.base,
                "dtype": d.dtype, "format": d.format, "weights_bytes": d.weights.round() as u64,
                "memory_bytes": d.memory, "fits": d.fits(), "supported": d.supported,
            })
        })
        .collect();
    let places = &analysis.flows.places;
    let flows: Vec<Value> = analysis
        .flows
        .flows
        .iter()
        .map(|f| {
            json!({
                "from": short(fabric, f.from), "from_site": places[f.from_place].name,
                "to": short(fabric, f.to), "to_site": places[f.to_place].name,
                "data": &*spec.datasets[f.dataset].name.qualified,
                "class": f.class.word(), "redacted": f.redacted, "because": f.because(places),
            })
        })
        .collect();
    let waves: Vec<Value> = analysis
        .graph
        .waves
        .iter()
        .map(|w| Value::from(w.iter().map(|&r| analysis.graph.resource(r).id.to_string()).collect::<Vec<_>>()))
        .collect();
    json!({
        "version": ANALYZE_JSON_VERSION,
        "serves": serves,
        "placements": placements,
        "mig_layouts": layouts,
        "devices": devices,
        "flows": flows,
        "waves": waves,
    })
}
