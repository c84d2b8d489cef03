//! The Kubernetes backend: the state document in a site's cluster, so that
//! a team and CI share it, and its lock as a `coordination.k8s.io/v1`
//! Lease.
//!
//! In the namespace `sovereign`, for fabric F:
//! - ConfigMaps `state-F-gN-I`: the document of generation N, cut into
//!   chunks of at most 768 KiB (an object may be 1 MiB, etcd's limit);
//! - ConfigMap `state-F`: the index, naming the generation, its chunk
//!   count and the document's sha256. A save writes the new generation's
//!   chunks first, then replaces the index with its resourceVersion as a
//!   precondition, then deletes generations older than the one before: a
//!   crash at any point leaves the old index pointing at whole chunks, and
//!   the generation before the last is kept as the backup;
//! - Lease `lock-F`: `holderIdentity` is the lock id, `renewTime` and
//!   `leaseDurationSeconds` the lease, and the annotation
//!   `sovereign.dev/lock` the holder (operation, user, host, pid, start).
//!   A heartbeat thread renews it; a holder whose lease expired, or whose
//!   pid is gone on this host, is taken over with a message naming it.
//!   Every write to the Lease carries its resourceVersion, so two runs
//!   never both win it.
//!
//! The state holds no secret value (docs/apply.md), so ConfigMaps suffice.
//! The objects carry `app.kubernetes.io/managed-by: sovereign` and not the
//! fabric's inventory label: `destroy` and prune never delete the state.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sovereign_kubernetes::{Cluster, DriverError, Settings};

use super::lock::{Lease, LockInfo, holder_is_gone};
use super::{StateDocument, StateError};
use crate::clock::{now, rfc3339};

pub const NAMESPACE: &str = "sovereign";
const CHUNK: usize = 768 * 1024;
const LOCK_ANNOTATION: &str = "sovereign.dev/lock";

/// Where a fabric's state is on a cluster.
pub struct KubernetesState {
    pub fabric: String,
    /// The kubeconfig context, for messages.
    pub context: String,
    name: String,
    runtime: Arc<tokio::runtime::Runtime>,
    cluster: Arc<Cluster>,
}

fn failed(what: &str, e: &DriverError) -> StateError {
    StateError(format!("cannot {what} the state in the cluster: {e}"))
}

/// A fabric's name as an object name: lowercase letters, digits and `-`.
fn object_name(fabric: &str) -> String {
    let mut name: String =
        fabric.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    name.truncate(40);
    name.trim_matches('-').to_owned()
}

fn config_map(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels}, "data": data})
}

impl KubernetesState {
    /// Reaches the cluster of `context` (no request yet).
    pub fn connect(
        fabric: &str,
        kubeconfig: Option<&std::path::Path>,
        context: Option<&str>,
        settings: Settings,
    ) -> Result<KubernetesState, StateError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| StateError(format!("cannot start the runtime for the state: {e}")))?;
        let cluster = runtime
            .block_on(Cluster::connect(kubeconfig, context, settings))
            .map_err(|e| StateError(format!("the state's cluster: {e}")))?;
        Ok(KubernetesState {
            fabric: fabric.to_owned(),
            context: cluster.context.clone(),
            name: object_name(fabric),
            runtime: Arc::new(runtime),
            cluster: Arc::new(cluster),
        })
    }

    /// `kubernetes:CONTEXT/sovereign/state-F`, as plans and messages name it.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("kubernetes:{}/{NAMESPACE}/state-{}", self.context, self.name)
    }

    fn labels(&self) -> Value {
        json!({"app.kubernetes.io/managed-by": "sovereign", "sovereign.dev/state-of": self.name})
    }

    fn index_probe(&self) -> Value {
        config_map(&format!("state-{}", self.name), json!({}), json!({}))
    }

    pub fn load(&self) -> Result<Option<StateDocument>, StateError> {
        self.runtime.block_on(async {
            let Some(index) = self.cluster.get(&self.index_probe()).await.map_err(|e| failed("read", &e))? else {
                return Ok(None);
            };
            let data = &index.object["data"];
            let number = |key: &str| data.get(key).and_then(Value::as_str).and_then(|n| n.parse::<u64>().ok());
            let (Some(generation), Some(chunks)) = (number("generation"), number("chunks")) else {
                return Err(StateError(format!("the state index {} is not one sovereign wrote", self.describe())));
            };
            let mut text = String::new();
            for chunk in 0..chunks {
                let probe = config_map(&format!("state-{}-g{generation}-{chunk}", self.name), json!({}), json!({}));
                let part = self.cluster.get(&probe).await.map_err(|e| failed("read", &e))?;
                let Some(part) = part
                    .as_ref()
                    .and_then(|part| part.object.pointer("/data/chunk"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                else {
                    return Err(self.unreadable(generation, &format!("chunk {chunk} is missing")));
                };
                text.push_str(&part);
            }
            if data.get("sha256").and_then(Value::as_str) != Some(crate::plan::saved::sha256(&text).as_str()) {
                return Err(self.unreadable(generation, "its chunks do not have the recorded sha256"));
            }
            StateDocument::from_text(&text).map(Some).map_err(|why| self.unreadable(generation, &why))
        })
    }

    fn unreadable(&self, generation: u64, why: &str) -> StateError {
        StateError(format!(
            "the state {} (generation {generation}) cannot be read: {why}; the generation before it, if any, is kept as the ConfigMaps state-{}-g{}-* in namespace {NAMESPACE} (sovereign does not touch them)",
            self.describe(),
            self.name,
            generation.saturating_sub(1)
        ))
    }

    pub fn save(&self, state: &StateDocument) -> Result<(), StateError> {
        let text = state.to_text();
        self.runtime.block_on(async {
            let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "sovereign"}}});
            self.cluster.apply(&namespace, false).await.map_err(|e| failed("save", &e))?;
            let index = self.cluster.get(&self.index_probe()).await.map_err(|e| failed("save", &e))?;
            let previous = index
                .as_ref()
                .and_then(|index| index.object.pointer("/data/generation")?.as_str()?.parse::<u64>().ok())
                .unwrap_or(0);
            let generation = previous + 1;
            let mut chunks = 0;
            let mut rest = text.as_str();
            while !rest.is_empty() || chunks == 0 {
                let mut cut = rest.len().min(CHUNK);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                let (part, tail) = rest.split_at(cut);
                let mut labels = self.labels();
                labels["sovereign.dev/state-generation"] = json!(generation.to_string());
                let object = config_map(&format!("state-{}-g{generation}-{chunks}", self.name), labels, json!({"chunk": part}));
                self.cluster.apply(&object, false).await.map_err(|e| failed("save", &e))?;
                chunks += 1;
                rest = tail;
            }
            let data = json!({"generation": generation.to_string(), "chunks": chunks.to_string(),
                              "sha256": crate::plan::saved::sha256(&text), "saved": rfc3339(now())});
            let mut new_index = config_map(&format!("state-{}", self.name), self.labels(), data);
            let written = match &index {
                Some(index) => {
                    new_index["metadata"]["resourceVersion"] = json!(index.resource_version);
                    self.cluster.replace(&new_index).await
                }
                None => self.cluster.create(&new_index).await,
            };
            match written {
                Ok(_) => {}
                // A write whose answer was lost lands as a conflict: it counts if the index is ours.
                Err(DriverError::Rejected { code: 409, .. }) => {
                    let now = self.cluster.get(&self.index_probe()).await.map_err(|e| failed("save", &e))?;
                    let ours = now.is_some_and(|now| now.object.pointer("/data/generation").and_then(Value::as_str) == Some(generation.to_string().as_str())
                        && now.object.pointer("/data/sha256") == new_index.pointer("/data/sha256"));
                    if !ours {
                        return Err(StateError(format!(
                            "the state {} was saved by another run meanwhile (its lock was not held?); nothing was overwritten, and this run's state is generation {generation}'s chunks",
                            self.describe()
                        )));
                    }
                }
                Err(e) => return Err(failed("save", &e)),
            }
            // Older than the backup generation: no longer needed.
            let selector = format!("sovereign.dev/state-of={}", self.name);
            if let Ok(parts) = self.cluster.list("v1", "ConfigMap", Some(NAMESPACE), &selector).await {
                for part in parts {
                    let kept = part
                        .pointer("/metadata/labels/sovereign.dev~1state-generation")
                        .and_then(Value::as_str)
                        .and_then(|g| g.parse::<u64>().ok())
                        .is_none_or(|g| g + 1 >= generation);
                    if !kept {
                        let _ = self.cluster.delete(&part).await;
                    }
                }
            }
            Ok(())
        })
    }

    fn lease_probe(&self) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": format!("lock-{}", self.name), "namespace": NAMESPACE}})
    }

    fn lease(&self, info: Option<&LockInfo>, lease: Lease, resource_version: Option<&str>) -> Value {
        let mut object = self.lease_probe();
        object["metadata"]["labels"] = self.labels();
        let micro = |secs: u64| rfc3339(secs).replace('Z', ".000000Z");
        object["spec"] = match info {
            Some(info) => {
                object["metadata"]["annotations"] =
                    json!({LOCK_ANNOTATION: serde_json::to_string(info).unwrap_or_default()});
                json!({"holderIdentity": info.id, "leaseDurationSeconds": lease.duration.as_secs(),
                       "acquireTime": micro(crate::clock::parse_rfc3339(&info.started).unwrap_or_else(now)), "renewTime": micro(now())})
            }
            None => json!({}),
        };
        if let Some(version) = resource_version {
            object["metadata"]["resourceVersion"] = json!(version);
        }
        object
    }

    /// Takes the Lease for `operation`, waiting up to `timeout` while
    /// another run holds it (`waiting` is told who, once).
    pub fn lock(
        &self,
        operation: &str,
        timeout: Duration,
        lease: Lease,
        mut waiting: impl FnMut(&LockInfo),
    ) -> Result<KubernetesLock, StateError> {
        let started = Instant::now();
        let mut told = false;
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "sovereign"}}});
        self.runtime.block_on(self.cluster.apply(&namespace, false)).map_err(|e| failed("lock", &e))?;
        loop {
            let live = self.runtime.block_on(self.cluster.get(&self.lease_probe())).map_err(|e| failed("lock", &e))?;
            let holder = live.as_ref().and_then(|live| holder_of(&live.object));
            let free = holder.as_ref().is_none_or(holder_is_gone);
            if free {
                let info = LockInfo::mine(operation, lease);
                let object = self.lease(Some(&info), lease, live.as_ref().map(|live| live.resource_version.as_str()));
                let written = match &live {
                    Some(_) => self.runtime.block_on(self.cluster.replace(&object)),
                    None => self.runtime.block_on(self.cluster.create(&object)),
                };
                match written {
                    Ok(written) => return Ok(self.hold(info, holder, lease, written.resource_version)),
                    // Another run was faster, or this write landed and its answer was lost: look.
                    Err(DriverError::Rejected { code: 409, .. }) => {
                        let now = self
                            .runtime
                            .block_on(self.cluster.get(&self.lease_probe()))
                            .map_err(|e| failed("lock", &e))?;
                        if let Some(now) = now.filter(|now| {
                            now.object.pointer("/spec/holderIdentity").and_then(Value::as_str) == Some(info.id.as_str())
                        }) {
                            return Ok(self.hold(info, holder, lease, now.resource_version));
                        }
                        continue;
                    }
                    Err(e) => return Err(failed("lock", &e)),
                }
            }
            if let Some(holder) = &holder
                && !told
            {
                waiting(holder);
                told = true;
            }
            if started.elapsed() >= timeout {
                let holder = holder.map_or_else(|| "a run that is starting".to_owned(), |h| h.to_string());
                return Err(StateError(format!(
                    "the state {} is locked by {holder}; wait for it to finish (or pass a longer --lock-timeout), or if that run is gone for good, free it with `sovereign unlock LOCK_ID`",
                    self.describe()
                )));
            }
            std::thread::sleep(Duration::from_millis(250).min(timeout.saturating_sub(started.elapsed())));
        }
    }

    fn hold(&self, info: LockInfo, took_over: Option<LockInfo>, lease: Lease, version: String) -> KubernetesLock {
        let shared = Arc::new(Beat {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            version: Mutex::new(version),
            lost: Mutex::new(None),
        });
        let heartbeat = {
            let (shared, runtime, cluster) =
                (Arc::clone(&shared), Arc::clone(&self.runtime), Arc::clone(&self.cluster));
            let this = KubernetesState {
                fabric: self.fabric.clone(),
                context: self.context.clone(),
                name: self.name.clone(),
                runtime: Arc::clone(&runtime),
                cluster: Arc::clone(&cluster),
            };
            let mut info = info.clone();
            std::thread::Builder::new()
                .name("state-lease".into())
                .spawn(move || {
                    let mut stop = shared.stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    loop {
                        let (guard, _) = shared
                            .wake
                            .wait_timeout(stop, lease.renew_every)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        stop = guard;
                        if *stop {
                            break;
                        }
                        info.expires = rfc3339(now() + lease.duration.as_secs());
                        let version = shared.version.lock().map(|v| v.clone()).unwrap_or_default();
                        let renewed =
                            runtime.block_on(cluster.replace(&this.lease(Some(&info), lease, Some(&version))));
                        let version = match renewed {
                            Ok(renewed) => Some(renewed.resource_version),
                            // A renewal whose answer was lost, or another holder: look.
                            Err(DriverError::Rejected { code: 409, .. }) => {
                                match runtime.block_on(cluster.get(&this.lease_probe())) {
                                    Ok(Some(live))
                                        if live.object.pointer("/spec/holderIdentity").and_then(Value::as_str)
                                            == Some(info.id.as_str()) =>
                                    {
                                        Some(live.resource_version)
                                    }
                                    Ok(live) => {
                                        let holder = live.as_ref().and_then(|live| holder_of(&live.object));
                                        if let Ok(mut lost) = shared.lost.lock() {
                                            *lost = Some(holder.map_or_else(
                                                || "nobody holds it now".to_owned(),
                                                |h| format!("it is now {h}"),
                                            ));
                                        }
                                        break;
                                    }
                                    Err(_) => None,
                                }
                            }
                            Err(_) => None,
                        };
                        if let (Some(version), Ok(mut current)) = (version, shared.version.lock()) {
                            *current = version;
                        }
                    }
                    if shared.lost.lock().is_ok_and(|lost| lost.is_some()) {
                        return;
                    }
                    // Released: the Lease emptied, if it is still ours.
                    let version = shared.version.lock().map(|v| v.clone()).unwrap_or_default();
                    let _ = runtime.block_on(cluster.replace(&this.lease(None, lease, Some(&version))));
                })
                .ok()
        };
        KubernetesLock { info, took_over, shared, heartbeat }
    }

    /// Frees the Lease `id` names, if its holder is gone.
    pub fn unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        let live = self.runtime.block_on(self.cluster.get(&self.lease_probe())).map_err(|e| failed("unlock", &e))?;
        let Some((live, info)) =
            live.and_then(|live| Some((holder_of(&live.object)?, live))).map(|(info, live)| (live, info))
        else {
            return Err(StateError(format!("no lock is held on {}", self.describe())));
        };
        if info.id != id {
            return Err(StateError(format!("the state's lock is {info}, whose id is not {id}: check the id")));
        }
        if !holder_is_gone(&info) {
            return Err(StateError(format!(
                "{info} is held and its lease has not expired: stop that run first, or wait until its lease ends"
            )));
        }
        let object = self.lease(None, Lease::default(), Some(&live.resource_version));
        self.runtime.block_on(self.cluster.replace(&object)).map_err(|e| failed("unlock", &e))?;
        Ok(info)
    }
}

/// Who a Lease names as its holder, if anyone.
fn holder_of(lease: &Value) -> Option<LockInfo> {
    lease.pointer("/spec/holderIdentity").and_then(Value::as_str).filter(|id| !id.is_empty())?;
    let text = lease.pointer("/metadata/annotations")?.get(LOCK_ANNOTATION)?.as_str()?;
    serde_json::from_str(text).ok()
}

struct Beat {
    stop: Mutex<bool>,
    wake: Condvar,
    version: Mutex<String>,
    /// Why the Lease is no longer this run's, once it is not.
    lost: Mutex<Option<String>>,
}

/// A held Lease; released when dropped.
pub struct KubernetesLock {
    pub info: LockInfo,
    pub took_over: Option<LockInfo>,
    shared: Arc<Beat>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl KubernetesLock {
    /// Why the Lease was lost (another run took it), if it was.
    #[must_use]
    pub fn lost(&self) -> Option<String> {
        self.shared.lost.lock().ok().and_then(|lost| lost.clone())
    }
}

impl Drop for KubernetesLock {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
    }
}
