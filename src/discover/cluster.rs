//! `sovereign discover --kubeconfig`: a `site` block for a whole cluster,
//! from its Node objects and the labels GPU feature discovery and the
//! device plugin put on them.
//!
//! Facts (../shared/reference/targets-facts.md §2.2, from
//! NVIDIA/k8s-device-plugin `docs/gpu-feature-discovery/README.md`):
//! `nvidia.com/gpu.product` is the model name with spaces as `-`
//! (`NVIDIA-H100-80GB-HBM3`), with `-SHARED` under sharing and
//! `-MIG-<profile>` under the single MIG strategy; `nvidia.com/gpu.count`
//! the GPUs; `nvidia.com/gpu.memory` MiB per GPU; `nvidia.com/mig.capable`;
//! `nvidia.com/mig-<profile>.count` per profile under the mixed strategy;
//! `nvidia.com/mig.config`, the layout a user asked MIG manager for
//! (`all-disabled` is none). CPUs and memory from `status.capacity`.

use serde_json::Value;
use sovereign_catalog::Catalog;

use super::{Machine, SeenGpu};

/// The machines of a cluster's Node objects, in name order; GPU products
/// mapped back to the name `nvidia-smi` prints where the catalog knows it.
pub(crate) fn machines(nodes: &[Value], catalog: &Catalog) -> Vec<Machine> {
    let mut machines: Vec<Machine> = nodes.iter().filter_map(|node| machine(node, catalog)).collect();
    machines.sort_by(|a, b| a.name.cmp(&b.name));
    machines
}

fn machine(node: &Value, catalog: &Catalog) -> Option<Machine> {
    let text = |pointer: &str| node.pointer(pointer).and_then(Value::as_str);
    let name = text("/metadata/name")?;
    let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let cpus = text("/status/capacity/cpu").and_then(|c| c.parse::<u32>().ok());
    let memory_gib = text("/status/capacity/memory").and_then(quantity_bytes).map(|bytes| bytes >> 30);
    let mut gpus = Vec::new();
    if let Some(product) = label("nvidia.com/gpu.product") {
        let base = product.split("-MIG-").next().unwrap_or(product).trim_end_matches("-SHARED");
        let product = catalog
            .gpus
            .values()
            .find(|g| g.product.replace(' ', "-") == base)
            .map_or_else(|| base.replace('-', " "), |g| g.product.clone());
        let count = label("nvidia.com/gpu.count").and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
        let known = catalog.gpus.values().find(|g| g.product == product).map(|g| g.memory_mib);
        let memory_mib = label("nvidia.com/gpu.memory").and_then(|m| m.parse().ok()).or(known).unwrap_or(0);
        let mig_enabled = label("nvidia.com/mig.config").is_some_and(|c| c != "all-disabled")
            || labels.is_some_and(|l| {
                l.iter().any(|(k, v)| {
                    k.starts_with("nvidia.com/mig-")
                        && k.ends_with(".count")
                        && v.as_str().and_then(|v| v.parse::<u32>().ok()).is_some_and(|n| n > 0)
                })
            });
        gpus = vec![SeenGpu { product, memory_mib, mig_enabled }; count];
    }
    let name = sovereign_ir::values::suggest_name(name)?;
    Some(Machine { name, cpus, memory_gib, gpus, profiles: Vec::new() })
}

/// A Kubernetes quantity of bytes (`1056270588Ki`, `512Gi`, `1e9`), as
/// bytes: the spec's own size units, or a bare number.
fn quantity_bytes(text: &str) -> Option<u64> {
    sovereign_ir::values::parse_bytes(text).ok().or_else(|| text.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_read_as_the_api_writes_them() {
        assert_eq!(quantity_bytes("1056270588Ki"), Some(1_056_270_588 << 10));
        assert_eq!(quantity_bytes("512Gi"), Some(512 << 30));
        assert_eq!(quantity_bytes("2G"), Some(2_000_000_000));
        assert_eq!(quantity_bytes("4096"), Some(4096));
        assert_eq!(quantity_bytes("lots"), None);
        assert_eq!(quantity_bytes("99999999999999999999Ti"), None);
    }
}
