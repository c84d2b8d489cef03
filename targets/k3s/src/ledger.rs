//! `ledger` → the Iceberg catalog configuration eval jobs read: a
//! ConfigMap holding a `.pyiceberg.yaml` with one catalog entry, in the
//! evaluation namespace of every cluster that runs evals.
//!
//! Format (apache/iceberg-python `mkdocs/docs/configuration.md`):
//! `catalog: {<name>: {type: rest|glue|hive, uri, warehouse}}`; pyiceberg
//! looks in `$PYICEBERG_HOME` first, so a job mounts this ConfigMap there.
//! Credentials are not part of the ledger declaration yet: a job passes
//! them through `PYICEBERG_CATALOG__<NAME>__*` variables from a Secret.

use serde_json::json;
use sovereign_analyze::Analysis;
use sovereign_desired::DesiredState;
use sovereign_desired::modules::{Module, namespace_name};
use sovereign_model::{IcebergCatalog, Spec};

use crate::labels::{Context, Declaration, label_value};
use crate::namespaces::namespace_id;

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, context: &Context, state: &mut DesiredState) {
    if spec.ledgers.is_empty() {
        return;
    }
    let namespace = namespace_name(&context.fabric, Module::Alchemist);
    let mut sites: Vec<usize> =
        spec.evals.values().flat_map(|e| analysis.workload_sites.sites(e.item)).map(|s| s.index()).collect();
    sites.sort_unstable();
    sites.dedup();
    for ledger in spec.ledgers.values() {
        let name = &ledger.name.qualified;
        let mut entry = json!({
            "type": match ledger.catalog.value {
                IcebergCatalog::Rest => "rest",
                IcebergCatalog::Glue => "glue",
                IcebergCatalog::Hive => "hive",
            },
            "warehouse": ledger.warehouse.value.as_str(),
        });
        if let Some(uri) = &ledger.uri {
            entry["uri"] = json!(uri.value.as_str());
        }
        let mut text = String::new();
        if let Err(why) =
            sovereign_desired::yaml::append_document(&json!({ "catalog": { &**name: entry } }).to_string(), &mut text)
        {
            state.unbuilt.push(format!("ledger \"{name}\": its catalog configuration: {why}"));
            continue;
        }
        let declaration = Declaration { kind: "ledger", name: name.clone() };
        for &site in &sites {
            let site = &analysis.sites.sites[site];
            if !site.has_cluster || !context.wants(site.id.index()) {
                continue;
            }
            let object = label_value(&format!("sovereign-ledger-{name}").replace(['/', '.', '_'], "-")).to_lowercase();
            let metadata = context.metadata(&object, Some(&namespace), Some(&declaration));
            let rest = json!({ "data": { ".pyiceberg.yaml": text } });
            let mut config = context.object(&site.name, "v1", "ConfigMap", &metadata, rest, Some(&declaration));
            config.depends_on.insert(namespace_id(&site.name, &namespace));
            state.add(config);
        }
    }
}
