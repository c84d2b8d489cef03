//! The sites as the analysis sees them: the typed model's sites, each with
//! its jurisdiction (from the catalog) and its hardware as the placement
//! reads it, indexed by the model's own [`SiteId`].

use std::ops::Index;
use std::sync::Arc;

use sovereign_catalog::Catalog;
use sovereign_diagnostics::Span;
use sovereign_ir::ItemId;
use sovereign_model::{FleetId, Id, Spec};

pub use sovereign_model::Tier;

/// A site of the fabric: an index into [`Spec::sites`] and into [`Sites`].
pub type SiteId = Id<sovereign_model::Site>;

/// A serve of the fabric: an index into [`Spec::serves`] and into the analysis' placed serves.
pub type ServeId = Id<sovereign_model::Serve>;

/// A site and what runs there.
#[derive(Clone, Debug)]
pub struct Site {
    pub id: SiteId,
    pub item: ItemId,
    /// Shared with the IR.
    pub name: Arc<str>,
    pub tier: Tier,
    pub region: Arc<str>,
    /// The jurisdiction of the region (empty when the catalog does not know it, already reported by check).
    pub jurisdiction: String,
    pub has_cluster: bool,
    pub nodes: Vec<GpuNode>,
    pub pools: Vec<Pool>,
    pub fleets: Vec<Fleet>,
    /// The span of the site's name.
    pub span: Span,
}

/// A server of a site, as placement sees it.
#[derive(Clone, Debug)]
pub struct GpuNode {
    pub item: ItemId,
    pub name: String,
    /// Catalog name of the GPU, if the node has one.
    pub gpu: Option<Arc<str>>,
    pub gpus: u32,
    pub mig: bool,
}

/// An autoscaled accelerator pool of a cloud site.
#[derive(Clone, Debug)]
pub struct Pool {
    pub item: ItemId,
    pub name: String,
    pub accelerator: Arc<str>,
    pub topology: Option<Arc<str>>,
    /// The most machines (TPU slices, or GPU machines) it grows to.
    pub max: u32,
    /// GPUs per machine for a GPU pool.
    pub gpus: u32,
}

/// A device fleet.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub item: ItemId,
    /// `site/fleet`.
    pub qualified: String,
    pub soc: Arc<str>,
    pub count: u32,
    pub memory: u64,
}

/// The sites of a fabric and its default residency.
#[derive(Clone, Debug, Default)]
pub struct Sites {
    /// In spec order: `sites[id.index()]` is the site `id`.
    pub sites: Vec<Site>,
    /// The fabric's residency (jurisdiction), if declared.
    pub residency: Option<String>,
    /// Site ids by name.
    by_name: hashbrown::HashMap<Arc<str>, SiteId>,
}

impl Sites {
    #[must_use]
    pub fn read(spec: &Spec, catalog: &Catalog) -> Sites {
        let sites: Vec<Site> = spec
            .sites
            .iter()
            .map(|(id, site)| Site {
                id,
                item: site.item,
                name: site.name.qualified.clone(),
                tier: site.tier.value,
                region: site.region.value.clone(),
                jurisdiction: catalog.jurisdiction_of(&site.region.value).unwrap_or_default().to_owned(),
                has_cluster: site.cluster.is_some(),
                nodes: site
                    .nodes
                    .iter()
                    .map(|n| GpuNode {
                        item: n.item,
                        name: n.name.text().to_owned(),
                        gpu: n.gpu.as_ref().map(|g| g.value.clone()),
                        gpus: n.gpus.value,
                        mig: n.mig.value,
                    })
                    .collect(),
                pools: site
                    .pools
                    .iter()
                    .map(|p| Pool {
                        item: p.item,
                        name: p.name.text().to_owned(),
                        accelerator: p.accelerator.value.clone(),
                        topology: p.topology.as_ref().map(|t| t.value.clone()),
                        max: p.max.value,
                        gpus: p.gpus.value,
                    })
                    .collect(),
                fleets: site
                    .fleets
                    .iter()
                    .map(|f| Fleet {
                        item: f.item,
                        qualified: f.name.qualified.to_string(),
                        soc: f.soc.value.clone(),
                        count: f.count.value,
                        memory: f.memory.value,
                    })
                    .collect(),
                span: site.name.span,
            })
            .collect();
        let by_name = sites.iter().map(|s| (s.name.clone(), s.id)).collect();
        Sites { sites, residency: spec.residency().map(str::to_owned), by_name }
    }

    /// Which sites a build of the sites named in `only` builds, by site
    /// index; every site without `only`. A lookup per named site, so that
    /// a batch of a few sites of a large fabric asks a few, not every one.
    #[must_use]
    pub fn wanted(&self, only: Option<&hashbrown::HashSet<Arc<str>>>) -> SiteMask {
        let Some(only) = only else { return SiteMask(vec![true; self.sites.len()]) };
        let mut wanted = vec![false; self.sites.len()];
        for id in only.iter().filter_map(|name| self.by_name.get(name)) {
            wanted[id.index()] = true;
        }
        SiteMask(wanted)
    }

    /// A fleet, as the analysis reads it.
    #[must_use]
    pub fn fleet(&self, id: FleetId) -> &Fleet {
        &self[id.parent].fleets[id.index as usize]
    }

    /// Whether `site` is in the fabric's residency (every site is, without one).
    #[must_use]
    pub fn is_resident(&self, site: SiteId) -> bool {
        self.residency.as_deref().is_none_or(|r| r == self[site].jurisdiction)
    }

    /// Every site id, in spec order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = SiteId> + use<> {
        (0..self.sites.len()).map(SiteId::from_index)
    }
}

/// The sites one build builds (a batch of a large fabric), by site index.
#[derive(Clone, Debug, Default)]
pub struct SiteMask(Vec<bool>);

impl SiteMask {
    /// Whether the build builds the site with this index.
    #[must_use]
    pub fn has(&self, site: usize) -> bool {
        self.0.get(site).copied().unwrap_or(false)
    }
}

impl Index<SiteId> for Sites {
    type Output = Site;
    fn index(&self, id: SiteId) -> &Site {
        &self.sites[id.index()]
    }
}
