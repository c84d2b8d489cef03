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
use sovereign_check::ir::ItemId;

use crate::view::Sites;

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
    pub serve: ItemId,
    pub replicas: u32,
    pub shape: Shape,
    /// Candidate sites, by index into [`Sites::sites`], in preference order.
    pub sites: Vec<usize>,
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
    pub serve: ItemId,
    pub replica: u32,
    pub site: usize,
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
    pub serve: ItemId,
}

/// The state of one GPU after placement.
#[derive(Clone, Debug)]
pub struct GpuState {
    pub site: usize,
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
    pub whole: Option<ItemId>,
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
    pub site: usize,
    pub pool: Arc<str>,
    pub pool_item: ItemId,
    pool_key: usize,
    pub machine: u32,
    pub tpu: Arc<str>,
    pub chips: u32,
    pub used_by: Option<ItemId>,
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
}

impl Inventory {
    /// The GPUs of a site, in node and index order.
    pub fn site_gpus(&self, site: usize) -> impl Iterator<Item = (usize, &GpuState)> {
        self.gpus_by_site.get(site).into_iter().flatten().map(|&g| (g, &self.gpus[g]))
    }

    /// The TPU pool slices of a site.
    pub fn site_slices(&self, site: usize) -> impl Iterator<Item = (usize, &TpuSlice)> {
        self.slices_by_site.get(site).into_iter().flatten().map(|&t| (t, &self.tpu_slices[t]))
    }
}

impl Inventory {
    /// The `count` GPUs of one node (or GPU pool machine), all free.
    #[allow(clippy::too_many_arguments)]
    fn push_node(
        &mut self,
        site: usize,
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
        for (site_index, site) in sites.sites.iter().enumerate() {
            for node in &site.nodes {
                let Some(model) = node.gpu.as_ref().filter(|m| catalog.gpus.contains_key(*m)) else { continue };
                let mig_capable = node.mig && !catalog.gpus[model].mig.is_empty();
                let (name, model): (Arc<str>, Arc<str>) = (node.name.as_str().into(), model.as_str().into());
                inventory.push_node(site_index, &name, node.id, node_key, node.gpus, &model, mig_capable);
                node_key += 1;
            }
            for pool in &site.pools {
                if catalog.gpus.contains_key(&pool.accelerator) {
                    // A GPU pool: each machine is a node of `gpus` whole GPUs.
                    let model: Arc<str> = pool.accelerator.as_str().into();
                    for machine in 0..pool.max.min(replicas) {
                        let name: Arc<str> = format!("{}#{machine}", pool.name).into();
                        inventory.push_node(site_index, &name, pool.id, node_key, pool.gpus, &model, false);
                        node_key += 1;
                    }
                } else if let Some(tpu) = catalog.tpus.get(&pool.accelerator) {
                    let chips = pool.topology.as_deref().and_then(|t| tpu.chips(t)).unwrap_or(tpu.chips_per_host);
                    let (name, model): (Arc<str>, Arc<str>) =
                        (pool.name.as_str().into(), pool.accelerator.as_str().into());
                    for machine in 0..pool.max.min(replicas) {
                        inventory.tpu_slices.push(TpuSlice {
                            site: site_index,
                            pool: name.clone(),
                            pool_item: pool.id,
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
            inventory.gpus_by_site[gpu.site].push(g);
        }
        inventory.slices_by_site = vec![Vec::new(); sites.sites.len()];
        for (t, slice) in inventory.tpu_slices.iter().enumerate() {
            inventory.slices_by_site[slice.site].push(t);
        }
        inventory
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
    let mut spread =
        Spread { on_node: vec![0; node_count], on_gpu: vec![0; inventory.gpus.len()], touched: Vec::new() };
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
}

impl Spread {
    fn add(&mut self, node: usize, gpu: Option<usize>) {
        self.on_node[node] += 1;
        if let Some(g) = gpu {
            self.on_gpu[g] += 1;
        }
        self.touched.push((node, gpu));
    }

    fn reset(&mut self) {
        for (node, gpu) in self.touched.drain(..) {
            self.on_node[node] = 0;
            if let Some(g) = gpu {
                self.on_gpu[g] = 0;
            }
        }
    }
}

/// Spread on node, spread on GPU, free slices after, site rank, node, GPU index, highest start.
type MigKey = (u32, u32, u32, usize, usize, u32, std::cmp::Reverse<u32>);
/// Spread on node, MIG node, free GPUs after, site rank, node.
type GroupKey = (u32, bool, usize, usize, usize);

fn place_mig(
    request: &Request,
    profile_name: &str,
    replica: u32,
    inventory: &mut Inventory,
    catalog: &Catalog,
    spread: &mut Spread,
) -> Option<Placement> {
    let mut best: Option<(MigKey, usize, u32)> = None;
    // The profile on each accelerator model the request may use, looked up once.
    let mut profiles: Vec<(&str, Option<&MigProfile>)> = Vec::new();
    for (rank, &site) in request.sites.iter().enumerate() {
        for (g, gpu) in inventory.site_gpus(site) {
            if !gpu.mig_capable || gpu.whole.is_some() {
                continue;
            }
            let profile = match profiles.iter().find(|(m, _)| **m == *gpu.model) {
                Some((_, p)) => *p,
                None => {
                    let p = catalog
                        .gpus
                        .get(&*gpu.model)
                        .and_then(|m| m.profile(profile_name))
                        .filter(|_| request.accelerators.iter().any(|a| **a == *gpu.model));
                    profiles.push((&gpu.model, p));
                    p
                }
            };
            let Some(profile) = profile else { continue };
            let same_profile = gpu.instances.iter().filter(|i| i.profile == profile.name).count();
            if same_profile >= profile.instances as usize || gpu.compute + profile.compute > MIG_COMPUTE_SLICES {
                continue;
            }
            let Some(start) = profile.starts.iter().rev().copied().find(|&s| profile.mask(s) & gpu.occupied == 0)
            else {
                continue;
            };
            let free_after = MIG_MEMORY_SLICES - (gpu.occupied | profile.mask(start)).count_ones();
            let key = (
                spread.on_node[gpu.node_key],
                spread.on_gpu[g],
                free_after,
                rank,
                gpu.node_key,
                gpu.index,
                std::cmp::Reverse(start),
            );
            if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                best = Some((key, g, start));
            }
        }
    }
    let (_, g, start) = best?;
    let gpu = &mut inventory.gpus[g];
    let profile = catalog.gpus.get(&*gpu.model)?.profile(profile_name)?;
    gpu.occupied |= profile.mask(start);
    gpu.compute += profile.compute;
    gpu.instances.push(MigInstance { profile: profile.name.clone(), start, size: profile.size, serve: request.serve });
    spread.add(gpu.node_key, Some(g));
    Some(Placement {
        serve: request.serve,
        replica,
        site: gpu.site,
        node: gpu.node.clone(),
        node_item: gpu.node_item,
        accelerator: gpu.model.clone(),
        devices: Devices::Mig { gpu: gpu.index, profile: profile.name.clone(), start, size: profile.size },
    })
}

fn place_gpus(
    request: &Request,
    n: u32,
    replica: u32,
    inventory: &mut Inventory,
    spread: &mut Spread,
) -> Option<Placement> {
    // Free GPUs per node, in GPU order.
    let mut best: Option<(GroupKey, Vec<usize>)> = None;
    let mut allowed: Vec<(&str, bool)> = Vec::new();
    for (rank, &site) in request.sites.iter().enumerate() {
        let gpus: Vec<usize> = inventory.site_gpus(site).map(|(g, _)| g).collect();
        for node in gpus.chunk_by(|&a, &b| inventory.gpus[a].node_key == inventory.gpus[b].node_key) {
            let first = &inventory.gpus[node[0]];
            let ok = match allowed.iter().find(|(m, _)| **m == *first.model) {
                Some((_, ok)) => *ok,
                None => {
                    let ok = request.accelerators.iter().any(|a| **a == *first.model);
                    allowed.push((&first.model, ok));
                    ok
                }
            };
            if !ok {
                continue;
            }
            let free: Vec<usize> = node.iter().copied().filter(|&i| inventory.gpus[i].is_free()).collect();
            if free.len() >= n as usize {
                // Whole GPUs on a MIG node use up its flexibility: prefer nodes without MIG.
                let key =
                    (spread.on_node[first.node_key], first.mig_capable, free.len() - n as usize, rank, first.node_key);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, free[..n as usize].to_vec()));
                }
            }
        }
    }
    let (_, chosen) = best?;
    let mut indices = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        inventory.gpus[i].whole = Some(request.serve);
        indices.push(inventory.gpus[i].index);
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
