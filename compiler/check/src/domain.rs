//! Domain checks: values that are each well-formed but cannot work, found
//! with the catalogs' facts (`SOV2005`, `SOV2013`, `SOV2010`, `SOV2015`).
//! They run on the typed model, so on a spec that resolved without errors.
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
//! - names of what becomes a Kubernetes Service with a dot in them;
//! - a registry address, a bundle repository or a bundle tag the
//!   distribution API cannot name.

use sovereign_catalog::Catalog;
use sovereign_diagnostics::{Diagnostic, Span, codes};

use sovereign_model::{ClusterKind, Provider, Site, Spanned, Spec, Tier, WeightFormat};

/// The weight formats vLLM loads (its `--load-format`: safetensors and
/// PyTorch checkpoints, and GGUF; vllm docs, engine arguments).
const VLLM_FORMATS: [WeightFormat; 2] = [WeightFormat::Safetensors, WeightFormat::Gguf];

/// Evaluation scores defined as fractions of 1.
const FRACTION_METRICS: [&str; 9] =
    ["accuracy", "precision", "recall", "f1", "exact-match", "faithfulness", "relevance", "groundedness", "pass-rate"];

/// Temporal's smallest namespace retention: one hour (the figure;
/// Temporal Cloud asks for at least a day).
const MIN_RETENTION_MS: u64 = 3_600_000;

pub fn check(spec: &Spec, catalog: &Catalog, diagnostics: &mut Vec<Diagnostic>) {
    let mut d = Domain { spec, catalog, out: diagnostics };
    d.sites();
    d.serves();
    d.placements();
    d.temporal();
    d.evals();
    d.service_names();
    d.registries();
}

struct Domain<'a> {
    spec: &'a Spec,
    catalog: &'a Catalog,
    out: &'a mut Vec<Diagnostic>,
}

/// The cluster kind a managed provider runs.
fn managed_kind(provider: Provider) -> ClusterKind {
    match provider {
        Provider::Gke => ClusterKind::Gke,
        Provider::Eks => ClusterKind::Eks,
        Provider::Aks => ClusterKind::Aks,
    }
}

impl<'a> Domain<'a> {
    fn push(&mut self, code: sovereign_diagnostics::Code, span: Span, message: String, help: String) {
        self.out.push(Diagnostic::new(code, span, message).with_help(help));
    }

    fn sites(&mut self) {
        let spec: &'a Spec = self.spec;
        for site in spec.sites.values() {
            let provider = site.provider.as_ref().map(|p| p.value);
            if let (Some(provider), Some(cluster)) = (provider, &site.cluster) {
                let kind = cluster.kind.value;
                if matches!(kind, ClusterKind::Gke | ClusterKind::Eks | ClusterKind::Aks)
                    && kind != managed_kind(provider)
                {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        cluster.kind.span,
                        format!("a `{kind}` cluster cannot run on provider `{provider}`"),
                        format!("use kind=\"{provider}\" (or k3s/k8s on machines of that provider), or fix `provider`"),
                    );
                }
            }
            // A provider's own region name (`europe-west4`) belongs to that provider.
            let region = &site.region;
            if let Some(provider) = provider
                && let Some(owner) = self.catalog.regions.get(&*region.value).and_then(|r| r.provider.as_deref())
                && owner != provider.word()
            {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    region.span,
                    format!("`{}` is a region of `{owner}`, not of `{provider}`", region.value),
                    format!("use a region of `{provider}`, or a generic one such as \"eu-central\""),
                );
            }
            for node in &site.nodes {
                let Some(gpu) = &node.gpu else { continue };
                if node.mig.value && self.catalog.gpus.get(&*gpu.value).is_some_and(|g| g.mig.is_empty()) {
                    self.push(
                        codes::VALUE_NOT_ALLOWED,
                        node.mig.span,
                        format!("`{}` has no MIG: it cannot be partitioned", gpu.value),
                        "remove mig=#true; MIG exists on A100, H100, H200 and B200 GPUs".into(),
                    );
                }
            }
            for fleet in &site.fleets {
                let soc = &fleet.soc.value;
                if let Some(chip) = self.catalog.socs.get(&**soc)
                    && fleet.memory.value > chip.max_memory_gib << 30
                {
                    self.push(
                        codes::VALUE_OUT_OF_RANGE,
                        fleet.memory.span,
                        format!("devices with a {soc} ship with at most {} GiB of memory", chip.max_memory_gib),
                        format!(
                            "use the devices' real memory, at most \"{}GiB\": fits are computed from it",
                            chip.max_memory_gib
                        ),
                    );
                }
            }
            self.pools(site, provider);
        }
    }

    fn pools(&mut self, site: &Site, provider: Option<Provider>) {
        for pool in &site.pools {
            if pool.min.value > pool.max.value {
                self.push(
                    codes::VALUE_OUT_OF_RANGE,
                    pool.min.span,
                    format!(
                        "the pool keeps at least {} machines but may grow to only {}",
                        pool.min.value, pool.max.value
                    ),
                    "make `min` at most `max`".into(),
                );
            }
            let accelerator = &pool.accelerator.value;
            match self.catalog.tpus.get(&**accelerator) {
                Some(tpu) => {
                    if let Some(t) = &pool.topology
                        && !tpu.topologies.iter().any(|o| **o == *t.value)
                    {
                        self.push(
                            codes::VALUE_NOT_ALLOWED,
                            t.span,
                            format!("`{accelerator}` offers no `{}` topology", t.value),
                            format!("use one of: {}", tpu.topologies.join(", ")),
                        );
                    }
                    if let Some(provider) = provider.filter(|p| *p != Provider::Gke) {
                        self.push(
                            codes::VALUE_NOT_ALLOWED,
                            pool.accelerator.span,
                            format!("TPUs exist only on Google Cloud, not on `{provider}`"),
                            "put the TPU pool on a site with provider=\"gke\", or use a GPU".into(),
                        );
                    }
                }
                None => {
                    if let Some(t) = &pool.topology {
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
    }

    fn serves(&mut self) {
        let spec: &'a Spec = self.spec;
        for serve in spec.serves.values() {
            let model = &spec.models[serve.model.value];
            let format = model.format.value;
            if !VLLM_FORMATS.contains(&format) {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    model.format.span,
                    format!("vLLM cannot load `{format}` weights, and serve \"{}\" runs on vLLM", serve.name.text()),
                    format!(
                        "serve a model in {} format; `{format}` is for device fleets (edge)",
                        VLLM_FORMATS.map(WeightFormat::word).join(" or ")
                    ),
                );
            }
            let Some(arch) = self.catalog.models.get(&*model.base.value) else { continue };
            if let Some(degree) = serve.tensor_parallel.as_ref().or(serve.gpus.as_ref())
                && degree.value > 0
                && arch.heads % u64::from(degree.value) != 0
            {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    degree.span,
                    format!(
                        "`{}` has {} attention heads, which {} GPUs cannot share evenly",
                        arch.name, arch.heads, degree.value
                    ),
                    format!("use a tensor-parallel degree that divides {}", arch.heads),
                );
            }
            if let Some(len) = &serve.max_model_len
                && len.value > arch.max_position
            {
                self.push(
                    codes::VALUE_OUT_OF_RANGE,
                    len.span,
                    format!("`{}` handles at most {} tokens, not {}", arch.name, arch.max_position, len.value),
                    format!("use a max-model-len of at most {}", arch.max_position),
                );
            }
        }
    }

    /// Workloads on sites that cannot run them.
    fn placements(&mut self) {
        let spec: &'a Spec = self.spec;
        let pinned = spec
            .temporals
            .values()
            .map(|t| ("temporal", Some(&t.site)))
            .chain(spec.vectorstores.values().map(|v| ("vectorstore", v.site.as_ref())))
            .chain(spec.serves.values().map(|s| ("serve", s.site.as_ref())));
        for (kind, site) in pinned {
            let Some(Spanned { value: site_id, span, .. }) = site else { continue };
            let site = &spec.sites[*site_id];
            let has_cluster = site.cluster.is_some();
            let device = site.tier.value == Tier::Device;
            if has_cluster && !device {
                continue;
            }
            let name = site.name.text();
            if device && kind != "serve" {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    *span,
                    format!("site \"{name}\" is a device site: a {kind} runs on a cluster"),
                    "place it on a server or cloud site".into(),
                );
            } else if !has_cluster {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    *span,
                    format!("site \"{name}\" has no cluster to run a {kind} on"),
                    format!("add `cluster kind=\"k3s\" context=\"…\"` to site \"{name}\", or use another site"),
                );
            }
        }
        if let Some(state) = &spec.fabric.state
            && state.backend.value == sovereign_model::StateBackend::Kubernetes
            && state.site.is_none()
        {
            self.out.push(
                Diagnostic::new(codes::MISSING_VALUE, state.span, "the kubernetes state backend needs a `site`")
                    .with_primary_label("`site` missing")
                    .with_help("add site=\"…\": the site whose cluster keeps the state and its lock"),
            );
        }
    }

    fn temporal(&mut self) {
        let spec: &'a Spec = self.spec;
        for namespace in spec.temporals.values().flat_map(|t| &t.namespaces) {
            if namespace.retention.value < MIN_RETENTION_MS {
                self.push(
                    codes::VALUE_OUT_OF_RANGE,
                    namespace.retention.span,
                    "Temporal keeps closed workflows at least one hour".into(),
                    "use a retention of at least \"1h\"".into(),
                );
            }
        }
    }

    fn evals(&mut self) {
        let spec: &'a Spec = self.spec;
        for eval in spec.evals.values() {
            for metric in &eval.metrics {
                if let (Some(min), Some(max)) = (&metric.min, &metric.max)
                    && min.value > max.value
                {
                    self.push(
                        codes::VALUE_OUT_OF_RANGE,
                        min.span,
                        format!("no run can pass: the metric must be at least {} and at most {}", min.value, max.value),
                        "make `min` at most `max`".into(),
                    );
                }
                let name = metric.name.text();
                // Scores that are fractions by definition; latencies and costs are never negative.
                let range = if FRACTION_METRICS.contains(&name) {
                    Some((0.0, 1.0))
                } else if name.ends_with("-ms") || name.contains("latency") || name.contains("cost") {
                    Some((0.0, f64::INFINITY))
                } else {
                    None
                };
                let Some((low, high)) = range else { continue };
                for (key, bound) in [("min", &metric.min), ("max", &metric.max)] {
                    let Some(bound) = bound else { continue };
                    if !(low..=high).contains(&bound.value) {
                        let bounds =
                            if high.is_finite() { format!("from {low} to {high}") } else { format!("at least {low}") };
                        self.push(
                            codes::VALUE_OUT_OF_RANGE,
                            bound.span,
                            format!("`{name}` is {bounds}, so a bound of {} is never met or always met", bound.value),
                            format!("give `{key}` a value {bounds}"),
                        );
                    }
                }
            }
            if let Some(schedule) = &eval.schedule
                && !schedule.value.can_fire()
            {
                self.push(
                    codes::INVALID_CRON,
                    schedule.span,
                    format!("`{}` never fires: no month of it has that day", schedule.value.text()),
                    "pick a day that every chosen month has (February has at most 29 days)".into(),
                );
            }
        }
    }

    /// A site's registry and the repositories and tags its bundles are
    /// pushed to, as the distribution spec names them.
    fn registries(&mut self) {
        use sovereign_ir::registry::{Location, check_repository, is_tag};
        let spec: &'a Spec = self.spec;
        for site in spec.sites.values() {
            let Some(uri) = &site.registry else { continue };
            if let Err(why) = Location::parse(uri.value.as_str()) {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    uri.span,
                    why,
                    "write the registry as oci://HOST[:PORT]/PATH, the path in lowercase letters and digits".into(),
                );
            }
        }
        for edge in spec.edges.values() {
            if let Some(version) = &edge.version
                && !is_tag(&version.value)
            {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    version.span,
                    format!("`{}` cannot be a registry tag", version.value),
                    "use letters, digits, `_`, `.` and `-`, starting with a letter, a digit or `_`, at most 128".into(),
                );
            }
            let site = &spec.sites[edge.fleet.value.parent];
            let Some(location) = site.registry.as_ref().and_then(|uri| Location::parse(uri.value.as_str()).ok()) else {
                continue;
            };
            let fleet = spec.fleet(edge.fleet.value);
            let repository = location.bundle_repository(fleet.name.text(), edge.name.text());
            if let Err(why) = check_repository(&repository) {
                self.push(
                    codes::VALUE_NOT_ALLOWED,
                    edge.name.span,
                    format!("this edge's bundles would be pushed to an invalid repository: {why}"),
                    "rename the edge or its fleet so that `.`, `_` and `-` stand between letters or digits".into(),
                );
            }
        }
    }

    /// Serves, vector stores and Temporal clusters become Services, whose
    /// names are DNS-1123 labels: no dots.
    fn service_names(&mut self) {
        let spec: &'a Spec = self.spec;
        let names = spec
            .serves
            .values()
            .map(|s| ("serve", &s.name))
            .chain(spec.vectorstores.values().map(|v| ("vectorstore", &v.name)))
            .chain(spec.temporals.values().map(|t| ("temporal", &t.name)));
        for (kind, name) in names {
            if name.text().contains('.') {
                let fixed = name.text().replace('.', "-");
                self.out.push(
                    Diagnostic::new(
                        codes::INVALID_NAME,
                        name.span,
                        format!("a {kind} becomes a Kubernetes Service, whose name cannot contain `.`"),
                    )
                    .with_help(format!("rename it to `{fixed}`"))
                    .with_fix(format!("rename to `{fixed}`"), name.span, format!("\"{fixed}\"")),
                );
            }
        }
    }
}
