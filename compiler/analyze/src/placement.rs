//! Placement: every replica of every `serve` onto a concrete site, node,
//! GPU and MIG slice, whole GPUs (a tensor-parallel group on one node), or
//! a TPU slice of a cloud pool.
//!
//! Greedy and deterministic. Requests are placed largest first (whole-GPU
//! groups, then MIG profiles by size, then TPU slices), in spec order within
//! a size. Each replica takes the candidate that, in this order:
//! 1. holds the fewest replicas of the same serve on its node, then GPU (spread);
//! 2. leaves the least free room on its GPU or node (pack different serves tightly);
//! 3. comes first in site, node and GPU order;
//! 4. for MIG, starts at the highest legal slot, which keeps slot 0 (the only
//!    start of 4g and 7g profiles) free as long as possible.
//!
//! MIG geometry is the catalog's: an instance of a profile occupies `size`
//! of the 8 memory slices from one of its legal starts; instances never
//! overlap, a profile never exceeds its instance count, and the compute
//! slices of a GPU's instances never exceed 7.

use std::sync::Arc;

use sovereign_catalog::{Catalog, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES, MigProfile};
use sovereign_ir::ItemId;

use crate::free::{FreeIndex, MigState, NodeState, Scope, first_where};
use crate::view::{ServeId, SiteId, Sites};

/// What one replica needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One MIG instance of this profile.
    Mig(String),
    /// This many whole GPUs on one node (tensor parallel).
    Gpus(u32),
    /// One slice of a TPU pool.
    TpuSlice,
}

impl Shape {
    /// Placement order: bigger and harder first.
    fn order(&self, catalog: &Catalog) -> (u8, u32, u32) {
        match self {
            Shape::Gpus(n) => (0, u32::MAX - n, 0),
            Shape::Mig(profile) => {
                let (size, compute) =
                    catalog.gpus.values().find_map(|g| g.profile(profile)).map_or((0, 0), |p| (p.size, p.compute));
                (1, u32::MAX - size, u32::MAX - compute)
            }
            Shape::TpuSlice => (2, 0, 0),
        }
    }
}

/// One serve's request for capacity.
#[derive(Clone, Debug)]
pub struct Request {
    pub serve: ServeId,
    pub replicas: u32,
    pub shape: Shape,
    /// Candidate sites, by index into [`Sites::sites`], in preference order
    /// (shared by every request of the same tiers).
    pub sites: Arc<[SiteId]>,
    /// The same as scopes of the free-capacity index, in preference order.
    pub scopes: Vec<Scope>,
    /// Accelerator models (GPU or TPU catalog names) whose memory holds the model.
    pub accelerators: Vec<String>,
}

/// Where a replica's devices are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Devices {
    Mig { gpu: u32, profile: String, start: u32, size: u32 },
    Gpus { indices: Vec<u32> },
    Tpu { machine: u32, chips: u32 },
}

/// One placed replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub serve: ServeId,
    pub replica: u32,
    pub site: SiteId,
    /// The node (`gpu-01`) or pool (`v5e-2x4`) name.
    pub node: Arc<str>,
    pub node_item: ItemId,
    /// The accelerator's catalog name.
    pub accelerator: Arc<str>,
    pub devices: Devices,
}

/// One MIG instance on a GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigInstance {
    pub profile: String,
    pub start: u32,
    pub size: u32,
    pub serve: ServeId,
}

/// The state of one GPU after placement.
#[derive(Clone, Debug)]
pub struct GpuState {
    pub site: SiteId,
    /// Shared by the GPUs of a node: a large fabric has hundreds of thousands.
    pub node: Arc<str>,
    pub node_item: ItemId,
    /// A global node number, for spreading.
    node_key: usize,
    pub index: u32,
    pub model: Arc<str>,
    /// MIG may be enabled on this GPU (the node allows it and the card has profiles).
    pub mig_capable: bool,
    /// The serve holding the whole GPU.
    pub whole: Option<ServeId>,
    /// Bit i set = memory slice i taken.
    pub occupied: u8,
    pub compute: u32,
    pub instances: Vec<MigInstance>,
}

impl GpuState {
    /// Neither whole nor partitioned.
    #[must_use]
    pub fn is_free(&self) -> bool {
        self.whole.is_none() && self.instances.is_empty()
    }
}

/// One machine (slice) of a TPU pool.
#[derive(Clone, Debug)]
pub struct TpuSlice {
    pub site: SiteId,
    pub pool: Arc<str>,
    pub pool_item: ItemId,
    pool_key: usize,
    pub machine: u32,
    pub tpu: Arc<str>,
    pub chips: u32,
    pub used_by: Option<ServeId>,
}

/// All the accelerators of the fabric and what holds them.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub gpus: Vec<GpuState>,
    pub tpu_slices: Vec<TpuSlice>,
    /// Indices into `gpus` per site, in order: placement looks only at candidate sites.
    gpus_by_site: Vec<Vec<usize>>,
    /// Indices into `tpu_slices` per site.
    slices_by_site: Vec<Vec<usize>>,
    /// Free capacity by scope and state (see `free.rs`).
    pub(crate) free: FreeIndex,
}

impl Inventory {
    /// The GPUs of a site, in node and index order.
    pub fn site_gpus(&self, site: SiteId) -> impl Iterator<Item = (usize, &GpuState)> {
        self.gpus_by_site.get(site.index()).into_iter().flatten().map(|&g| (g, &self.gpus[g]))
    }

    /// The TPU pool slices of a site.
    pub fn site_slices(&self, site: SiteId) -> impl Iterator<Item = (usize, &TpuSlice)> {
        self.slices_by_site.get(site.index()).into_iter().flatten().map(|&t| (t, &self.tpu_slices[t]))
    }
}

impl Inventory {
    /// The `count` GPUs of one node (or GPU pool machine), all free.
    #[allow(clippy::too_many_arguments)]
    fn push_node(
        &mut self,
        site: SiteId,
        node: &Arc<str>,
        node_item: ItemId,
        node_key: usize,
        count: u32,
        model: &Arc<str>,
        mig_capable: bool,
    ) {
        for index in 0..count {
            self.gpus.push(GpuState {
                site,
                node: node.clone(),
                node_item,
                node_key,
                index,
                model: model.clone(),
                mig_capable,
                whole: None,
                occupied: 0,
                compute: 0,
                instances: Vec::new(),
            });
        }
    }

    /// Every GPU of every node and every TPU pool slice, and of each pool
    /// the machines that could be used: at most `replicas` (the replicas of
    /// all serves together; each needs one machine at most). A pool's `max`
    /// is a limit, not a count of what exists: materialising all of it made
    /// memory follow the declared numbers instead of the spec.
    #[must_use]
    pub fn new(sites: &Sites, catalog: &Catalog, replicas: u32) -> Inventory {
        let mut inventory = Inventory::default();
        let mut node_key = 0;
        for site in &sites.sites {
            let site_index = site.id;
            // Workloads run on a site's cluster: a site without one offers no
            // accelerators to place on (a `site=` serve there is SOV2005).
            if !site.has_cluster {
                continue;
            }
            for node in &site.nodes {
                let Some(model) = node.gpu.as_ref().filter(|m| catalog.gpus.contains_key(&***m)) else { continue };
                let mig_capable = node.mig && !catalog.gpus[&**model].mig.is_empty();
                let (name, model): (Arc<str>, Arc<str>) = (node.name.as_str().into(), model.clone());
                inventory.push_node(site_index, &name, node.item, node_key, node.gpus, &model, mig_capable);
                node_key += 1;
            }
            for pool in &site.pools {
                if catalog.gpus.contains_key(&*pool.accelerator) {
                    // A GPU pool: each machine is a node of `gpus` whole GPUs.
                    let model: Arc<str> = pool.accelerator.clone();
                    for machine in 0..pool.max.min(replicas) {
                        let name: Arc<str> = format!("{}#{machine}", pool.name).into();
                        inventory.push_node(site_index, &name, pool.item, node_key, pool.gpus, &model, false);
                        node_key += 1;
                    }
                } else if let Some(tpu) = catalog.tpus.get(&*pool.accelerator) {
                    let chips = pool.topology.as_deref().and_then(|t| tpu.chips(t)).unwrap_or(tpu.chips_per_host);
                    let (name, model): (Arc<str>, Arc<str>) = (pool.name.as_str().into(), pool.accelerator.clone());
                    for machine in 0..pool.max.min(replicas) {
                        inventory.tpu_slices.push(TpuSlice {
                            site: site_index,
                            pool: name.clone(),
                            pool_item: pool.item,
                            pool_key: node_key,
                            machine,
                            tpu: model.clone(),
                            chips,
                            used_by: None,
                        });
                    }
                    node_key += 1;
                }
            }
        }
        inventory.gpus_by_site = vec![Vec::new(); sites.sites.len()];
        for (g, gpu) in inventory.gpus.iter().enumerate() {
            inventory.gpus_by_site[gpu.site.index()].push(g);
        }
        inventory.slices_by_site = vec![Vec::new(); sites.sites.len()];
        for (t, slice) in inventory.tpu_slices.iter().enumerate() {
            inventory.slices_by_site[slice.site.index()].push(t);
        }
        let mut site_gpus = vec![0usize; sites.sites.len()];
        for gpu in &inventory.gpus {
            site_gpus[gpu.site.index()] += 1;
        }
        inventory.free = FreeIndex::new(sites, node_key, &site_gpus);
        let mut g = 0;
        while g < inventory.gpus.len() {
            let key = inventory.gpus[g].node_key;
            let start = g;
            while g < inventory.gpus.len() && inventory.gpus[g].node_key == key {
                g += 1;
            }
            inventory.free.node_gpus[key] = start..g;
        }
        inventory
    }

    /// Builds the index of a scope on first use: a fabric whose serves all
    /// name their site never pays for tier indices, nor small sites for any.
    pub fn ensure_indexed(&mut self, scopes: &[Scope]) {
        for &scope in scopes {
            if !self.free.is_indexed(scope) || !self.free.built.insert(scope) {
                continue;
            }
            let sites: Vec<SiteId> = match scope {
                Scope::Site(site) => vec![site],
                Scope::Tier(_) => (0..self.gpus_by_site.len())
                    .map(SiteId::from_index)
                    .filter(|&s| self.free.scopes_of(s).contains(&scope))
                    .collect(),
            };
            for site in sites {
                let mut last = usize::MAX;
                for i in 0..self.gpus_by_site[site.index()].len() {
                    let g = self.gpus_by_site[site.index()][i];
                    let node = self.gpus[g].node_key;
                    if node != last {
                        last = node;
                        if let Some(state) = self.node_state(node) {
                            self.free.insert_node(&[scope], &state, node);
                        }
                    }
                    if let Some(state) = self.mig_state(g) {
                        self.free.insert_mig(&[scope], &state, g);
                    }
                }
            }
        }
    }

    /// The state the index files a GPU under, if MIG placement may use it.
    fn mig_state(&self, g: usize) -> Option<MigState> {
        let gpu = &self.gpus[g];
        if !gpu.mig_capable || gpu.whole.is_some() {
            return None;
        }
        let mut profiles: Vec<String> = gpu.instances.iter().map(|i| i.profile.clone()).collect();
        profiles.sort_unstable();
        Some(MigState { model: gpu.model.clone(), occupied: gpu.occupied, compute: gpu.compute, profiles })
    }

    fn node_state(&self, node: usize) -> Option<NodeState> {
        let range = self.free.node_gpus.get(node)?.clone();
        let first = self.gpus.get(range.start).filter(|_| !range.is_empty())?;
        let free = u32::try_from(range.clone().filter(|&g| self.gpus[g].is_free()).count()).unwrap_or(u32::MAX);
        Some(NodeState { model: first.model.clone(), mig_capable: first.mig_capable, free })
    }

    /// Runs `change` on GPU `g` and moves it (and its node) in the index
    /// if their states changed: only what moved is touched.
    fn update_gpu<T>(&mut self, g: usize, change: impl FnOnce(&mut GpuState) -> T) -> T {
        let node = self.gpus[g].node_key;
        let site = self.gpus[g].site;
        let scopes: Vec<Scope> =
            self.free.indexed_scopes_of(site).iter().copied().filter(|s| self.free.built.contains(s)).collect();
        if scopes.is_empty() {
            return change(&mut self.gpus[g]);
        }
        let (mig_before, node_before) = (self.mig_state(g), self.node_state(node));
        let result = change(&mut self.gpus[g]);
        let (mig_after, node_after) = (self.mig_state(g), self.node_state(node));
        if mig_before != mig_after {
            if let Some(state) = &mig_before {
                self.free.remove_mig(&scopes, state, g);
            }
            if let Some(state) = &mig_after {
                self.free.insert_mig(&scopes, state, g);
            }
        }
        if node_before != node_after {
            if let Some(state) = &node_before {
                self.free.remove_node(&scopes, state, node);
            }
            if let Some(state) = &node_after {
                self.free.insert_node(&scopes, state, node);
            }
        }
        result
    }

    /// The node key that follows `node`'s GPUs: where to look on after it.
    fn gpu_after_node(&self, g: usize) -> usize {
        self.free.node_gpus[self.gpus[g].node_key].end
    }

    /// Whether the index has any GPU node for `scopes` (no scan of their sites).
    #[must_use]
    pub fn has_gpus(&self, scopes: &[Scope]) -> bool {
        scopes.iter().any(|s| match s {
            Scope::Site(site) if !self.free.is_indexed(*s) => self.site_gpus(*site).next().is_some(),
            _ => self.free.nodes.get(s).is_some_and(|groups| !groups.is_empty()),
        })
    }

    /// The GPU models of `scopes`, with whether they may run MIG, in the
    /// order of their first node (scopes in order, then node order).
    #[must_use]
    pub fn gpu_models(&self, scopes: &[Scope]) -> Vec<(Arc<str>, bool)> {
        let mut found: Vec<(usize, usize, Arc<str>, bool)> = Vec::new();
        for (run, scope) in scopes.iter().enumerate() {
            if let Scope::Site(site) = scope
                && !self.free.is_indexed(*scope)
            {
                for (_, gpu) in self.site_gpus(*site) {
                    found.push((run, gpu.node_key, gpu.model.clone(), gpu.mig_capable));
                }
                continue;
            }
            for (state, set) in self.free.nodes.get(scope).into_iter().flatten() {
                if let Some(&first) = set.first() {
                    found.push((run, first, state.model.clone(), state.mig_capable));
                }
            }
        }
        found.sort_by_key(|(run, first, ..)| (*run, *first));
        let mut models: Vec<(Arc<str>, bool)> = Vec::new();
        for (_, _, model, mig) in found {
            if !models.contains(&(model.clone(), mig)) {
                models.push((model, mig));
            }
        }
        models
    }

    /// The preference run of `site` for a request over `scopes`.
    fn run_of(&self, scopes: &[Scope], site: SiteId) -> usize {
        let mine = self.free.scopes_of(site);
        scopes.iter().position(|s| mine.contains(s)).unwrap_or(usize::MAX)
    }
}

/// The outcome for one request.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub request: usize,
    pub placed: Vec<Placement>,
}

/// Places every request. Outcomes come back in request order; a request
/// whose `placed` is shorter than its replicas did not fit.
#[must_use]
pub fn place(requests: &[Request], inventory: &mut Inventory, catalog: &Catalog) -> Vec<Outcome> {
    for request in requests {
        inventory.ensure_indexed(&request.scopes);
    }
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| requests[i].shape.order(catalog));
    let node_count = inventory
        .gpus
        .iter()
        .map(|g| g.node_key + 1)
        .chain(inventory.tpu_slices.iter().map(|s| s.pool_key + 1))
        .max()
        .unwrap_or(0);
    let mut outcomes: Vec<Outcome> =
        (0..requests.len()).map(|request| Outcome { request, placed: Vec::new() }).collect();
    // Replicas of the current request per node and per GPU, for spreading.
    let mut spread = Spread {
        on_node: vec![0; node_count],
        on_gpu: vec![0; inventory.gpus.len()],
        touched: Vec::new(),
        nodes: Vec::new(),
    };
    for index in order {
        let request = &requests[index];
        spread.reset();
        for replica in 0..request.replicas {
            let placement = match &request.shape {
                Shape::Mig(profile) => place_mig(request, profile, replica, inventory, catalog, &mut spread),
                Shape::Gpus(n) => place_gpus(request, *n, replica, inventory, &mut spread),
                Shape::TpuSlice => place_tpu(request, replica, inventory, &mut spread),
            };
            match placement {
                Some(p) => outcomes[index].placed.push(p),
                None => break,
            }
        }
    }
    outcomes
}

/// Replicas of the request being placed, per node and per GPU. Only the
/// touched entries are reset between requests: clearing whole vectors per
/// request made placement quadratic in the fabric's size.
struct Spread {
    on_node: Vec<u32>,
    on_gpu: Vec<u32>,
    touched: Vec<(usize, Option<usize>)>,
    /// The distinct nodes of `touched`, in the order first used.
    nodes: Vec<usize>,
}

impl Spread {
    fn add(&mut self, node: usize, gpu: Option<usize>) {
        if self.on_node[node] == 0 {
            self.nodes.push(node);
        }
        self.on_node[node] += 1;
        if let Some(g) = gpu {
            self.on_gpu[g] += 1;
        }
        self.touched.push((node, gpu));
    }

    fn reset(&mut self) {
        self.nodes.clear();
        for (node, gpu) in self.touched.drain(..) {
            self.on_node[node] = 0;
            if let Some(g) = gpu {
                self.on_gpu[g] = 0;
            }
        }
    }
}

/// Spread on node, spread on GPU, free slices after, preference run, GPU
/// number (site, node and index order within a run), highest start.
type MigKey = (u32, u32, u32, usize, usize, std::cmp::Reverse<u32>);
/// Where a profile fits on a GPU (model, occupied slices, compute used,
/// instances of the profile): the profile, the start, free slices after.
type MigFit<'c> = dyn Fn(&str, u8, u32, usize) -> Option<(&'c MigProfile, u32, u32)> + 'c;
/// Spread on node, MIG node, free GPUs after, preference run, node.
type GroupKey = (u32, bool, usize, usize, usize);

fn place_mig(
    request: &Request,
    profile_name: &str,
    replica: u32,
    inventory: &mut Inventory,
    catalog: &Catalog,
    spread: &mut Spread,
) -> Option<Placement> {
    // Where a profile fits on a GPU of a state: the highest legal start, and
    // the memory slices left free after it.
    let fit = |model: &str, occupied: u8, compute: u32, same: usize| -> Option<(&MigProfile, u32, u32)> {
        if !request.accelerators.iter().any(|a| **a == *model) {
            return None;
        }
        let profile = catalog.gpus.get(model)?.profile(profile_name)?;
        if same >= profile.instances as usize || compute + profile.compute > MIG_COMPUTE_SLICES {
            return None;
        }
        let start = profile.starts.iter().rev().copied().find(|&s| profile.mask(s) & occupied == 0)?;
        Some((profile, start, MIG_MEMORY_SLICES - (occupied | profile.mask(start)).count_ones()))
    };
    // Every candidate by the full order, among `gpus`.
    let scan = |gpus: &mut dyn Iterator<Item = usize>| -> Option<(usize, u32)> {
        let mut best: Option<(MigKey, usize, u32)> = None;
        for g in gpus {
            let gpu = &inventory.gpus[g];
            if !gpu.mig_capable || gpu.whole.is_some() {
                continue;
            }
            let same = gpu.instances.iter().filter(|i| i.profile == profile_name).count();
            let Some((_, start, free_after)) = fit(&gpu.model, gpu.occupied, gpu.compute, same) else {
                continue;
            };
            let key = (
                spread.on_node[gpu.node_key],
                spread.on_gpu[g],
                free_after,
                inventory.run_of(&request.scopes, gpu.site),
                g,
                std::cmp::Reverse(start),
            );
            if best.as_ref().is_none_or(|(k, ..)| key < *k) {
                best = Some((key, g, start));
            }
        }
        best.map(|(_, g, start)| (g, start))
    };
    let chosen = match scanned_sites(request, inventory) {
        // A small site is not indexed: its GPUs are few, scanned.
        Some(sites) => scan(&mut sites.iter().flat_map(|&site| inventory.site_gpus(site).map(|(g, _)| g))),
        None => indexed_mig(request, profile_name, inventory, spread, &fit).or_else(|| {
            // Else the nodes it already uses, by the full order.
            scan(&mut spread.nodes.iter().flat_map(|&node| inventory.free.node_gpus[node].clone()))
        }),
    };
    let (g, start) = chosen?;
    let node = inventory.gpus[g].node_key;
    let profile = catalog.gpus.get(&*inventory.gpus[g].model)?.profile(profile_name)?;
    let placement = inventory.update_gpu(g, |gpu| {
        gpu.occupied |= profile.mask(start);
        gpu.compute += profile.compute;
        gpu.instances.push(MigInstance {
            profile: profile.name.clone(),
            start,
            size: profile.size,
            serve: request.serve,
        });
        Placement {
            serve: request.serve,
            replica,
            site: gpu.site,
            node: gpu.node.clone(),
            node_item: gpu.node_item,
            accelerator: gpu.model.clone(),
            devices: Devices::Mig { gpu: gpu.index, profile: profile.name.clone(), start, size: profile.size },
        }
    });
    spread.add(node, Some(g));
    Some(placement)
}

/// The sites to scan instead of searching the index: a request for one
/// site too small to be indexed, or every request in the reference mode
/// that tests compare the index with.
fn scanned_sites<'r>(request: &'r Request, inventory: &Inventory) -> Option<&'r [SiteId]> {
    match request.scopes.as_slice() {
        _ if inventory.free.scan_all => Some(&request.sites),
        [Scope::Site(site)] if !inventory.free.is_indexed(Scope::Site(*site)) => Some(&request.sites),
        _ => None,
    }
}

/// The best MIG candidate on a node the request does not use yet: the first
/// GPU of each group there (spread 0 beats any node already used).
fn indexed_mig<'c>(
    request: &Request,
    profile_name: &str,
    inventory: &Inventory,
    spread: &Spread,
    fit: &MigFit<'c>,
) -> Option<(usize, u32)> {
    let mut best: Option<((u32, usize, usize), usize, u32)> = None;
    for (run, scope) in request.scopes.iter().enumerate() {
        for (state, set) in inventory.free.mig.get(scope).into_iter().flatten() {
            let same = state.profiles.iter().filter(|p| **p == profile_name).count();
            let Some((_, start, free_after)) = fit(&state.model, state.occupied, state.compute, same) else {
                continue;
            };
            let untouched = |g: usize| spread.on_node[inventory.gpus[g].node_key] == 0;
            let Some(g) = first_where(set, untouched, |g| inventory.gpu_after_node(g)) else { continue };
            let key = (free_after, run, g);
            if best.as_ref().is_none_or(|(k, ..)| key < *k) {
                best = Some((key, g, start));
            }
        }
    }
    best.map(|(_, g, start)| (g, start))
}

fn place_gpus(
    request: &Request,
    n: u32,
    replica: u32,
    inventory: &mut Inventory,
    spread: &mut Spread,
) -> Option<Placement> {
    let allowed = |model: &str| request.accelerators.iter().any(|a| **a == *model);
    // Every candidate node by the full order, among `nodes`.
    let scan = |nodes: &mut dyn Iterator<Item = usize>| -> Option<(GroupKey, usize)> {
        let mut best: Option<(GroupKey, usize)> = None;
        for node in nodes {
            let range = inventory.free.node_gpus[node].clone();
            let Some(first) = inventory.gpus.get(range.start).filter(|_| !range.is_empty()) else { continue };
            let free = range.clone().filter(|&g| inventory.gpus[g].is_free()).count();
            if free < n as usize || !allowed(&first.model) {
                continue;
            }
            let run = inventory.run_of(&request.scopes, first.site);
            let key = (spread.on_node[node], first.mig_capable, free - n as usize, run, node);
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, node));
            }
        }
        best
    };
    let mut best: Option<(GroupKey, usize)> = None;
    let scanned = scanned_sites(request, inventory);
    if let Some(sites) = scanned {
        let mut nodes: Vec<usize> =
            sites.iter().flat_map(|&site| inventory.site_gpus(site).map(|(_, gpu)| gpu.node_key)).collect();
        nodes.dedup();
        best = scan(&mut nodes.into_iter());
    }
    // Nodes without a replica of this serve first (see `place_mig`).
    for (run, scope) in request.scopes.iter().enumerate().filter(|_| scanned.is_none()) {
        for (state, set) in inventory.free.nodes.get(scope).into_iter().flatten() {
            if state.free < n || !allowed(&state.model) {
                continue;
            }
            let Some(node) = first_where(set, |k| spread.on_node[k] == 0, |k| k + 1) else { continue };
            // Whole GPUs on a MIG node use up its flexibility: prefer nodes without MIG.
            let key = (0, state.mig_capable, (state.free - n) as usize, run, node);
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, node));
            }
        }
    }
    if best.is_none() {
        best = scan(&mut spread.nodes.iter().copied());
    }
    let (_, node) = best?;
    let chosen: Vec<usize> =
        inventory.free.node_gpus[node].clone().filter(|&g| inventory.gpus[g].is_free()).take(n as usize).collect();
    let mut indices = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        indices.push(inventory.update_gpu(i, |gpu| {
            gpu.whole = Some(request.serve);
            gpu.index
        }));
    }
    let first = &inventory.gpus[chosen[0]];
    spread.add(first.node_key, None);
    Some(Placement {
        serve: request.serve,
        replica,
        site: first.site,
        node: first.node.clone(),
        node_item: first.node_item,
        accelerator: first.model.clone(),
        devices: Devices::Gpus { indices },
    })
}

fn place_tpu(request: &Request, replica: u32, inventory: &mut Inventory, spread: &mut Spread) -> Option<Placement> {
    let mut best: Option<((u32, usize, usize, u32), usize)> = None;
    for (rank, &site) in request.sites.iter().enumerate() {
        for (i, slice) in inventory.site_slices(site) {
            if slice.used_by.is_some() || !request.accelerators.iter().any(|a| **a == *slice.tpu) {
                continue;
            }
            let key = (spread.on_node[slice.pool_key], rank, slice.pool_key, slice.machine);
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, i));
            }
        }
    }
    let (_, i) = best?;
    let slice = &mut inventory.tpu_slices[i];
    slice.used_by = Some(request.serve);
    spread.add(slice.pool_key, None);
    Some(Placement {
        serve: request.serve,
        replica,
        site: slice.site,
        node: slice.pool.clone(),
        node_item: slice.pool_item,
        accelerator: slice.tpu.clone(),
        devices: Devices::Tpu { machine: slice.machine, chips: slice.chips },
    })
}
