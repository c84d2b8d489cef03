//! When an applied object is ready, read from the API alone (a cluster
//! with no kubelet and a stand-in writing status must give the same
//! answers), and when it will never be: a terminal state fails at once
//! instead of at the timeout.
//!
//! Rules (kubectl's `rollout status` logic, k8s.io/kubectl
//! pkg/polymorphichelpers/rollout_status.go, and the K3s helm controller's
//! `helm-install-NAME` Job, k3s-io/helm-controller pkg/controllers/chart):
//! - Namespace: `status.phase` is Active.
//! - CustomResourceDefinition: condition Established is True.
//! - Deployment: observed generation caught up, updated and available
//!   replicas equal the desired replicas, no old replicas left; a
//!   Progressing condition with ProgressDeadlineExceeded fails.
//! - StatefulSet: observed generation, ready and updated replicas, and the
//!   current revision is the update revision.
//! - DaemonSet: observed generation, updated and available equal desired.
//! - Job: condition Complete; condition Failed fails.
//! - HelmChart: its `status.jobName` Job is complete (and is not the Job of
//!   the chart before this apply).
//! - Service: an EndpointSlice has a ready endpoint (a Service without a
//!   selector, or ExternalName, is ready as applied).
//! - Anything else: ready once applied.

use std::time::Duration;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet, and why (shown while waiting and in the timeout's error).
    Waiting(String),
    /// Never, and why.
    Failed(String),
}

/// What else must be read to judge an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// The pods a workload's selector matches (for terminal pod states).
    Pods(String),
    /// The HelmChart's install Job, by name.
    Job(String),
    /// The Service's EndpointSlices (`kubernetes.io/service-name=NAME`).
    Endpoints(String),
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'v>(object: &'v Value, kind: &str) -> Option<&'v Value> {
    object.pointer("/status/conditions")?.as_array()?.iter().find(|condition| condition["type"] == kind)
}

fn is_true(object: &Value, kind: &str) -> bool {
    condition(object, kind).is_some_and(|condition| condition["status"] == "True")
}

/// `group/Kind` as the driver's callers name kinds.
pub fn kind_of(object: &Value) -> String {
    let api_version = text(object, "/apiVersion");
    let kind = text(object, "/kind");
    match api_version.split_once('/') {
        Some((group, _)) => format!("{group}/{kind}"),
        None => kind.to_owned(),
    }
}

/// How long an object may take to become ready.
pub fn timeout(object: &Value) -> Duration {
    match kind_of(object).as_str() {
        "Namespace" | "apiextensions.k8s.io/CustomResourceDefinition" => Duration::from_secs(60),
        "Service" => Duration::from_secs(180),
        "external-secrets.io/ExternalSecret" => Duration::from_secs(120),
        "apps/Deployment" | "apps/StatefulSet" | "apps/DaemonSet" => {
            // vLLM answers /health only once the weights are loaded: the
            // startup probe's budget, plus scheduling and image pulls.
            let startup = object
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|container| container.get("startupProbe"))
                .map(|probe| {
                    int(probe, "/initialDelaySeconds")
                        + int(probe, "/periodSeconds").max(1) * int(probe, "/failureThreshold").max(1)
                })
                .max()
                .unwrap_or(0);
            Duration::from_secs(300 + startup.max(0) as u64)
        }
        _ => Duration::from_secs(600),
    }
}

/// What besides the object itself its readiness needs.
pub fn needs(object: &Value) -> Needs {
    match kind_of(object).as_str() {
        "apps/Deployment" | "apps/StatefulSet" | "apps/DaemonSet" => {
            let labels = object.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
            let selector: Vec<String> = labels
                .into_iter()
                .flatten()
                .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or("")))
                .collect();
            Needs::Pods(selector.join(","))
        }
        "helm.cattle.io/HelmChart" => match text(object, "/status/jobName") {
            "" => Needs::Nothing,
            job => Needs::Job(job.to_owned()),
        },
        "Service" if has_selector(object) && text(object, "/spec/type") != "ExternalName" => {
            Needs::Endpoints(text(object, "/metadata/name").to_owned())
        }
        _ => Needs::Nothing,
    }
}

fn has_selector(service: &Value) -> bool {
    service.pointer("/spec/selector").and_then(Value::as_object).is_some_and(|selector| !selector.is_empty())
}

/// Judges an object from itself and what [`needs`] asked for.
/// `stale_job` is the uid of a HelmChart's Job from before this apply
/// changed the chart: that Job's success says nothing about this one.
pub fn judge(object: &Value, related: &[Value], stale_job: Option<&str>) -> Readiness {
    let generation = int(object, "/metadata/generation");
    let observed = int(object, "/status/observedGeneration");
    let waiting = |why: String| Readiness::Waiting(why);
    let kind = kind_of(object);
    let verdict =
        match kind.as_str() {
            "Namespace" => match text(object, "/status/phase") {
                "Active" => Readiness::Ready,
                "Terminating" => Readiness::Failed("the namespace is being deleted".into()),
                phase => waiting(format!("phase {:?}", if phase.is_empty() { "unknown" } else { phase })),
            },
            "apiextensions.k8s.io/CustomResourceDefinition" => {
                if is_true(object, "Established") {
                    Readiness::Ready
                } else if condition(object, "NamesAccepted").is_some_and(|condition| condition["status"] == "False") {
                    Readiness::Failed(format!(
                        "its names were not accepted: {}",
                        text(condition(object, "NamesAccepted").unwrap_or(&Value::Null), "/message")
                    ))
                } else {
                    waiting("not established yet".into())
                }
            }
            "apps/Deployment" => {
                let wanted = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
                let deadline = condition(object, "Progressing")
                    .is_some_and(|condition| condition["reason"] == "ProgressDeadlineExceeded");
                if deadline {
                    Readiness::Failed("its rollout exceeded its progress deadline".into())
                } else if observed < generation {
                    waiting(format!("the controller has not seen generation {generation} yet"))
                } else if int(object, "/status/updatedReplicas") < wanted {
                    waiting(format!("{} of {wanted} replicas updated", int(object, "/status/updatedReplicas")))
                } else if int(object, "/status/replicas") > int(object, "/status/updatedReplicas") {
                    waiting(format!(
                        "{} old replicas are still running",
                        int(object, "/status/replicas") - int(object, "/status/updatedReplicas")
                    ))
                } else if int(object, "/status/availableReplicas") < wanted {
                    waiting(format!("{} of {wanted} replicas available", int(object, "/status/availableReplicas")))
                } else {
                    Readiness::Ready
                }
            }
            "apps/StatefulSet" => {
                let wanted = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
                if observed < generation {
                    waiting(format!("the controller has not seen generation {generation} yet"))
                } else if int(object, "/status/readyReplicas") < wanted {
                    waiting(format!("{} of {wanted} replicas ready", int(object, "/status/readyReplicas")))
                } else if int(object, "/status/updatedReplicas") < wanted {
                    waiting(format!("{} of {wanted} replicas updated", int(object, "/status/updatedReplicas")))
                } else if text(object, "/status/currentRevision") != text(object, "/status/updateRevision") {
                    waiting("the rolling update has not finished".into())
                } else {
                    Readiness::Ready
                }
            }
            "apps/DaemonSet" => {
                let wanted = int(object, "/status/desiredNumberScheduled");
                if observed < generation {
                    waiting(format!("the controller has not seen generation {generation} yet"))
                } else if int(object, "/status/updatedNumberScheduled") < wanted {
                    waiting(format!("{} of {wanted} nodes updated", int(object, "/status/updatedNumberScheduled")))
                } else if int(object, "/status/numberAvailable") < wanted {
                    waiting(format!("{} of {wanted} nodes available", int(object, "/status/numberAvailable")))
                } else {
                    Readiness::Ready
                }
            }
            "batch/Job" => job(object),
            "helm.cattle.io/HelmChart" => match related.first() {
                None => waiting("the helm controller has not started its install Job".into()),
                Some(found) if stale_job.is_some_and(|stale| stale == text(found, "/metadata/uid")) => {
                    waiting("the helm controller has not started a Job for this change".into())
                }
                Some(found) => match job(found) {
                    Readiness::Failed(why) => {
                        Readiness::Failed(format!("its install Job {} failed: {why}", text(found, "/metadata/name")))
                    }
                    other => other,
                },
            },
            // External Secrets Operator: the `Ready` condition (external-secrets
            // apis/externalsecrets/v1 `ExternalSecretReady`), `SecretSynced` once
            // the target Secret is written; `SecretSyncedError` is retried by the
            // operator on its refresh, so it is waited on with its message.
            "external-secrets.io/ExternalSecret" => match condition(object, "Ready") {
                Some(ready) if ready["status"] == "True" => Readiness::Ready,
                Some(ready) => waiting(format!("not synced: {}: {}", text(ready, "/reason"), text(ready, "/message"))),
                None => waiting("not synced yet".into()),
            },
            "Service" if matches!(needs(object), Needs::Endpoints(_)) => {
                let ready =
                    related.iter().any(|slice| {
                        slice.get("endpoints").and_then(Value::as_array).into_iter().flatten().any(|endpoint| {
                            endpoint.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false)
                        })
                    });
                if ready { Readiness::Ready } else { waiting("no ready endpoint yet".into()) }
            }
            _ => Readiness::Ready,
        };
    if let Readiness::Waiting(_) = verdict
        && matches!(kind.as_str(), "apps/Deployment" | "apps/StatefulSet" | "apps/DaemonSet")
        && let Some(why) = pods_failing(related)
    {
        return Readiness::Failed(why);
    }
    verdict
}

fn job(job: &Value) -> Readiness {
    if is_true(job, "Complete") {
        Readiness::Ready
    } else if is_true(job, "Failed") {
        let failed = condition(job, "Failed").unwrap_or(&Value::Null);
        Readiness::Failed(format!("{}: {}", text(failed, "/reason"), text(failed, "/message")))
    } else {
        Readiness::Waiting(format!("{} pods succeeded", int(job, "/status/succeeded")))
    }
}

/// A pod in a state it will not leave by itself.
pub fn pods_failing(pods: &[Value]) -> Option<String> {
    const TERMINAL: &[&str] = &[
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    ];
    for pod in pods {
        for status in pod.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten() {
            let reason = text(status, "/state/waiting/reason");
            if TERMINAL.contains(&reason) {
                return Some(format!(
                    "pod {} container {} is in {reason}: {} (image {})",
                    text(pod, "/metadata/name"),
                    text(status, "/name"),
                    text(status, "/state/waiting/message"),
                    text(status, "/image")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deployment_is_ready_when_its_rollout_is_done() {
        let mut deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 2},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(matches!(judge(&deployment, &[], None), Readiness::Waiting(_)));
        deployment["status"]["observedGeneration"] = json!(2);
        assert_eq!(judge(&deployment, &[], None), Readiness::Ready);
        deployment["status"]["availableReplicas"] = json!(1);
        let pod = json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [{"name": "vllm", "image": "x",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no"}}}]}});
        assert!(matches!(judge(&deployment, &[pod], None), Readiness::Failed(why) if why.contains("ImagePullBackOff")));
    }

    #[test]
    fn an_external_secret_is_ready_when_synced() {
        let mut secret = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "status": {}});
        assert!(matches!(judge(&secret, &[], None), Readiness::Waiting(_)));
        secret["status"]["conditions"] = json!([{"type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": "vault: permission denied"}]);
        assert!(matches!(judge(&secret, &[], None), Readiness::Waiting(why) if why.contains("permission denied")));
        secret["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "reason": "SecretSynced"}]);
        assert_eq!(judge(&secret, &[], None), Readiness::Ready);
    }

    #[test]
    fn a_helm_chart_waits_for_the_job_of_this_change() {
        let chart =
            json!({"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart", "status": {"jobName": "helm-install-x"}});
        let job = json!({"metadata": {"name": "helm-install-x", "uid": "old"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(needs(&chart), Needs::Job("helm-install-x".into()));
        assert!(matches!(judge(&chart, std::slice::from_ref(&job), Some("old")), Readiness::Waiting(_)));
        assert_eq!(judge(&chart, &[job], Some("new")), Readiness::Ready);
    }
}
