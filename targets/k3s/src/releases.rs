//! Helm releases as K3s HelmChart objects, and the PostgreSQL that the
//! Temporal chart 1.x no longer ships.
//!
//! HelmChart (`helm.cattle.io/v1`; k3s-io/helm-controller
//! `pkg/apis/helm.cattle.io/v1/types.go`, docs.k3s.io/add-ons/helm): the
//! release is `metadata.name`, in `kube-system`; `targetNamespace` is set
//! always (the docs' default is wrong: the controller falls back to the
//! HelmChart's own namespace); `valuesContent` is inline YAML (`values`,
//! structured, is newer than the K3s releases sovereign supports).
//!
//! PostgreSQL: the official image (`docker.io/library/postgres`, Debian
//! variant; its Dockerfile creates the `postgres` user with uid and gid
//! 999), one StatefulSet with a volume of the declared size, `PGDATA` in a
//! subfolder of it (the image's docs: a mount point's lost+found must not
//! be the data folder), the socket folder as an emptyDir, and the password
//! from a Secret apply creates.

use std::collections::BTreeMap;

use serde_json::json;
use sovereign_desired::{DesiredState, ResourceId, Target};
use sovereign_helm::{Database, HELM_CHART_NAMESPACE, POSTGRES_PORT, Release};

use crate::labels::{Context, Declaration};
use crate::objects::{ContainerSecurityContext, Spec};

pub const POSTGRES_IMAGE: &str = "docker.io/library/postgres:17.6";
const POSTGRES_UID: u64 = 999;

pub(crate) fn emit(releases: &[Release], context: &Context, state: &mut DesiredState) {
    for release in releases {
        let declaration = Declaration { kind: release.declaration.0, name: release.declaration.1.clone() };
        let mut values = String::new();
        if let Err(why) = sovereign_desired::yaml::append_document(&release.values.to_string(), &mut values) {
            // Never a chart installed with its defaults instead of these values.
            state.unbuilt.push(format!("{} \"{}\": its chart values: {why}", declaration.kind, declaration.name));
            continue;
        }
        let metadata = context.metadata(&release.name, Some(HELM_CHART_NAMESPACE), Some(&declaration));
        let spec = json!({
            "repo": release.chart.repo,
            "chart": release.chart.name,
            "version": release.chart.version,
            "targetNamespace": release.namespace,
            "createNamespace": false,
            "valuesContent": values,
        });
        let mut chart = context.object(
            &release.site,
            "helm.cattle.io/v1",
            "HelmChart",
            &metadata,
            Spec { spec },
            Some(&declaration),
        );
        chart.depends_on.insert(namespace_id(&release.site, &release.namespace));
        for after in &release.after {
            chart.depends_on.insert(after.clone());
        }
        state.add(chart);
        if let Some(database) = &release.database {
            postgres(release, database, &declaration, context, state);
        }
    }
}

fn postgres(
    release: &Release,
    database: &Database,
    declaration: &Declaration,
    context: &Context,
    state: &mut DesiredState,
) {
    let selector = BTreeMap::from([("sovereign.dev/postgres", database.name.clone())]);
    let metadata = context.metadata(&database.name, Some(&release.namespace), Some(declaration));
    let size = format!("{}Gi", database.size.div_ceil(1 << 30).max(1));
    let spec = json!({
        "serviceName": database.name,
        "replicas": 1,
        "selector": { "matchLabels": selector },
        "template": {
            "metadata": { "labels": selector },
            "spec": {
                "automountServiceAccountToken": false,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": POSTGRES_UID,
                    "runAsGroup": POSTGRES_UID,
                    "fsGroup": POSTGRES_UID,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [{
                    "name": "postgres",
                    "image": POSTGRES_IMAGE,
                    "ports": [{ "name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP" }],
                    "env": [
                        { "name": "POSTGRES_USER", "value": "temporal" },
                        { "name": "POSTGRES_PASSWORD", "valueFrom": { "secretKeyRef": { "name": database.name, "key": "password" } } },
                        { "name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata" },
                    ],
                    "securityContext": ContainerSecurityContext::restricted(),
                    "volumeMounts": [
                        { "name": "data", "mountPath": "/var/lib/postgresql/data" },
                        { "name": "run", "mountPath": "/var/run/postgresql" },
                    ],
                    "readinessProbe": { "exec": { "command": ["pg_isready", "-U", "temporal"] }, "periodSeconds": 10 },
                }],
                "volumes": [{ "name": "run", "emptyDir": {} }],
            },
        },
        "volumeClaimTemplates": [{
            "metadata": { "name": "data" },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": size } } },
        }],
    });
    let mut set = context.object(&release.site, "apps/v1", "StatefulSet", &metadata, Spec { spec }, Some(declaration));
    set.depends_on.insert(namespace_id(&release.site, &release.namespace));
    state.add(set);
    let spec = json!({
        "selector": selector,
        "ports": [{ "name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres", "protocol": "TCP" }],
    });
    let mut service = context.object(&release.site, "v1", "Service", &metadata, Spec { spec }, Some(declaration));
    service.depends_on.insert(namespace_id(&release.site, &release.namespace));
    state.add(service);
}

pub(crate) fn namespace_id(site: &std::sync::Arc<str>, namespace: &str) -> ResourceId {
    ResourceId {
        target: Target::K3s,
        site: site.clone(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.into(),
    }
}
