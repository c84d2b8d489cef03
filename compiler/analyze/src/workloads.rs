//! Where each workload runs, computed once: serves from their placements,
//! vector stores beside their users, edges on their fleet's site, Temporal
//! on its site, evals where their Temporal runs. The flows, the graph and
//! the emitters all read this one map.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use sovereign_ir::ItemId;
use sovereign_model::{Id, Spec, VectorStore};

use crate::capacity::PlacedServe;
use crate::view::SiteId;

/// The sites of every workload, by its IR item.
#[derive(Clone, Debug, Default)]
pub struct WorkloadSites {
    /// The first (usually only) site of each workload, by item; `u32::MAX` when it has none.
    first: Vec<u32>,
    /// Every site of the workloads on several (serves placed on several sites).
    several: HashMap<ItemId, Vec<SiteId>>,
    /// The workloads of each site, by site index, in item order: what an
    /// emitter building a few sites of a large fabric walks instead of all.
    on_site: Vec<Vec<ItemId>>,
}

impl WorkloadSites {
    /// `items` is the number of IR items.
    #[must_use]
    pub fn new(
        spec: &Spec,
        items: usize,
        serves: &[PlacedServe],
        stores: &BTreeMap<Id<VectorStore>, SiteId>,
    ) -> WorkloadSites {
        let mut w = WorkloadSites { first: vec![u32::MAX; items], several: HashMap::new(), on_site: Vec::new() };
        for plan in serves {
            let mut placed: Vec<SiteId> = plan.placements.iter().map(|p| p.site).collect();
            placed.sort_unstable();
            placed.dedup();
            if let Some(&first) = placed.first() {
                w.set(plan.item, first);
            }
            if placed.len() > 1 {
                w.several.insert(plan.item, placed);
            }
        }
        for edge in spec.edges.values() {
            w.set(edge.item, edge.fleet.value.parent);
        }
        for temporal in spec.temporals.values() {
            w.set(temporal.item, temporal.site.value);
        }
        for eval in spec.evals.values() {
            w.set(eval.item, spec.temporals[eval.runs_on.temporal.value].site.value);
        }
        for (&store, &site) in stores {
            w.set(spec.vectorstores[store].item, site);
        }
        let mut on_site = vec![Vec::new(); spec.sites.len()];
        for item in (0..w.first.len()).map(|i| ItemId(u32::try_from(i).unwrap_or(u32::MAX))) {
            for site in w.sites(item) {
                if let Some(on) = on_site.get_mut(site.index()) {
                    on.push(item);
                }
            }
        }
        w.on_site = on_site;
        w
    }

    /// The workloads on a site (serves, vector stores, edges, Temporal
    /// clusters, evals), in item order.
    #[must_use]
    pub fn on(&self, site: SiteId) -> &[ItemId] {
        self.on_site.get(site.index()).map_or(&[], Vec::as_slice)
    }

    fn set(&mut self, item: ItemId, site: SiteId) {
        if let Some(slot) = self.first.get_mut(item.0 as usize) {
            *slot = u32::try_from(site.index()).unwrap_or(u32::MAX);
        }
    }

    /// The site of a workload (the first, for a serve on several).
    #[must_use]
    pub fn site(&self, item: ItemId) -> Option<SiteId> {
        self.first.get(item.0 as usize).filter(|&&s| s != u32::MAX).map(|&s| SiteId::from_index(s as usize))
    }

    /// Every site of a workload, in site order, without allocating for the usual single one.
    pub fn sites(&self, item: ItemId) -> impl Iterator<Item = SiteId> + '_ {
        let several = self.several.get(&item);
        let single = if several.is_none() { self.site(item) } else { None };
        several.into_iter().flatten().copied().chain(single)
    }
}
