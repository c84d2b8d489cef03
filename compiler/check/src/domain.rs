//! Domain checks: values that are each well-formed but cannot work, found
//! with the catalogs' facts (`SOV2005`, `SOV2013`, `SOV2010`, `SOV2015`).
//! They run after resolution, on a spec whose references resolved.
//!
//! - MIG on a GPU without MIG; TPU topologies the TPU does not offer, or on
//!   a GPU pool; TPU pools outside GKE; a provider that contradicts the
//!   cluster's kind; `min` above `max` (pools, eval metrics);
//! - a tensor-parallel degree that does not divide the model's attention
//!   heads (vLLM shards heads evenly); `max-model-len` beyond the model's
//!   context; a weight format vLLM cannot load;
//! - Temporal and vector stores on device sites, a serve pinned to a site
//!   without a cluster; `state backend="kubernetes"` without a site;
//! - a retention below Temporal's minimum; a schedule that never fires;
//! - names of what becomes a Kubernetes Service with a dot in them.

use sovereign_catalog::Catalog;
use sovereign_diagnostics::{Diagnostic, Span, codes};

use sovereign_ir::{Fabric, Item, ItemId, Value, ValueKind};

/// The weight formats vLLM loads (its `--load-format`: safetensors and
/// PyTorch checkpoints, and GGUF; vllm docs, engine arguments).
const VLLM_FORMATS: [&str; 2] = ["safetensors", "gguf"];

/// Evaluation scores defined as fractions of 1.
const FRACTION_METRICS: [&str; 9] =
    ["accuracy", "precision", "recall", "f1", "exact-match", "faithfulness", "relevance", "groundedness", "pass-rate"];

/// Temporal's smallest namespace retention: one hour (the figure;
/// Temporal Cloud asks for at least a day).
const MIN_RETENTION_MS: u64 = 3_600_000;

pub fn check(fabric: &Fabric, catalog: &Catalog, diagnostics: &mut Vec<Diagnostic>) {
    let mut d = Domain { fabric, catalog, out: diagnostics };
    d.sites();
    d.serves();
    d.placements();
    d.temporal();
    d.evals();
    d.service_names();
}

struct Domain<'a> {
    fabric: &'a Fabric,
    catalog: &'a Catalog,
    out: &'a mut Vec<Diagnostic>,
}

fn str_of(val: &Value) -> Option<&str> {
    match &val.kind {
        ValueKind::Str(s) => Some(s),
        _ => None,
    }
}

fn int_of(val: &Value) -> Option<i64> {
    match val.kind {
        ValueKind::Int(v) => Some(v),
        _ => None,
    }
}

fn num_of(val: &Value) -> Option<f64> {
    match val.kind {
        ValueKind::Num(v) => Some(v),
        ValueKind::Int(v) => Some(v as f64),
        _ => None,
    }
}

fn target(val: &Value) -> Option<ItemId> {
    match val.kind {
        ValueKind::Ref { target, .. } => target,
        _ => None,
    }
}

fn children<'f>(fabric: &'f Fabric, item: &'f Item, kind: &'f str) -> impl Iterator<Item = &'f Item> + 'f {
    item.children.iter().map(|&c| fabric.item(c)).filter(move |c| c.kind.rsplit('/').next() == Some(kind))
}

fn child_arg<'f>(fabric: &'f Fabric, item: &'f Item, kind: &'f str) -> Option<&'f Value> {
    children(fabric, item, kind).next().and_then(|c| c.args.first())
}

impl<'a> Domain<'a> {
    fn push(&mut self, code: sovereign_diagnostics::Code, span: Span, message: String, help: String) {
        self.out.push(Diagnostic::new(code, span, message).with_help(help));
    }

    fn sites(&mut self) {
        let fabric: &'a Fabric = self.fabric;
        for (_, site) in fabric.of_kind("site") {
            let provider = site.prop("provider").and_then(str_of);
            let cluster = children(fabric, site, "cluster").next().and_then(|c| c.prop("kind"));
            if let (Some(provider), Some(kind)) = (provider, cluster)
                && let Some(kind_text) = str_of(kind)
                && matches!(kind_text, "gke" | "eks" | "aks")
                && kind_text != provider
            {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    kind.span,
                    format!("a `{kind_text}` cluster cannot run on provider `{provider}`"),
                    format!("use kind=\"{provider}\" (or k3s/k8s on machines of that provider), or fix `provider`"),
                );
            }
            // A provider's own region name (`europe-west4`) belongs to that provider.
            if let (Some(provider), Some(region)) = (provider, site.prop("region"))
                && let Some(region_name) = str_of(region)
                && let Some(owner) = self.catalog.regions.get(region_name).and_then(|r| r.provider.as_deref())
                && owner != provider
            {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    region.span,
                    format!("`{region_name}` is a region of `{owner}`, not of `{provider}`"),
                    format!("use a region of `{provider}`, or a generic one such as \"eu-central\""),
                );
            }
            let nodes: Vec<&Item> = children(fabric, site, "node").collect();
            for node in nodes {
                let (Some(gpu), Some(mig)) = (node.prop("gpu").and_then(str_of), node.prop("mig")) else { continue };
                if mig.kind == ValueKind::Bool(true) && self.catalog.gpus.get(gpu).is_some_and(|g| g.mig.is_empty()) {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        mig.span,
                        format!("`{gpu}` has no MIG: it cannot be partitioned"),
                        "remove mig=#true; MIG exists on A100, H100, H200 and B200 GPUs".into(),
                    );
                }
            }
            let fleets: Vec<&Item> = children(fabric, site, "fleet").collect();
            for fleet in fleets {
                let (Some(soc), Some(memory)) = (fleet.prop("soc").and_then(str_of), fleet.prop("memory")) else {
                    continue;
                };
                if let (Some(chip), ValueKind::Bytes(bytes)) = (self.catalog.socs.get(soc), &memory.kind)
                    && *bytes > chip.max_memory_gib << 30
                {
                    self.push(
                        codes::VALUE_OUT_OF_RANGE,
                        memory.span,
                        format!("devices with a {soc} ship with at most {} GiB of memory", chip.max_memory_gib),
                        format!(
                            "use the devices' real memory, at most \"{}GiB\": fits are computed from it",
                            chip.max_memory_gib
                        ),
                    );
                }
            }
            let pools: Vec<&Item> = children(fabric, site, "pool").collect();
            for pool in pools {
                self.pool(pool, provider);
            }
        }
    }

    fn pool(&mut self, pool: &Item, provider: Option<&str>) {
        if let (Some(min), Some(max)) = (pool.prop("min"), pool.prop("max"))
            && let (Some(a), Some(b)) = (int_of(min), int_of(max))
            && a > b
        {
            self.push(
                codes::VALUE_OUT_OF_RANGE,
                min.span,
                format!("the pool keeps at least {a} machines but may grow to only {b}"),
                "make `min` at most `max`".into(),
            );
        }
        let Some(accelerator) = pool.prop("accelerator").and_then(str_of) else { return };
        let topology = pool.prop("topology");
        match self.catalog.tpus.get(accelerator) {
            Some(tpu) => {
                if let Some(t) = topology
                    && let Some(text) = str_of(t)
                    && !tpu.topologies.iter().any(|o| o == text)
                {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        t.span,
                        format!("`{accelerator}` offers no `{text}` topology"),
                        format!("use one of: {}", tpu.topologies.join(", ")),
                    );
                }
                if provider.is_some_and(|p| p != "gke") {
                    let span = pool.prop("accelerator").map_or(pool.span, |v| v.span);
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        span,
                        format!("TPUs exist only on Google Cloud, not on `{}`", provider.unwrap_or_default()),
                        "put the TPU pool on a site with provider=\"gke\", or use a GPU".into(),
                    );
                }
            }
            None => {
                if let Some(t) = topology {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        t.span,
                        format!("`topology` is for TPU pools; `{accelerator}` is a GPU"),
                        "remove `topology`, and give GPUs per machine with `gpus=`".into(),
                    );
                }
            }
        }
    }

    fn serves(&mut self) {
        let fabric: &'a Fabric = self.fabric;
        for (_, serve) in fabric.of_kind("serve") {
            let Some(model) = serve.prop("model").and_then(target).map(|m| self.fabric.item(m)) else { continue };
            let format = model.prop("format").and_then(str_of).unwrap_or("safetensors");
            if !VLLM_FORMATS.contains(&format) {
                let span = model.prop("format").map_or(model.keyword_span, |v| v.span);
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    span,
                    format!(
                        "vLLM cannot load `{format}` weights, and serve \"{}\" runs on vLLM",
                        serve.name.as_ref().map_or("", |n| n.text())
                    ),
                    format!(
                        "serve a model in {} format; `{format}` is for device fleets (edge)",
                        VLLM_FORMATS.join(" or ")
                    ),
                );
            }
            let Some(arch) = model.prop("base").and_then(str_of).and_then(|b| self.catalog.models.get(b)) else {
                continue;
            };
            let degree =
                child_arg(self.fabric, serve, "tensor-parallel").or_else(|| child_arg(self.fabric, serve, "gpus"));
            if let Some(val) = degree
                && let Some(tp) = int_of(val)
                && tp > 0
                && arch.heads % tp as u64 != 0
            {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    val.span,
                    format!("`{}` has {} attention heads, which {tp} GPUs cannot share evenly", arch.name, arch.heads),
                    format!("use a tensor-parallel degree that divides {}", arch.heads),
                );
            }
            if let Some(val) = child_arg(self.fabric, serve, "max-model-len")
                && let Some(len) = int_of(val)
                && len as u64 > arch.max_position
            {
                self.push(
                    codes::VALUE_OUT_OF_RANGE,
                    val.span,
                    format!("`{}` handles at most {} tokens, not {len}", arch.name, arch.max_position),
                    format!("use a max-model-len of at most {}", arch.max_position),
                );
            }
        }
    }

    /// Workloads on sites that cannot run them.
    fn placements(&mut self) {
        let fabric: &'a Fabric = self.fabric;
        for kind in ["temporal", "vectorstore", "serve"] {
            for (_, item) in fabric.of_kind(kind) {
                let Some(val) = item.prop("site") else { continue };
                let Some(site) = target(val).map(|s| fabric.item(s)) else { continue };
                let has_cluster = children(fabric, site, "cluster").next().is_some();
                let device = site.prop("tier").and_then(str_of) == Some("device");
                if has_cluster && !device {
                    continue;
                }
                let name = site.name.as_ref().map_or("", |n| n.text());
                if device && kind != "serve" {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        val.span,
                        format!("site \"{name}\" is a device site: a {kind} runs on a cluster"),
                        "place it on a server or cloud site".into(),
                    );
                } else if !has_cluster {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        val.span,
                        format!("site \"{name}\" has no cluster to run a {kind} on"),
                        format!("add `cluster kind=\"k3s\" context=\"…\"` to site \"{name}\", or use another site"),
                    );
                }
            }
        }
        for (_, state) in fabric.of_kind("fabric/state") {
            if state.prop("backend").and_then(str_of) == Some("kubernetes") && state.prop("site").is_none() {
                self.out.push(
                    Diagnostic::new(
                        codes::MISSING_VALUE,
                        state.keyword_span,
                        "the kubernetes state backend needs a `site`",
                    )
                    .with_primary_label("`site` missing")
                    .with_help("add site=\"…\": the site whose cluster keeps the state and its lock"),
                );
            }
        }
    }

    fn temporal(&mut self) {
        let fabric: &'a Fabric = self.fabric;
        for (_, namespace) in fabric.of_kind("temporal/namespace") {
            if let Some(val) = namespace.prop("retention")
                && let ValueKind::Millis(ms) = val.kind
                && ms < MIN_RETENTION_MS
            {
                self.push(
                    codes::VALUE_OUT_OF_RANGE,
                    val.span,
                    "Temporal keeps closed workflows at least one hour".into(),
                    "use a retention of at least \"1h\"".into(),
                );
            }
        }
    }

    fn evals(&mut self) {
        let fabric: &'a Fabric = self.fabric;
        for (_, metric) in fabric.of_kind("eval/metric") {
            if let (Some(min), Some(max)) = (metric.prop("min"), metric.prop("max"))
                && let (Some(a), Some(b)) = (num_of(min), num_of(max))
                && a > b
            {
                self.push(
                    codes::VALUE_OUT_OF_RANGE,
                    min.span,
                    format!("no run can pass: the metric must be at least {a} and at most {b}"),
                    "make `min` at most `max`".into(),
                );
            }
        }
        for (_, metric) in fabric.of_kind("eval/metric") {
            let Some(name) = metric.name.as_ref().map(|n| n.text()) else { continue };
            // Scores that are fractions by definition; latencies and costs are never negative.
            let range = if FRACTION_METRICS.contains(&name) {
                Some((0.0, 1.0))
            } else if name.ends_with("-ms") || name.contains("latency") || name.contains("cost") {
                Some((0.0, f64::INFINITY))
            } else {
                None
            };
            let Some((low, high)) = range else { continue };
            for key in ["min", "max"] {
                if let Some(val) = metric.prop(key)
                    && let Some(v) = num_of(val)
                    && !(low..=high).contains(&v)
                {
                    let bounds =
                        if high.is_finite() { format!("from {low} to {high}") } else { format!("at least {low}") };
                    self.push(
                        codes::VALUE_OUT_OF_RANGE,
                        val.span,
                        format!("`{name}` is {bounds}, so a bound of {v} is never met or always met"),
                        format!("give `{key}` a value {bounds}"),
                    );
                }
            }
        }
        for (_, schedule) in fabric.of_kind("eval/schedule") {
            if let Some(val) = schedule.args.first()
                && let ValueKind::Cron(cron) = &val.kind
                && !cron.can_fire()
            {
                let text = cron.text();
                self.push(
                    codes::INVALID_CRON,
                    val.span,
                    format!("`{text}` never fires: no month of it has that day"),
                    "pick a day that every chosen month has (February has at most 29 days)".into(),
                );
            }
        }
    }

    /// Serves, vector stores and Temporal clusters become Services, whose
    /// names are DNS-1123 labels: no dots.
    fn service_names(&mut self) {
        let fabric: &'a Fabric = self.fabric;
        for kind in ["serve", "vectorstore", "temporal"] {
            for (_, item) in fabric.of_kind(kind) {
                let Some(name) = &item.name else { continue };
                if name.text().contains('.') {
                    let fixed = name.text().replace('.', "-");
                    self.out.push(
                        Diagnostic::new(
                            codes::INVALID_NAME,
                            name.span,
                            format!("a {kind} becomes a Kubernetes Service, whose name cannot contain `.`"),
                        )
                        .with_help(format!("rename it to `{fixed}`"))
                        .with_fix(
                            format!("rename to `{fixed}`"),
                            name.span,
                            format!("\"{fixed}\""),
                        ),
                    );
                }
            }
        }
    }
}
