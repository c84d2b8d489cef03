//! Capacity: from each `serve` to a placement request (shape, candidate
//! sites, accelerators its model fits), then placement, then the
//! diagnostics for what does not fit (`SOV4001`, `SOV4002`, `SOV4005`).
//! Vector stores, which need no accelerator, go beside their users.

use std::collections::BTreeMap;
use std::sync::Arc;

use sovereign_catalog::Catalog;
use sovereign_diagnostics::{Diagnostic, codes};
use sovereign_ir::ItemId;
use sovereign_model::{Dtype, Id, KvCacheDtype, Serve, Spanned, Spec, VectorStore};

use crate::free::Scope;
use crate::memory::{ReplicaMemory, gib};
use crate::placement::{self, Devices, Inventory, Placement, Request, Shape};
use crate::view::{ServeId, SiteId, Sites, Tier};

/// A serve, sized and placed: what the analysis decided about it.
#[derive(Clone, Debug)]
pub struct PlacedServe {
    pub serve: ServeId,
    /// The serve's declaration in the IR.
    pub item: ItemId,
    pub name: String,
    /// The model's catalog base and dtype.
    pub base: String,
    pub dtype: Dtype,
    pub shape: Shape,
    pub replicas: u32,
    /// The memory of one replica on each accelerator model it may use.
    pub memory: Vec<(String, ReplicaMemory)>,
    pub placements: Vec<Placement>,
}

impl PlacedServe {
    /// The memory of a replica on `accelerator`.
    #[must_use]
    pub fn memory_on(&self, accelerator: &str) -> Option<&ReplicaMemory> {
        self.memory.iter().find(|(a, _)| a == accelerator).map(|(_, m)| m)
    }
}

/// Sizes and places every serve: requests, placement and capacity diagnostics.
pub fn place_serves(
    spec: &Spec,
    catalog: &Catalog,
    sites: &Sites,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<PlacedServe>, Inventory) {
    place_with(spec, catalog, sites, diagnostics, false)
}

/// [`place_serves`] with every replica placed by scanning all candidate
/// GPUs, as placement did before its index: the reference a property test
/// holds the index to (same choices, every time). Not for use.
#[doc(hidden)]
pub fn place_serves_by_scan(
    spec: &Spec,
    catalog: &Catalog,
    sites: &Sites,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<PlacedServe>, Inventory) {
    place_with(spec, catalog, sites, diagnostics, true)
}

fn place_with(
    spec: &Spec,
    catalog: &Catalog,
    sites: &Sites,
    diagnostics: &mut Vec<Diagnostic>,
    scan_all: bool,
) -> (Vec<PlacedServe>, Inventory) {
    let replicas = spec.serves.values().map(|s| s.replicas.value).fold(0u32, u32::saturating_add);
    let mut inventory = Inventory::new(sites, catalog, replicas);
    inventory.free.scan_all = scan_all;
    let mut plans = Vec::new();
    let mut requests = Vec::new();
    let mut candidates = Candidates::default();
    for (id, serve) in spec.serves.iter() {
        if let Some((plan, request)) =
            serve_request(spec, catalog, sites, &mut inventory, &mut candidates, id, serve, diagnostics)
        {
            plans.push(plan);
            requests.push(request);
        }
    }
    let outcomes = placement::place(&requests, &mut inventory, catalog);
    for outcome in outcomes {
        let plan = &mut plans[outcome.request];
        plan.placements = outcome.placed;
        // A request emptied by a memory error (SOV4002) was already reported.
        if plan.placements.len() < plan.replicas as usize && requests[outcome.request].replicas > 0 {
            diagnostics.push(shortfall(spec, sites, &inventory, &requests[outcome.request], plan));
        }
    }
    (plans, inventory)
}

#[allow(clippy::too_many_arguments)]
fn serve_request(
    spec: &Spec,
    catalog: &Catalog,
    sites: &Sites,
    inventory: &mut Inventory,
    candidates: &mut Candidates,
    id: ServeId,
    serve: &Serve,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(PlacedServe, Request)> {
    let model = &spec.models[serve.model.value];
    let base = model.base.value.to_string();
    let arch = catalog.models.get(&*base)?;
    let dtype = model.dtype.value;
    let name = serve.name.qualified.to_string();
    let span = serve.name.span;

    let mig_profile = serve.mig.as_ref().map(|m| (m.value.to_string(), m.span));
    let mig = mig_profile.as_ref().map(|(p, s)| (p.as_str(), *s));
    let pair = |v: &Option<Spanned<u32>>| v.as_ref().map(|v| (v.value, v.span));
    let gpus = pair(&serve.gpus);
    let tensor_parallel = pair(&serve.tensor_parallel);
    if let (Some((profile, mig_span)), Some((_, other_span))) = (mig, gpus.or(tensor_parallel)) {
        diagnostics.push(
            Diagnostic::new(codes::CONFLICTING_RESOURCES, other_span, format!("serve \"{name}\" asks for MIG slices and whole GPUs"))
                .with_primary_label("whole GPUs")
                .with_label(mig_span, format!("one {profile} slice per replica"))
                .with_help("MIG slices have no NVLink or P2P, so tensor parallelism needs whole GPUs: keep either `mig` or `gpus`/`tensor-parallel`"),
        );
        return None;
    }
    if let (Some((g, g_span)), Some((t, t_span))) = (gpus, tensor_parallel)
        && g != t
    {
        diagnostics.push(
            Diagnostic::new(
                codes::CONFLICTING_RESOURCES,
                t_span,
                format!("serve \"{name}\" has tensor-parallel {t} but {g} GPUs per replica"),
            )
            .with_primary_label(format!("shards the model {t} ways"))
            .with_label(g_span, format!("{g} GPUs per replica"))
            .with_help("vLLM shards one replica over exactly its GPUs on one node: make them equal (pipeline parallelism across nodes is not supported)"),
        );
        return None;
    }

    let wanted = Wanted::of_serve(serve);
    let (site_indices, scopes) = candidates.get(sites, wanted);
    inventory.ensure_indexed(&scopes);
    let has_gpus = inventory.has_gpus(&scopes);
    let has_tpus = !has_gpus && site_indices.iter().any(|&s| inventory.site_slices(s).next().is_some());
    let shape = match (mig, gpus.or(tensor_parallel)) {
        (Some((profile, _)), _) => Shape::Mig(profile.to_owned()),
        (None, Some((n, _))) => Shape::Gpus(n),
        (None, None) if !has_gpus && has_tpus => Shape::TpuSlice,
        (None, None) => Shape::Gpus(1),
    };
    let replicas = serve.replicas.value;
    let max_len = serve.max_model_len.as_ref().map_or(arch.max_position, |l| l.value);
    let utilization = serve.gpu_memory_utilization.value;
    let kv_bytes = match serve.kv_cache_dtype.value {
        KvCacheDtype::Fp8 => 1.0,
        _ if dtype == Dtype::Fp32 => 4.0,
        // `auto`: the activations' dtype, 16 bits for bf16/fp16 and weight-only quantized models.
        KvCacheDtype::Auto => 2.0,
    };

    // Every accelerator model in the candidate sites that offers the shape, with the replica's memory on it.
    let mut offered: Vec<(String, ReplicaMemory)> = Vec::new();
    let mut add = |model: &str, device: u64, devices: u32| {
        if !offered.iter().any(|(m, _)| m == model) {
            offered.push((
                model.to_owned(),
                ReplicaMemory::new(arch, dtype.word(), kv_bytes, max_len, utilization, device, devices),
            ));
        }
    };
    // The models of the candidate sites from the index, not GPU by GPU: a
    // `tier=` serve over thousands of sites would scan them all.
    for (model, mig_capable) in inventory.gpu_models(&scopes) {
        let Some(card) = catalog.gpus.get(&*model) else { continue };
        match &shape {
            Shape::Mig(profile) => {
                if let Some(p) = card.profile(profile).filter(|_| mig_capable) {
                    add(&model, p.memory_bytes(), 1);
                }
            }
            Shape::Gpus(n) => add(&model, card.memory_mib << 20, *n),
            Shape::TpuSlice => {}
        }
    }
    if shape == Shape::TpuSlice {
        for (_, slice) in site_indices.iter().flat_map(|&s| inventory.site_slices(s)) {
            if let Some(tpu) = catalog.tpus.get(&*slice.tpu) {
                add(&slice.tpu, tpu.hbm_gib << 30, slice.chips);
            }
        }
    }
    let plan = PlacedServe {
        serve: id,
        item: serve.item,
        name: name.clone(),
        base: base.clone(),
        dtype,
        shape: shape.clone(),
        replicas,
        memory: offered.clone(),
        placements: Vec::new(),
    };
    let accelerators: Vec<String> = offered.iter().filter(|(_, m)| m.fits()).map(|(a, _)| a.clone()).collect();
    if !offered.is_empty() && accelerators.is_empty() {
        // The largest device shows the smallest shortfall.
        let (accelerator, memory) =
            offered.iter().max_by(|a, b| a.1.usable.total_cmp(&b.1.usable)).expect("offered is not empty");
        let device = match &shape {
            Shape::Mig(profile) => format!("one {accelerator} {profile} slice"),
            Shape::Gpus(1) => format!("one {accelerator}"),
            Shape::Gpus(n) => format!("{n} × {accelerator}"),
            Shape::TpuSlice => format!("one {accelerator} slice of {} chips", memory.devices),
        };
        let mut d = Diagnostic::new(
            codes::MODEL_TOO_LARGE,
            span,
            format!("serve \"{name}\": {base} in {dtype} does not fit {device}: {}", memory.arithmetic()),
        )
        .with_primary_label("does not fit");
        if let Some((_, shape_span)) = mig.or(gpus.map(|(_, s)| ("", s))) {
            d = d.with_label(shape_span, "each replica gets this");
        }
        if let Some(len) = &serve.max_model_len {
            d = d.with_label(len.span, "KV cache is sized for this many tokens");
        }
        let max_len_hint = if serve.max_model_len.is_none() {
            format!(" (without `max-model-len`, vLLM takes the model's {max_len} tokens)")
        } else {
            String::new()
        };
        diagnostics.push(d.with_help(format!(
            "use a larger slice, more GPUs with `tensor-parallel`, a smaller dtype (fp8), `kv-cache-dtype \"fp8\"`, or a shorter `max-model-len`{max_len_hint}"
        )));
        return Some((plan, Request { serve: id, replicas: 0, shape, sites: site_indices, scopes, accelerators }));
    }
    Some((plan, Request { serve: id, replicas, shape, sites: site_indices, scopes, accelerators }))
}

/// Where a workload asked to run: `site=`, `tier=`, or neither.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    pub site: Option<SiteId>,
    pub tier: Option<Tier>,
}

impl Wanted {
    #[must_use]
    pub fn of_serve(serve: &Serve) -> Wanted {
        Wanted { site: serve.site.as_ref().map(|s| s.value), tier: serve.tier.as_ref().map(|t| t.value) }
    }

    #[must_use]
    pub fn of_store(store: &VectorStore) -> Wanted {
        Wanted { site: store.site.as_ref().map(|s| s.value), tier: store.tier.as_ref().map(|t| t.value) }
    }

    /// The tiers it asks for, in preference order.
    fn tiers(self) -> &'static [Tier] {
        match self.tier {
            Some(Tier::Cloud) => &[Tier::Cloud],
            Some(Tier::Server) => &[Tier::Server],
            Some(Tier::Device) => &[Tier::Device],
            None => &[Tier::Server, Tier::Cloud],
        }
    }
}

/// The sites a workload may run on, in preference order, and how to say so.
/// `site=` names one; `tier=` all of that tier; neither, the server tier
/// and then the cloud tier. Without `site=`, only sites in the fabric's
/// residency are candidates.
#[must_use]
pub fn candidate_sites(sites: &Sites, wanted: Wanted) -> Vec<SiteId> {
    if let Some(site) = wanted.site {
        return vec![site];
    }
    let mut chosen = Vec::new();
    for tier in wanted.tiers() {
        for site in &sites.sites {
            if site.tier == *tier && sites.is_resident(site.id) {
                chosen.push(site.id);
            }
        }
    }
    chosen
}

/// Candidate sites and scopes, made once per distinct set of tiers: every
/// `tier=` serve of a large fabric shares one list instead of building its own.
#[derive(Default)]
struct Candidates {
    by_tiers: Vec<(&'static [Tier], Arc<[SiteId]>)>,
}

impl Candidates {
    fn get(&mut self, sites: &Sites, wanted: Wanted) -> (Arc<[SiteId]>, Vec<Scope>) {
        if let Some(site) = wanted.site {
            return (Arc::from([site]), vec![Scope::Site(site)]);
        }
        let tiers = wanted.tiers();
        let scopes = tiers.iter().map(|t| Scope::Tier(*t)).collect();
        if let Some((_, list)) = self.by_tiers.iter().find(|(t, _)| *t == tiers) {
            return (list.clone(), scopes);
        }
        let list: Arc<[SiteId]> = candidate_sites(sites, wanted).into();
        self.by_tiers.push((tiers, list.clone()));
        (list, scopes)
    }
}

/// Where a workload asked to run, in words: `site fra`, `tier server in eu`.
#[must_use]
pub fn describe_wanted(sites: &Sites, wanted: Wanted) -> String {
    if let Some(site) = wanted.site {
        return format!("site {}", sites[site].name);
    }
    let words: Vec<&str> = wanted.tiers().iter().map(|t| t.word()).collect();
    let residency = sites.residency.as_deref().map(|r| format!(" in {r}")).unwrap_or_default();
    format!("tier {}{residency}", words.join(" or "))
}

/// The `SOV4001` error for a request that did not fully fit.
fn shortfall(spec: &Spec, sites: &Sites, inventory: &Inventory, request: &Request, plan: &PlacedServe) -> Diagnostic {
    let serve = &spec.serves[plan.serve];
    let what = match &plan.shape {
        Shape::Mig(profile) => profile.clone(),
        Shape::Gpus(1) => "whole GPU".to_owned(),
        Shape::Gpus(n) => format!("group of {n} GPUs on one node"),
        Shape::TpuSlice => "TPU slice".to_owned(),
    };
    let mut per_site: Vec<String> = Vec::new();
    for &s in request.sites.iter() {
        if !sites[s].has_cluster {
            per_site.push(format!("site {} has no cluster to run it", sites[s].name));
            continue;
        }
        let mine: Vec<&Placement> = plan.placements.iter().filter(|p| p.site == s).collect();
        let mut where_: Vec<String> = Vec::new();
        let mut starts: Vec<(String, Vec<u32>)> = Vec::new();
        for p in &mine {
            let text = match &p.devices {
                Devices::Mig { gpu, start, .. } => (format!("{}/{gpu}", p.node), Some(*start)),
                Devices::Gpus { indices } => {
                    (format!("{}/{}", p.node, indices.iter().map(u32::to_string).collect::<Vec<_>>().join("+")), None)
                }
                Devices::Tpu { machine, .. } => (format!("{}#{machine}", p.node), None),
            };
            match text {
                (place, Some(start)) => match starts.iter_mut().find(|(p, _)| *p == place) {
                    Some((_, list)) => list.push(start),
                    None => starts.push((place, vec![start])),
                },
                (place, None) => where_.push(place),
            }
        }
        // MIG starts grouped per GPU, ascending: gpu-01/0 [0,4].
        for (place, mut list) in starts {
            list.sort_unstable();
            let list: Vec<String> = list.iter().map(u32::to_string).collect();
            where_.push(format!("{place} [{}]", list.join(",")));
        }
        let list = if where_.is_empty() { String::new() } else { format!(": {}", where_.join(", ")) };
        per_site.push(format!("site {} has room for {}{list}", sites[s].name, mine.len()));
    }
    let wanted = describe_wanted(sites, Wanted::of_serve(serve));
    let found = if per_site.is_empty() { format!("no site matches {wanted}") } else { per_site.join("; ") };
    let mut d = Diagnostic::new(
        codes::CAPACITY_SHORT,
        serve.name.span,
        format!("serve \"{}\" needs {} × {what} in {wanted}; {found}", plan.name, plan.replicas),
    )
    .with_primary_label(format!("{} of {} replicas placed", plan.placements.len(), plan.replicas));
    if let Some(span) = serve.replicas.written_span() {
        d = d.with_label(span, "replicas asked for");
    }
    // Say why every node of the candidate sites could not take more.
    for &s in request.sites.iter() {
        let site = &sites[s];
        for (node, declared) in site.nodes.iter().zip(&spec.sites[s].nodes) {
            let reason = node_reason(inventory, request, plan, s, &node.name, node.gpu.as_deref(), node.mig, spec);
            d = d.with_label(declared.name.span, format!("{}: {reason}", node.name));
        }
        for (pool, declared) in site.pools.iter().zip(&spec.sites[s].pools) {
            let used = inventory
                .tpu_slices
                .iter()
                .filter(|t| t.pool_item == pool.item)
                .filter(|t| t.used_by.is_some())
                .count()
                + inventory.gpus.iter().filter(|g| g.node_item == pool.item && !g.is_free()).count();
            d = d.with_label(
                declared.name.span,
                format!(
                    "{}: {} × {}, max {} machines, {used} in use",
                    pool.name,
                    pool.accelerator,
                    pool.topology.as_deref().unwrap_or("1"),
                    pool.max
                ),
            );
        }
        if site.nodes.is_empty() && site.pools.is_empty() {
            d = d.with_label(site.span, format!("site {} has no GPU nodes or accelerator pools", site.name));
        }
    }
    // Sites left out by residency: say so, they are the first place a reader looks.
    if let Some(residency) = &sites.residency {
        for site in sites.sites.iter().filter(|s| s.tier != Tier::Device && &s.jurisdiction != residency) {
            if !request.sites.contains(&site.id) {
                d = d.with_label(
                    site.span,
                    format!(
                        "site {} is in {}, outside the fabric's residency {residency}: only `site=` places there",
                        site.name, site.jurisdiction
                    ),
                );
            }
        }
    }
    d.with_help(
        "lower `replicas`, add GPUs or nodes, enable MIG on a node (`mig=#true`), or widen `site=` to a `tier=`",
    )
}

/// Why a node could not take another replica of `plan`.
#[allow(clippy::too_many_arguments)]
fn node_reason(
    inventory: &Inventory,
    request: &Request,
    plan: &PlacedServe,
    site: SiteId,
    node: &str,
    model: Option<&str>,
    mig: bool,
    spec: &Spec,
) -> String {
    let Some(model) = model else { return "no GPUs".to_owned() };
    if matches!(plan.shape, Shape::Mig(_)) && !mig {
        return "MIG is off (mig=#false)".to_owned();
    }
    if !request.accelerators.iter().any(|a| a == model) {
        return match (&plan.shape, plan.memory_on(model)) {
            (Shape::Mig(_), _) if !mig => "MIG is off (mig=#false)".to_owned(),
            (Shape::Mig(profile), None) => format!("{model} has no {profile} profile"),
            (_, Some(memory)) => format!(
                "{model}: the model does not fit ({} needed, {} usable)",
                gib(memory.weights + memory.kv_per_sequence),
                gib(memory.usable)
            ),
            (_, None) => format!("{model} is not usable for this serve"),
        };
    }
    let gpus: Vec<&placement::GpuState> =
        inventory.gpus.iter().filter(|g| g.site == site && &*g.node == node).collect();
    let describe = |g: &placement::GpuState| -> String {
        if let Some(serve) = g.whole {
            return format!("{}: whole, {}", g.index, spec.serves[serve].name.qualified);
        }
        if g.instances.is_empty() {
            return format!("{}: free", g.index);
        }
        let parts: Vec<String> = g
            .instances
            .iter()
            .map(|i| format!("{}@{} {}", i.profile, i.start, spec.serves[i.serve].name.qualified))
            .collect();
        format!("{}: {}", g.index, parts.join(", "))
    };
    format!("{} × {model}; {}", gpus.len(), gpus.iter().map(|g| describe(g)).collect::<Vec<_>>().join("; "))
}

/// Where each vector store runs: its `site`; with `tier` (or neither),
/// beside the first serve that uses it, else on the first candidate site
/// with a cluster. Stores with nowhere to go are left out.
#[must_use]
pub fn vectorstore_sites(spec: &Spec, sites: &Sites, serves: &[PlacedServe]) -> BTreeMap<Id<VectorStore>, SiteId> {
    // The sites of the serves that use each store, in spec order.
    let mut users: BTreeMap<Id<VectorStore>, Vec<SiteId>> = BTreeMap::new();
    for plan in serves {
        for store in &spec.serves[plan.serve].uses {
            users.entry(store.value).or_default().extend(plan.placements.iter().map(|p| p.site));
        }
    }
    let mut out = BTreeMap::new();
    // Shared lists, and membership without a search: many `tier=` stores
    // over many sites would otherwise build and scan a list each.
    let mut lists = Candidates::default();
    for (id, store) in spec.vectorstores.iter() {
        let wanted = Wanted::of_store(store);
        let (candidates, _) = lists.get(sites, wanted);
        let site = if wanted.site.is_some() {
            candidates.first().copied()
        } else {
            let tiers = wanted.tiers();
            let admits = |s: SiteId| tiers.contains(&sites[s].tier) && sites.is_resident(s);
            users
                .get(&id)
                .and_then(|used| used.iter().copied().find(|&s| admits(s)))
                .or_else(|| candidates.iter().copied().find(|&s| sites[s].has_cluster))
        };
        if let Some(site) = site {
            out.insert(id, site);
        }
    }
    out
}
