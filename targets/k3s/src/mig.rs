//! MIG layouts: the partition placement decided for each GPU, as a
//! mig-parted config in the ConfigMap the GPU Operator's MIG Manager reads,
//! and the `nvidia.com/mig.config` label that selects a node's layout.
//!
//! Facts (NVIDIA/mig-parted README; NVIDIA/gpu-operator values.yaml and
//! `assets/state-mig-manager`): the config is `version: v1` with
//! `mig-configs: {<layout>: [{devices: [index…], mig-enabled, mig-devices:
//! {<profile>: count}}]}`, under the key `config.yaml`; the MIG Manager
//! uses a custom ConfigMap only when `migManager.config.name` names it, and
//! applies the layout a node's `nvidia.com/mig.config` label names.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sovereign_analyze::Analysis;
use sovereign_desired::DesiredState;
use sovereign_ir::ItemId;
use sovereign_model::Spec;

use crate::labels::{Context, Declaration, label_value};
use crate::objects::Metadata;

/// The ConfigMap sovereign writes the layouts to, and where: the GPU
/// Operator's namespace (its chart's default install), outside the spec.
pub const CONFIG_MAP: &str = "sovereign-mig-parted-config";
pub const GPU_OPERATOR_NAMESPACE: &str = "gpu-operator";

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    // Per site, per node: each GPU index and its instances' profiles.
    let mut layouts: BTreeMap<usize, BTreeMap<(ItemId, Arc<str>), GpuLayouts>> = BTreeMap::new();
    // Only this build's sites (a large fabric is built in batches), and
    // only their GPUs: a batch never walks the whole inventory.
    let wanted = analysis.sites.sites.iter().filter(|s| context.wants(s.id.index()));
    for (_, gpu) in wanted.flat_map(|s| analysis.inventory.site_gpus(s.id)).filter(|(_, g)| g.mig_capable) {
        let node = layouts.entry(gpu.site.index()).or_default().entry((gpu.node_item, gpu.node.clone())).or_default();
        let profiles = node.entry(gpu.index).or_default();
        for instance in &gpu.instances {
            *profiles.entry(instance.profile.clone()).or_default() += 1;
        }
    }
    for (site_index, nodes) in layouts {
        let site = &analysis.sites.sites[site_index];
        if !context.wants(site.id.index()) {
            continue;
        }
        // Only nodes where placement partitioned something get a layout.
        let nodes: Vec<_> = nodes.into_iter().filter(|(_, gpus)| gpus.values().any(|p| !p.is_empty())).collect();
        if nodes.is_empty() {
            continue;
        }
        // The spec's names of the site's nodes, for the patches' declarations.
        let declared: BTreeMap<ItemId, &Arc<str>> =
            spec.sites[site.id].nodes.iter().map(|n| (n.item, &n.name.qualified)).collect();
        let mut configs = Map::new();
        for ((node_item, node), gpus) in &nodes {
            let layout = layout_name(node);
            let entries: Vec<Value> = gpus
                .iter()
                .map(|(index, profiles)| {
                    json!({ "devices": [index], "mig-enabled": !profiles.is_empty(), "mig-devices": profiles })
                })
                .collect();
            configs.insert(layout.clone(), Value::Array(entries));
            let declaration = Declaration {
                kind: "node",
                name: declared.get(node_item).map_or_else(|| node.clone(), |name| Arc::clone(name)),
            };
            // A label on the Node the cluster already has: a patch, never a Node definition.
            let mut metadata = Metadata { name: node.to_string(), ..Metadata::default() };
            metadata.labels.insert("nvidia.com/mig.config", layout);
            let mut label =
                context.object(&site.name, "v1", "Node", &metadata, serde_json::Map::new(), Some(&declaration));
            label.patch = true;
            state.add(label);
        }
        // The MIG manager's default layout (`migManager.config.default`, `all-disabled` in
        // NVIDIA/gpu-operator values.yaml v25.3.4, whose comment shows this entry) must be in
        // the ConfigMap it reads, for the nodes no layout names.
        configs.insert("all-disabled".into(), json!([{ "devices": "all", "mig-enabled": false }]));
        let config = json!({ "version": "v1", "mig-configs": configs });
        let mut text = String::new();
        // The config as YAML, the format mig-parted documents; a map of
        // lists and numbers always converts.
        if let Err(why) = sovereign_desired::yaml::append_document(&config.to_string(), &mut text) {
            state.unbuilt.push(format!("the MIG layouts of site \"{}\": {why}", site.name));
            continue;
        }
        let metadata = context.metadata(CONFIG_MAP, Some(GPU_OPERATOR_NAMESPACE), None);
        let mut rest = Map::new();
        rest.insert("data".into(), json!({ "config.yaml": text }));
        state.add(context.object(&site.name, "v1", "ConfigMap", &metadata, rest, None));
        if state.assumptions.iter().all(|a| !a.contains(CONFIG_MAP)) {
            state.assumptions.push(format!(
                "MIG layouts take effect only where the GPU Operator's chart sets `migManager.config.name: {CONFIG_MAP}` (and `mig.strategy: mixed`)"
            ));
        }
    }
}

/// Each GPU index of a node and how many instances of each profile it holds.
type GpuLayouts = BTreeMap<u32, BTreeMap<String, u32>>;

/// The layout of one node: `sovereign-<node>`, a valid label value.
fn layout_name(node: &str) -> String {
    label_value(&format!("sovereign-{node}"))
}
