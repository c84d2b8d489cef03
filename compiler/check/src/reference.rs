//! The language reference (`docs/language.md`), generated from the schema
//! so that the two cannot disagree; a test compares the file with this.

use std::fmt::Write as _;

use crate::schema::{Field, NodeDef, Schema};

/// Renders the whole language reference as Markdown.
#[must_use]
pub fn language_reference(schema: &Schema) -> String {
    let mut out = String::new();
    out.push_str(
        "# The fabric language (v0)\n\n\
         <!-- Generated from stdlib/schema/*.kdl by `UPDATE_DOCS=1 cargo test --test docs`; do not edit by hand. -->\n\n\
         A fabric spec is a KDL 2.0 document.\n\
         Every top-level node declares one named thing; names are unique per kind and references are by name.\n\
         Nested declarations (a site's `node` or `fleet`, a temporal `namespace`) are unique within their parent and referenced as `parent/child`.\n\
         Names are lowercase letters, digits, `-` and `.`, start with a letter, and have at most 63 characters, because they become Kubernetes object names.\n\n\
         Value types: sizes are a number and a unit (`50Gi`, `512GiB`, `1.5TB`); durations are numbers with units (`800ms`, `7d`, `1h30m`);\n\
         schedules are five-field cron expressions; regions and jurisdictions come from `stdlib/catalog/regions.kdl`;\n\
         a `secret` property takes the name of a declared `secret`, never the secret itself.\n\n\
         ## Kinds\n\n",
    );
    for kind in &schema.kinds {
        let _ = writeln!(out, "- [`{}`](#{}) — {}", kind.name, kind.name, first_sentence(&kind.doc));
    }
    out.push('\n');
    for kind in &schema.kinds {
        write_def(&mut out, kind, 3);
    }
    out.push_str("## Jurisdictions and regions\n\n| jurisdiction | meaning | regions |\n| --- | --- | --- |\n");
    for (name, doc) in &schema.catalog.jurisdictions {
        let regions: Vec<String> = schema
            .catalog
            .regions
            .iter()
            .filter(|(_, r)| &r.jurisdiction == name)
            .map(|(n, _)| format!("`{n}`"))
            .collect();
        let _ = writeln!(out, "| `{name}` | {doc} | {} |", regions.join(", "));
    }
    catalogs(&mut out, &schema.catalog);
    out
}

/// The hardware and model catalogs, so a reader can see what a name means.
fn catalogs(out: &mut String, catalog: &sovereign_catalog::Catalog) {
    out.push_str(
        "\n## GPUs\n\nFrom `stdlib/catalog/gpus.kdl`. MIG profiles as `nvidia-smi mig -lgip` / `-lgipp` print them: \
         memory, instances per GPU, and the start slots on the grid of 8 memory slices.\n\n\
         | GPU | product | memory | MIG profiles (memory GiB, max instances, starts) |\n| --- | --- | --- | --- |\n",
    );
    for gpu in catalog.gpus.values() {
        let profiles: Vec<String> = gpu
            .mig
            .iter()
            .map(|p| {
                let starts: Vec<String> = p.starts.iter().map(u32::to_string).collect();
                format!(
                    "`{}` ({}.{:02}, ×{}, {{{}}})",
                    p.name,
                    p.memory_centigib / 100,
                    p.memory_centigib % 100,
                    p.instances,
                    starts.join(",")
                )
            })
            .collect();
        let mig = if profiles.is_empty() { "no MIG".to_owned() } else { profiles.join(", ") };
        let _ = writeln!(out, "| `{}` | {} | {} MiB | {mig} |", gpu.name, gpu.product, gpu.memory_mib);
    }
    out.push_str(
        "\n## TPUs\n\nFrom `stdlib/catalog/tpus.kdl`.\n\n\
         | TPU | HBM per chip | bf16 TFLOPS per chip | chips per host | topologies |\n| --- | --- | --- | --- | --- |\n",
    );
    for tpu in catalog.tpus.values() {
        let _ = writeln!(
            out,
            "| `{}` | {} GiB | {} | {} | {} |",
            tpu.name,
            tpu.hbm_gib,
            tpu.bf16_tflops,
            tpu.chips_per_host,
            tpu.topologies.join(", ")
        );
    }
    out.push_str(
        "\n## Device SoCs\n\nFrom `stdlib/catalog/socs.kdl`.\n\n\
         | SoC | NPU | TOPS | precisions | formats | max memory |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for soc in catalog.socs.values() {
        let tops = soc.tops.map_or_else(|| "not published".to_owned(), |t| t.to_string());
        let _ = writeln!(
            out,
            "| `{}` | {} | {tops} | {} | {} | {} GiB |",
            soc.name,
            soc.npu,
            soc.precisions.join(", "),
            soc.formats.join(", "),
            soc.max_memory_gib
        );
    }
    out.push_str(
        "\n## Model architectures\n\nFrom `stdlib/catalog/models.kdl` (each model's `config.json`).\n\n\
         | base | parameters | layers | hidden | heads | KV heads | head dim | max position |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for m in catalog.models.values() {
        let _ = writeln!(
            out,
            "| `{}` | {:.2} B | {} | {} | {} | {} | {} | {} |",
            m.name,
            m.params as f64 / 1e9,
            m.layers,
            m.hidden,
            m.heads,
            m.kv_heads,
            m.head_dim,
            m.max_position
        );
    }
}

fn first_sentence(text: &str) -> &str {
    text.split_once(". ").map_or(text, |(first, _)| first).trim_end_matches('.')
}

fn value_line(def: &Field) -> String {
    let mut notes = Vec::new();
    if def.required {
        notes.push("required".to_owned());
    }
    if def.variadic {
        notes.push("one or more".to_owned());
    }
    if let Some(default) = &def.default {
        notes.push(format!("default `{default}`"));
    }
    match (def.min, def.max) {
        (Some(a), Some(b)) => notes.push(format!("{a} to {b}")),
        (Some(a), None) => notes.push(format!("at least {a}")),
        (None, Some(b)) => notes.push(format!("at most {b}")),
        (None, None) => {}
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
    format!("{}{notes}. {}", def.ty.describe(), def.doc)
}

fn write_def(out: &mut String, def: &NodeDef, level: usize) {
    let hashes = "#".repeat(level);
    let _ = writeln!(out, "{hashes} `{}`\n", def.path.replace('/', " › "));
    if !def.doc.is_empty() {
        let _ = writeln!(out, "{}\n", def.doc);
    }
    let mut usage = def.name.clone();
    if def.declares {
        usage.push_str(" \"NAME\"");
    }
    for arg in &def.args {
        usage.push_str(if arg.variadic { " VALUE…" } else { " VALUE" });
    }
    for (key, prop) in &def.props {
        if prop.required {
            let _ = write!(usage, " {key}=…");
        }
    }
    if !def.children.is_empty() {
        usage.push_str(" { … }");
    }
    let _ = writeln!(out, "```kdl\n{usage}\n```\n");
    if def.declares && def.singleton {
        out.push_str("Declared at most once.\n\n");
    }
    for (index, arg) in def.args.iter().enumerate() {
        // An argument's default is what a left-out `max=1` child means.
        let mut arg = arg.clone();
        let absent = arg.default.take().map(|d| format!(" Without `{}`, `{d}`.", def.name)).unwrap_or_default();
        let _ = writeln!(out, "- argument {}: {}{absent}", index + 1, value_line(&arg).trim_end());
    }
    for (key, prop) in &def.props {
        let _ = writeln!(out, "- `{key}`: {}", value_line(prop));
    }
    if !def.children.is_empty() {
        let children: Vec<String> = def
            .children
            .iter()
            .map(|c| {
                let mut s = format!("`{}`", c.node.name);
                match (c.required, c.max) {
                    (true, Some(1)) => s.push_str(" (exactly one)"),
                    (true, _) => s.push_str(" (required)"),
                    (false, Some(1)) => s.push_str(" (at most one)"),
                    (false, Some(n)) => {
                        let _ = write!(s, " (at most {n})");
                    }
                    (false, None) => {}
                }
                s
            })
            .collect();
        let _ = writeln!(out, "- children: {}", children.join(", "));
    }
    out.push('\n');
    for child in &def.children {
        write_def(out, &child.node, (level + 1).min(6));
    }
}
