//! `temporal` → the Temporal chart 1.x, on a PostgreSQL sovereign provides.
//!
//! Facts (temporalio/helm-charts `charts/temporal/values.yaml` and
//! `UPGRADING.md` at chart 1.6.0, ../shared/fixtures/helm-charts/temporal):
//! - chart 1.0 removed the database subcharts: persistence is the raw
//!   server config under `server.config.persistence` (`defaultStore`,
//!   `visibilityStore`, `numHistoryShards`, `datastores.<name>.sql` with
//!   `pluginName`, `driverName`, `databaseName`, `connectAddr`, `user`,
//!   `existingSecret`, `secretKey`, `createDatabase`, `manageSchema`);
//!   `cassandra.enabled` and `server.config.persistence.default.driver`
//!   are gone, and none of them is written here;
//! - `numHistoryShards` cannot change after the first deploy: 512, the
//!   chart's default, is fixed here;
//! - `server.config.namespaces.create: false`: sovereign registers
//!   namespaces through the frontend's HTTP API (port 7243) itself;
//! - every component has `securityContext` (pod) and
//!   `containerSecurityContext` (`server.<service>`, `admintools`, `web`,
//!   `schema`), empty by default: set to the restricted profile here.
//!
//! PostgreSQL: the K3s target runs one (`postgres.rs` there), named by
//! [`postgres_name`], with its password in a Secret that apply creates.

use serde_json::{Value, json};
use sovereign_analyze::Analysis;
use sovereign_catalog::Chart;
use sovereign_desired::modules::{Module, namespace_name};
use sovereign_desired::{ApplySecret, ResourceId, SecretValue, Target};
use sovereign_model::{PersistenceEngine, Spec};

use crate::{Emitted, Release, label, restricted_container, restricted_pod};

/// The frontend's gRPC and HTTP ports (values.yaml `server.frontend.service`).
pub const TEMPORAL_GRPC_PORT: u16 = 7233;
pub const TEMPORAL_HTTP_PORT: u16 = 7243;
pub const POSTGRES_PORT: u16 = 5432;
/// The uid of the `temporal` user in the server images.
const TEMPORAL_UID: u64 = 1000;

/// The Service in front of a release's frontend (its gRPC and HTTP
/// ports), named as the chart names it (temporalio/helm-charts
/// `templates/_helpers.tpl` at chart 1.6: `temporal.componentname` is the
/// fullname cut to 62 − len("frontend") characters, then `-frontend`;
/// `server-service.yaml` names its HTTP port `http`,
/// `server.frontend.service.httpPort`).
#[must_use]
pub fn frontend_service(release: &str) -> String {
    let component = "frontend";
    let fullname = crate::chart_fullname(release, "temporal");
    let cut: String = fullname.chars().take(62 - component.len()).collect();
    format!("{}-{component}", cut.trim_end_matches('-'))
}

/// The PostgreSQL (StatefulSet, Service and password Secret) of a Temporal release.
#[must_use]
pub fn postgres_name(release: &str) -> String {
    format!("{release}-postgresql")
}

pub(crate) fn emit(spec: &Spec, analysis: &Analysis, fabric: &str, chart: &Chart, emitted: &mut Emitted) {
    let namespace = namespace_name(fabric, Module::Metabolism);
    for temporal in spec.temporals.values() {
        if temporal.endpoint.is_some() {
            // An existing server: nothing to install.
            continue;
        }
        let site = &analysis.sites.sites[temporal.site.value.index()];
        if !emitted.wants(site.id.index()) {
            continue;
        }
        let written = &temporal.name.qualified;
        let engine = temporal.persistence.as_ref().map(|p| p.engine.value);
        if !matches!(engine, Some(PersistenceEngine::Postgresql)) {
            let what = match engine {
                None => "a Temporal without `persistence`: say `persistence \"postgresql\" size=\"50Gi\"`, or name an existing server with `endpoint=`".to_owned(),
                Some(engine) => format!("Temporal on {}: not yet supported (postgresql is)", engine.word()),
            };
            emitted.state.unbuilt.push(format!("temporal \"{written}\": {what}"));
            continue;
        }
        if !site.has_cluster {
            emitted.state.unbuilt.push(format!("temporal \"{written}\": its site has no cluster to run it"));
            continue;
        }
        let name = label(written);
        let database = postgres_name(&name);
        let store = |database_name: &str| -> Value {
            json!({ "sql": {
                "pluginName": "postgres12",
                "driverName": "postgres12",
                "databaseName": database_name,
                "connectAddr": format!("{database}.{namespace}.svc:{POSTGRES_PORT}"),
                "connectProtocol": "tcp",
                "user": "temporal",
                "existingSecret": database,
                "secretKey": "password",
                "createDatabase": true,
                "manageSchema": true,
                "maxConns": 20,
            }})
        };
        // Values are put in place, not interpolated into `json!` (which
        // would serialize each one into a new tree: a tenth of a build).
        let restricted = restricted_container();
        let mut server = json!({
            "replicaCount": 1,
            "config": {
                "namespaces": { "create": false },
                "persistence": { "defaultStore": "default", "visibilityStore": "visibility", "numHistoryShards": 512 },
            },
        });
        server["securityContext"] = restricted_pod(TEMPORAL_UID);
        let datastores = &mut server["config"]["persistence"]["datastores"];
        datastores["default"] = store("temporal");
        datastores["visibility"] = store("temporal_visibility");
        for service in ["frontend", "internal-frontend", "history", "matching", "worker"] {
            server[service]["containerSecurityContext"] = restricted.clone();
        }
        let component = || {
            let mut component = Value::Object(serde_json::Map::new());
            component["securityContext"] = restricted_pod(TEMPORAL_UID);
            component["containerSecurityContext"] = restricted.clone();
            component
        };
        let mut admintools = component();
        // sovereign talks to the frontend's HTTP API; the admin shell is not needed.
        admintools["enabled"] = Value::Bool(false);
        let mut values = Value::Object(serde_json::Map::new());
        values["server"] = server;
        values["admintools"] = admintools;
        values["web"] = component();
        values["schema"] = component();
        emitted.releases.push(Release {
            site: site.name.clone(),
            chart: chart.clone(),
            name: name.clone(),
            namespace: namespace.clone(),
            module: Module::Metabolism,
            declaration: ("temporal", written.clone()),
            values,
            after: vec![ResourceId {
                target: Target::K3s,
                site: site.name.clone(),
                kind: "apps/StatefulSet".into(),
                namespace: Some(namespace.as_str().into()),
                name: database.as_str().into(),
            }],
            database: Some(crate::Database {
                name: database.clone(),
                // 10 GiB when the spec gives no size.
                size: temporal.persistence.as_ref().and_then(|p| p.size.as_ref()).map_or(10 << 30, |s| s.value),
            }),
        });
        emitted.state.at_apply.push(format!(
            "Secret {namespace}/{database}: a random password for temporal \"{written}\"'s PostgreSQL, created before it starts"
        ));
        emitted.state.add_secret(ApplySecret {
            site: site.name.clone(),
            namespace: namespace.as_str().into(),
            name: database.as_str().into(),
            key: "password".into(),
            value: SecretValue::Random,
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_frontend_service_is_named_as_the_chart_names_it() {
        assert_eq!(super::frontend_service("metabolism"), "metabolism-temporal-frontend");
        assert_eq!(super::frontend_service("temporal-eu"), "temporal-eu-frontend");
        let long = "a".repeat(60);
        assert_eq!(super::frontend_service(&long), format!("{}-frontend", "a".repeat(54)));
    }
}
