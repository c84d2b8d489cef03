//! What the kubelet and the controllers would write, so that readiness can
//! be read from the API alone: workload status, Job completion, the K3s
//! helm controller's install Job, EndpointSlices, CRD establishment,
//! namespace finalization and owner-reference garbage collection.
//!
//! No container runs. A workload is "running" once its status says so;
//! images and charts named in [`Trouble`] fail instead, as an image that
//! cannot be pulled, a crash loop or a failed Job do on a real node.

use serde_json::{Value, json};

use crate::store::{Key, Part, Store, Write};

/// Failures the stand-in plays, matched as substrings.
#[derive(Clone, Debug, Default)]
pub struct Trouble {
    /// Container images that cannot be pulled (`ImagePullBackOff`).
    pub unpullable: Vec<String>,
    /// Container images whose container crashes (`CrashLoopBackOff`).
    pub crashing: Vec<String>,
    /// Jobs, or HelmCharts' chart names, whose Job fails.
    pub failing: Vec<String>,
}

const MANAGER: &str = "kube-controller-manager";

/// One pass over the cluster; returns whether it wrote anything.
pub fn tick(store: &mut Store, trouble: &Trouble) -> bool {
    let before = store.revision();
    if store.settled_at == Some(before) {
        return false;
    }
    finalize_namespaces(store);
    collect_garbage(store);
    // Only the kinds something acts on are looked at (a cluster of
    // ConfigMaps costs nothing per tick).
    let acted_on = |key: &Key| {
        matches!(
            (key.0.as_str(), key.1.as_str()),
            ("apiextensions.k8s.io", "customresourcedefinitions")
                | ("apps", "deployments" | "statefulsets" | "daemonsets")
                | ("batch", "jobs")
                | ("helm.cattle.io", "helmcharts")
                | ("external-secrets.io", "externalsecrets")
                | ("", "services")
        )
    };
    let keys: Vec<Key> = store.objects.keys().filter(|key| acted_on(key)).cloned().collect();
    for key in keys {
        let Some(object) = store.objects.get(&key).cloned() else { continue };
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        match (key.0.as_str(), key.1.as_str()) {
            ("apiextensions.k8s.io", "customresourcedefinitions") => establish(store, &key, &object),
            ("apps", "deployments" | "statefulsets" | "daemonsets") => roll_out(store, &key, &object, trouble),
            ("batch", "jobs") => run_job(store, &key, &object, trouble),
            ("helm.cattle.io", "helmcharts") => install_chart(store, &key, &object, trouble),
            ("", "services") => publish_endpoints(store, &key, &object),
            ("external-secrets.io", "externalsecrets") => sync_external_secret(store, &key, &object),
            _ => {}
        }
    }
    let changed = store.revision() != before;
    // Nothing changed since a pass that wrote nothing: the next one would not either.
    store.settled_at = (!changed).then_some(before);
    changed
}

fn write_status(store: &mut Store, key: &Key, object: &Value, status: Value) {
    if object.get("status") == Some(&status) {
        return;
    }
    let Some(kind) = store.kind_of(text(object, "/apiVersion"), text(object, "/kind")) else { return };
    let mut updated = object.clone();
    updated["status"] = status;
    let write = Write { manager: MANAGER, dry_run: false, part: Part::Status };
    let _ = store.update(&kind, key.clone(), updated, &write, None);
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn establish(store: &mut Store, key: &Key, crd: &Value) {
    let established = crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|condition| condition["type"] == "Established" && condition["status"] == "True")
    });
    if established {
        return;
    }
    let status = match store.register_crd(crd) {
        Ok(()) => json!({
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten()
                .filter(|version| version["storage"] == true).map(|version| version["name"].clone()).collect::<Vec<_>>(),
        }),
        Err(reason) => {
            json!({"conditions": [{"type": "NamesAccepted", "status": "False", "reason": "Invalid", "message": reason}]})
        }
    };
    write_status(store, key, crd, status);
}

fn images(template: &Value) -> Vec<&str> {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|container| container["image"].as_str())
        .collect()
}

fn troubled<'t>(images: &[&str], list: &'t [String]) -> Option<&'t str> {
    list.iter().find(|needle| images.iter().any(|image| image.contains(needle.as_str()))).map(String::as_str)
}

fn roll_out(store: &mut Store, key: &Key, workload: &Value, trouble: &Trouble) {
    let generation = workload.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let template = workload.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let images = images(&template);
    let reason = if troubled(&images, &trouble.unpullable).is_some() {
        Some(("ImagePullBackOff", "Back-off pulling image"))
    } else if troubled(&images, &trouble.crashing).is_some() {
        Some(("CrashLoopBackOff", "back-off 5m0s restarting failed container"))
    } else {
        None
    };
    let wanted = match key.1.as_str() {
        "daemonsets" => store.objects.keys().filter(|key| key.0.is_empty() && key.1 == "nodes").count() as i64,
        _ => workload.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1),
    };
    let ready = if reason.is_some() { 0 } else { wanted };
    if let Some((reason, message)) = reason {
        failing_pod(store, key, workload, &template, reason, message);
    }
    let status = match key.1.as_str() {
        "deployments" => {
            let available = if ready == wanted { "True" } else { "False" };
            json!({"observedGeneration": generation, "replicas": wanted, "updatedReplicas": wanted,
                   "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": wanted - ready,
                   "conditions": [{"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
                                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
        }
        "statefulsets" => {
            let revision = format!("{}-{generation}", key.3);
            json!({"observedGeneration": generation, "replicas": wanted, "updatedReplicas": wanted, "currentReplicas": wanted,
                   "readyReplicas": ready, "availableReplicas": ready, "currentRevision": revision, "updateRevision": revision})
        }
        _ => {
            json!({"observedGeneration": generation, "desiredNumberScheduled": wanted, "currentNumberScheduled": wanted,
                    "updatedNumberScheduled": wanted, "numberReady": ready, "numberAvailable": ready,
                    "numberUnavailable": wanted - ready, "numberMisscheduled": 0})
        }
    };
    write_status(store, key, workload, status);
}

fn owner(object: &Value) -> Value {
    json!([{"apiVersion": object["apiVersion"], "kind": object["kind"], "name": object["metadata"]["name"],
            "uid": object["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

/// A pod that shows why its workload cannot become ready.
fn failing_pod(store: &mut Store, key: &Key, workload: &Value, template: &Value, reason: &str, message: &str) {
    let name = format!("{}-{}", key.3, "0");
    let pod_key: Key = (String::new(), "pods".into(), key.2.clone(), name.clone());
    if store.objects.contains_key(&pod_key) {
        return;
    }
    let Some(kind) = store.kind("", "v1", "pods") else { return };
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    spec["nodeName"] = json!("double-node");
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": key.2, "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                     "ownerReferences": owner(workload)},
        "spec": spec});
    let write = Write { manager: "kubelet", dry_run: false, part: Part::Main };
    if store.create(&kind, pod_key.clone(), pod, &write).is_err() {
        return;
    }
    let Some(created) = store.objects.get(&pod_key).cloned() else { return };
    let statuses: Vec<Value> = images(template)
        .iter()
        .zip(template.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten())
        .map(|(image, container)| {
            json!({"name": container["name"], "image": image, "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": reason, "message": message}}})
        })
        .collect();
    let status = json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                        "containerStatuses": statuses});
    write_status(store, &pod_key, &created, status);
}

fn run_job(store: &mut Store, key: &Key, job: &Value, trouble: &Trouble) {
    if job.pointer("/status/conditions").is_some() {
        return;
    }
    let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let images = images(&template);
    let fails = trouble.failing.iter().any(|needle| key.3.contains(needle.as_str()))
        || troubled(&images, &trouble.failing).is_some();
    let status = if fails {
        json!({"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
    } else {
        let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
        json!({"succeeded": completions, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached"}]})
    };
    write_status(store, key, job, status);
}

/// As the K3s helm controller does: a `helm-install-NAME` Job per chart,
/// made again when the chart changes.
fn install_chart(store: &mut Store, key: &Key, chart: &Value, trouble: &Trouble) {
    let generation = chart.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1).to_string();
    let job_name = format!("helm-install-{}", key.3);
    let job_key: Key = ("batch".into(), "jobs".into(), key.2.clone(), job_name.clone());
    let current = store
        .objects
        .get(&job_key)
        .is_some_and(|job| text(job, "/metadata/annotations/sovereign-double~1chart-generation") == generation);
    if !current {
        store.finalize(&job_key);
        let Some(kind) = store.kind("batch", "v1", "jobs") else { return };
        let chart_name = text(chart, "/spec/chart");
        let image = if trouble.failing.iter().any(|needle| chart_name.contains(needle.as_str())) {
            format!("rancher/klipper-helm:failing-{chart_name}")
        } else {
            "rancher/klipper-helm:v0.9.8".to_owned()
        };
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name, "namespace": key.2, "ownerReferences": owner(chart),
                         "annotations": {"sovereign-double/chart-generation": generation}},
            "spec": {"backoffLimit": 1000, "template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "helm", "image": image, "args": ["install"]}]}}}});
        let write = Write { manager: "helm-controller", dry_run: false, part: Part::Main };
        if store.create(&kind, job_key, job, &write).is_err() {
            return;
        }
    }
    let status =
        json!({"jobName": job_name, "conditions": [{"type": "JobCreated", "status": "True", "reason": "Job created"}]});
    write_status(store, key, chart, status);
}

/// What External Secrets Operator writes once it has synced the target
/// Secret from its store: the `Ready` condition (the double has no secret
/// store to read: the target Secret itself is not written).
fn sync_external_secret(store: &mut Store, key: &Key, secret: &Value) {
    let status = serde_json::json!({
        "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced"}],
        "refreshTime": "2026-01-01T00:00:00Z",
    });
    write_status(store, key, secret, status);
}

fn publish_endpoints(store: &mut Store, key: &Key, service: &Value) {
    let Some(selector) =
        service.pointer("/spec/selector").and_then(Value::as_object).filter(|selector| !selector.is_empty())
    else {
        return;
    };
    let matches = |labels: Option<&Value>| {
        selector.iter().all(|(name, value)| labels.and_then(|labels| labels.get(name)) == Some(value))
    };
    let ready: i64 = store
        .objects
        .iter()
        .filter(|(other, _)| other.0 == "apps" && other.2 == key.2)
        .filter(|(_, workload)| matches(workload.pointer("/spec/template/metadata/labels")))
        .map(|(_, workload)| {
            workload
                .pointer("/status/readyReplicas")
                .or_else(|| workload.pointer("/status/numberReady"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        })
        .sum();
    let slice_key: Key =
        ("discovery.k8s.io".into(), "endpointslices".into(), key.2.clone(), format!("{}-double", key.3));
    let exists = store
        .objects
        .get(&slice_key)
        .map(|slice| slice.get("endpoints").and_then(Value::as_array).map_or(0, Vec::len) as i64);
    if exists == Some(ready) || (exists.is_none() && ready == 0) {
        return;
    }
    store.finalize(&slice_key);
    let endpoints: Vec<Value> = (0..ready)
        .map(|index| json!({"addresses": [format!("10.42.0.{}", index + 10)], "conditions": {"ready": true}}))
        .collect();
    let ports: Vec<Value> = service.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten()
        .map(|port| json!({"name": port.get("name").cloned().unwrap_or(json!("")), "port": port.get("targetPort").filter(|target| target.is_i64()).or(port.get("port")), "protocol": port.get("protocol").cloned().unwrap_or(json!("TCP"))}))
        .collect();
    let Some(kind) = store.kind("discovery.k8s.io", "v1", "endpointslices") else { return };
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_key.3, "namespace": key.2, "labels": {"kubernetes.io/service-name": key.3}, "ownerReferences": owner(service)},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
    let write = Write { manager: "endpointslice-controller", dry_run: false, part: Part::Main };
    let _ = store.create(&kind, slice_key, slice, &write);
}

fn finalize_namespaces(store: &mut Store) {
    let first: Key = (String::new(), "namespaces".into(), String::new(), String::new());
    let terminating: Vec<Key> = store
        .objects
        .range(first..)
        .take_while(|(key, _)| key.0.is_empty() && key.1 == "namespaces")
        .filter(|(_, object)| object.pointer("/metadata/deletionTimestamp").is_some())
        .map(|(key, _)| key.clone())
        .collect();
    for namespace in terminating {
        let contents: Vec<Key> = store.objects.keys().filter(|key| key.2 == namespace.3).cloned().collect();
        for key in &contents {
            store.finalize(key);
        }
        store.finalize(&namespace);
    }
}

fn collect_garbage(store: &mut Store) {
    if !std::mem::take(&mut store.garbage_due) {
        return;
    }
    let uids: std::collections::HashSet<String> = store
        .objects
        .values()
        .filter_map(|object| object.pointer("/metadata/uid").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let orphans: Vec<Key> = store
        .objects
        .iter()
        .filter(|(_, object)| {
            object.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|owners| {
                !owners.is_empty()
                    && owners.iter().all(|owner| !owner["uid"].as_str().is_some_and(|uid| uids.contains(uid)))
            })
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in orphans {
        store.finalize(&key);
    }
}
