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

use serde_json::Value;
use serde_json::json;
use sovereign_desired::DesiredState;
use sovereign_desired::modules::{Module, namespace_name};
use sovereign_helm::{Database, HELM_CHART_NAMESPACE, POSTGRES_PORT, Release, TEMPORAL_GRPC_PORT, TEMPORAL_HTTP_PORT};

use crate::flows::{Direction, one_rule};
use crate::labels::{Context, Declaration, object_name};
use crate::namespaces::namespace_id;
use crate::objects::{ContainerSecurityContext, Spec};

pub const POSTGRES_IMAGE: &str = "docker.io/library/postgres:17.6";
const POSTGRES_UID: u64 = 999;

/// `helm` holds each release's values as the Helm target built them: their
/// JSON is serialized once, there, and written here as the HelmChart's YAML.
pub(crate) fn emit(releases: &[Release], helm: &DesiredState, context: &Context, state: &mut DesiredState) {
    for release in releases {
        let declaration = Declaration { kind: release.declaration.0, name: release.declaration.1.clone() };
        let json = helm.resources.get(&release.values_id()).map(|r| std::borrow::Cow::Borrowed(&*r.json));
        let json = json.unwrap_or_else(|| std::borrow::Cow::Owned(release.values.to_string()));
        let mut values = String::new();
        if let Err(why) = sovereign_desired::yaml::append_document(&json, &mut values) {
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
        policies(release, context, state);
        if let Some(database) = &release.database {
            postgres(release, database, &declaration, context, state);
        }
    }
}

/// The traffic a release needs besides the proved flows: its own pods with
/// each other (Temporal's services and membership, Qdrant's peers), its
/// database, and for Temporal the eval workers that poll its frontend. The
/// chart's pods carry `app.kubernetes.io/instance: <release>` (its
/// `selectorLabels`).
fn policies(release: &Release, context: &Context, state: &mut DesiredState) {
    // Selectors are put in place, not interpolated into `json!` (which
    // would serialize each into a new tree).
    let own = || json!({ "matchLabels": { "app.kubernetes.io/instance": release.name } });
    let peers = |selector: Value| {
        let mut peer = Value::Object(serde_json::Map::new());
        peer["podSelector"] = selector;
        Value::Array(vec![peer])
    };
    let mut add = |name: String, selector: Value, mut spec: Value, why: String| {
        let mut metadata = context.metadata(&name, Some(&release.namespace), None);
        metadata.annotations.insert("sovereign.dev/why", why);
        spec["podSelector"] = selector;
        let mut policy =
            context.object(&release.site, "networking.k8s.io/v1", "NetworkPolicy", &metadata, Spec { spec }, None);
        policy.depends_on.insert(namespace_id(&release.site, &release.namespace));
        state.add(policy);
    };
    let mut within = json!({ "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}] });
    within["ingress"][0]["from"] = peers(own());
    within["egress"][0]["to"] = peers(own());
    add(
        object_name(&format!("within-{}", release.name)),
        own(),
        within,
        format!("the pods of release {} talk to each other (the chart's own services)", release.name),
    );
    if let Some(database) = &release.database {
        let db = || json!({ "matchLabels": { "sovereign.dev/postgres": database.name } });
        let port = || json!([{ "protocol": "TCP", "port": POSTGRES_PORT }]);
        add(
            object_name(&format!("egress-{}-to-{}", release.name, database.name)),
            own(),
            one_rule(Direction::Egress, peers(db()), port()),
            format!("release {} uses its database", release.name),
        );
        add(
            object_name(&format!("ingress-{}-to-{}", release.name, database.name)),
            db(),
            one_rule(Direction::Ingress, peers(own()), port()),
            format!("only release {} reaches this database", release.name),
        );
    }
    if release.chart.name == "temporal" {
        let workers = json!({
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace_name(&context.fabric, Module::Alchemist) } },
            "podSelector": { "matchExpressions": [{ "key": "sovereign.dev/eval", "operator": "Exists" }] },
        });
        let ports = json!([
            { "protocol": "TCP", "port": TEMPORAL_GRPC_PORT },
            { "protocol": "TCP", "port": TEMPORAL_HTTP_PORT },
        ]);
        add(
            object_name(&format!("ingress-evals-to-{}", release.name)),
            own(),
            one_rule(Direction::Ingress, Value::Array(vec![workers]), ports),
            "the eval workers poll Temporal's frontend for their schedules".to_owned(),
        );
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
    let size = sovereign_helm::gibibytes(database.size);
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
