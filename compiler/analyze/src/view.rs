//! A typed view of the checked fabric: the sites, their hardware and the
//! workloads, read once from the IR so the passes do not each re-read it.
//!
//! Values the spec leaves out get the schema's defaults here, in one place.

use std::collections::BTreeMap;
use std::sync::Arc;

use sovereign_catalog::Catalog;
use sovereign_diagnostics::Span;
use sovereign_ir::{Fabric, Item, ItemId, Value, ValueKind};

/// The tier of a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Cloud,
    Server,
    Device,
}

impl Tier {
    /// The one reading of a `tier` value.
    #[must_use]
    pub fn parse(text: &str) -> Option<Tier> {
        match text {
            "cloud" => Some(Tier::Cloud),
            "server" => Some(Tier::Server),
            "device" => Some(Tier::Device),
            _ => None,
        }
    }

    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Tier::Cloud => "cloud",
            Tier::Server => "server",
            Tier::Device => "device",
        }
    }
}

/// A site and what runs there.
#[derive(Clone, Debug)]
pub struct Site {
    pub id: ItemId,
    /// Shared with the IR.
    pub name: Arc<str>,
    pub tier: Tier,
    pub region: String,
    /// The jurisdiction of the region (empty when the region is unknown, already reported by check).
    pub jurisdiction: String,
    pub has_cluster: bool,
    pub nodes: Vec<GpuNode>,
    pub pools: Vec<Pool>,
    pub fleets: Vec<Fleet>,
    /// The span of the site's name.
    pub span: Span,
}

/// A server with GPUs.
#[derive(Clone, Debug)]
pub struct GpuNode {
    pub id: ItemId,
    pub name: String,
    /// Catalog name of the GPU, if the node has one.
    pub gpu: Option<String>,
    pub gpus: u32,
    pub mig: bool,
}

/// An autoscaled accelerator pool of a cloud site.
#[derive(Clone, Debug)]
pub struct Pool {
    pub id: ItemId,
    pub name: String,
    pub accelerator: String,
    pub topology: Option<String>,
    /// The most machines (TPU slices, or GPU machines) it grows to.
    pub max: u32,
    /// GPUs per machine for a GPU pool.
    pub gpus: u32,
}

/// A device fleet.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub id: ItemId,
    /// `site/fleet`.
    pub qualified: String,
    pub soc: String,
    pub count: u32,
    pub memory: u64,
}

/// The sites of a fabric and its default residency.
#[derive(Clone, Debug, Default)]
pub struct Sites {
    pub sites: Vec<Site>,
    /// The fabric's residency (jurisdiction), if declared.
    pub residency: Option<String>,
    /// Site and fleet items to their site index (and fleet index).
    index: BTreeMap<ItemId, (usize, Option<usize>)>,
}

impl Sites {
    #[must_use]
    pub fn read(fabric: &Fabric, catalog: &Catalog) -> Sites {
        let mut sites = Vec::new();
        for (id, item) in fabric.of_kind("site") {
            let Some(name) = &item.name else { continue };
            let Some(tier) = str_prop(item, "tier").and_then(Tier::parse) else { continue };
            let region = str_prop(item, "region").unwrap_or_default().to_owned();
            let mut site = Site {
                id,
                name: name.qualified.clone(),
                tier,
                jurisdiction: catalog.jurisdiction_of(&region).unwrap_or_default().to_owned(),
                region,
                has_cluster: false,
                nodes: Vec::new(),
                pools: Vec::new(),
                fleets: Vec::new(),
                span: name.span,
            };
            for &child_id in &item.children {
                let child = fabric.item(child_id);
                let child_name = child.name.as_ref().map(|n| n.text().to_owned()).unwrap_or_default();
                match &*child.kind {
                    "site/cluster" => site.has_cluster = true,
                    "site/node" => site.nodes.push(GpuNode {
                        id: child_id,
                        name: child_name,
                        gpu: str_prop(child, "gpu").map(str::to_owned),
                        gpus: int_prop(child, "gpus").unwrap_or(0),
                        mig: bool_prop(child, "mig").unwrap_or(false),
                    }),
                    "site/pool" => site.pools.push(Pool {
                        id: child_id,
                        name: child_name,
                        accelerator: str_prop(child, "accelerator").unwrap_or_default().to_owned(),
                        topology: str_prop(child, "topology").map(str::to_owned),
                        max: int_prop(child, "max").unwrap_or(1),
                        gpus: int_prop(child, "gpus").unwrap_or(1),
                    }),
                    "site/fleet" => site.fleets.push(Fleet {
                        id: child_id,
                        qualified: child.name.as_ref().map(|n| n.qualified.to_string()).unwrap_or_default(),
                        soc: str_prop(child, "soc").unwrap_or_default().to_owned(),
                        count: int_prop(child, "count").unwrap_or(1),
                        memory: bytes_prop(child, "memory").unwrap_or(0),
                    }),
                    _ => {}
                }
            }
            sites.push(site);
        }
        let residency =
            fabric.of_kind("fabric/residency").next().and_then(|(_, item)| item.args.first()).and_then(|v| {
                match &v.kind {
                    ValueKind::Str(s) => Some(s.clone()),
                    _ => None,
                }
            });
        let mut index = BTreeMap::new();
        for (i, site) in sites.iter().enumerate() {
            index.insert(site.id, (i, None));
            for (f, fleet) in site.fleets.iter().enumerate() {
                index.insert(fleet.id, (i, Some(f)));
            }
        }
        Sites { sites, residency, index }
    }

    /// The site declared as item `id`.
    #[must_use]
    pub fn by_id(&self, id: ItemId) -> Option<usize> {
        match self.index.get(&id) {
            Some(&(site, None)) => Some(site),
            _ => None,
        }
    }

    /// The site a fleet (`site/fleet` item) belongs to, and the fleet.
    #[must_use]
    pub fn fleet(&self, id: ItemId) -> Option<(usize, &Fleet)> {
        match self.index.get(&id) {
            Some(&(site, Some(fleet))) => Some((site, &self.sites[site].fleets[fleet])),
            _ => None,
        }
    }
}

/// A string (or enum) property.
#[must_use]
pub fn str_prop<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    match &item.prop(key)?.kind {
        ValueKind::Str(s) => Some(s),
        _ => None,
    }
}

/// A non-negative integer property that fits `u32`.
#[must_use]
pub fn int_prop(item: &Item, key: &str) -> Option<u32> {
    match item.prop(key)?.kind {
        ValueKind::Int(v) => u32::try_from(v).ok(),
        _ => None,
    }
}

#[must_use]
pub fn bool_prop(item: &Item, key: &str) -> Option<bool> {
    match item.prop(key)?.kind {
        ValueKind::Bool(b) => Some(b),
        _ => None,
    }
}

#[must_use]
pub fn bytes_prop(item: &Item, key: &str) -> Option<u64> {
    match item.prop(key)?.kind {
        ValueKind::Bytes(b) => Some(b),
        _ => None,
    }
}

/// The resolved target of a reference property.
#[must_use]
pub fn ref_prop(item: &Item, key: &str) -> Option<ItemId> {
    ref_target(item.prop(key)?)
}

/// The resolved target of a reference value.
#[must_use]
pub fn ref_target(val: &Value) -> Option<ItemId> {
    match val.kind {
        ValueKind::Ref { target, .. } => target,
        _ => None,
    }
}

/// The children of an item whose kind ends in `/name`.
pub fn children<'a>(
    fabric: &'a Fabric,
    item: &'a Item,
    name: &'a str,
) -> impl Iterator<Item = (ItemId, &'a Item)> + 'a {
    item.children
        .iter()
        .map(|&id| (id, fabric.item(id)))
        .filter(move |(_, child)| child.kind.rsplit_once('/').is_some_and(|(_, last)| last == name))
}

/// The first argument of the first child named `name`.
#[must_use]
pub fn child_arg<'a>(fabric: &'a Fabric, item: &'a Item, name: &str) -> Option<&'a Value> {
    item.children
        .iter()
        .map(|&id| fabric.item(id))
        .find(|child| child.kind.rsplit_once('/').is_some_and(|(_, last)| last == name))
        .and_then(|child| child.args.first())
}

/// The integer argument of a child, such as `replicas 2`.
#[must_use]
pub fn child_int(fabric: &Fabric, item: &Item, name: &str) -> Option<(u32, Span)> {
    let val = child_arg(fabric, item, name)?;
    match val.kind {
        ValueKind::Int(v) => u32::try_from(v).ok().map(|v| (v, val.span)),
        _ => None,
    }
}

/// The number argument of a child, such as `gpu-memory-utilization 0.9`.
#[must_use]
pub fn child_number(fabric: &Fabric, item: &Item, name: &str) -> Option<(f64, Span)> {
    let val = child_arg(fabric, item, name)?;
    match val.kind {
        ValueKind::Num(v) => Some((v, val.span)),
        ValueKind::Int(v) => Some((v as f64, val.span)),
        _ => None,
    }
}

/// The string argument of a child, such as `mig "3g.40gb"`.
#[must_use]
pub fn child_str<'a>(fabric: &'a Fabric, item: &'a Item, name: &str) -> Option<(&'a str, Span)> {
    let val = child_arg(fabric, item, name)?;
    match &val.kind {
        ValueKind::Str(s) => Some((s.as_str(), val.span)),
        _ => None,
    }
}

/// The name of a declared item; for an unnamed one (an `export "logfire"`),
/// its parent's name and its first argument (`autopilot/logfire`).
#[must_use]
pub fn name_of(fabric: &Fabric, id: ItemId) -> String {
    let item = fabric.item(id);
    if let Some(name) = &item.name {
        return name.qualified.to_string();
    }
    let arg = item.args.first().and_then(|v| match &v.kind {
        ValueKind::Str(s) => Some(s.as_str()),
        _ => None,
    });
    match (item.parent, arg) {
        (Some(parent), Some(arg)) => format!("{}/{arg}", name_of(fabric, parent)),
        (None, Some(arg)) => arg.to_owned(),
        _ => item.kind.to_string(),
    }
}

/// The span of an item's name, or of its keyword.
#[must_use]
pub fn name_span(item: &Item) -> Span {
    item.name.as_ref().map_or(item.keyword_span, |n| n.span)
}
