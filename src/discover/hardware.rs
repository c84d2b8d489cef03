//! `plan --refresh`: where a site's declared nodes disagree with what its
//! cluster reports (the Node objects, read as `discover --kubeconfig`
//! reads them). Pure: the spec's nodes against the cluster's machines.

use sovereign_catalog::Catalog;
use sovereign_model::Site;

use super::Machine;

/// One warning per difference, naming the site, the node and both sides.
pub(crate) fn differences(site: &Site, live: &[Machine], catalog: &Catalog) -> Vec<String> {
    let mut found = Vec::new();
    let place = |node: &str| format!("site \"{}\" node \"{node}\"", site.name.qualified);
    for node in &site.nodes {
        let name = node.name.text();
        let Some(machine) = live.iter().find(|m| m.name == name) else {
            found.push(format!("{}: declared, and the cluster has no Node of that name", place(name)));
            continue;
        };
        let declared = node.gpu.as_ref().map(|gpu| (&*gpu.value, node.gpus.value)).filter(|(_, n)| *n > 0);
        let reported = machine.gpus.first().map(|gpu| {
            let model = catalog
                .gpus
                .values()
                .find(|g| g.product == gpu.product)
                .map_or(gpu.product.as_str(), |g| g.name.as_str());
            (model, u32::try_from(machine.gpus.len()).unwrap_or(u32::MAX))
        });
        if declared != reported {
            let say = |side: Option<(&str, u32)>| {
                side.map_or_else(|| "no GPU".to_owned(), |(model, n)| format!("{n} × {model}"))
            };
            found.push(format!(
                "{}: the spec declares {}, the cluster reports {} (GPU feature discovery's labels)",
                place(name),
                say(declared),
                say(reported)
            ));
        }
        if let (Some(cpu), Some(cpus)) = (&node.cpu, machine.cpus)
            && cpu.value != cpus
        {
            found.push(format!("{}: the spec declares {} CPUs, the cluster reports {cpus}", place(name), cpu.value));
        }
    }
    found
}
