//! The Qdrant driver of the executor: the collections a vectorstore
//! declares, on the Qdrant sovereign deployed for it, reached through the
//! site's API server with the API key from the Secret apply made for it
//! (read when the first collection is applied: the Secret and the chart
//! come first in the graph). The key goes in a header and nowhere else.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use sovereign_kubernetes::Cluster;
use sovereign_qdrant::{QdrantError, QdrantServer};
use tokio::sync::OnceCell;

use super::driver::{Driver, StepRun};
use super::{Failure, FailureKind, Op};
use crate::state::Live;

/// One vectorstore's Qdrant: `NAMESPACE/RELEASE` on a site's cluster.
pub struct QdrantDriver {
    cluster: Arc<Cluster>,
    namespace: String,
    release: String,
    server: OnceCell<QdrantServer>,
    /// Set once the Qdrant has answered: waited for once per run, not per step.
    serving: OnceCell<()>,
}

impl QdrantDriver {
    #[must_use]
    pub fn new(cluster: Arc<Cluster>, namespace: &str, release: &str) -> QdrantDriver {
        QdrantDriver {
            cluster,
            namespace: namespace.to_owned(),
            release: release.to_owned(),
            server: OnceCell::new(),
            serving: OnceCell::new(),
        }
    }

    async fn server(&self) -> Result<&QdrantServer, Failure> {
        self.server
            .get_or_try_init(|| async {
                let secret = sovereign_helm::api_key_secret(&self.release);
                let key =
                    super::secrets::read_key(&self.cluster, &self.namespace, &secret, sovereign_helm::API_KEY_KEY)
                        .await
                        .map_err(Failure::other)?
                        .ok_or_else(|| {
                            Failure::other(format!(
                                "Secret {}/{secret} has no key `{}`: apply makes it with the vectorstore's chart (apply the Kubernetes part too)",
                                self.namespace,
                                sovereign_helm::API_KEY_KEY
                            ))
                        })?;
                let service = sovereign_helm::qdrant_service(&self.release);
                let port = sovereign_helm::QDRANT_HTTP_PORT;
                Ok(QdrantServer::through_cluster(Arc::clone(&self.cluster), &self.namespace, &service, port, Some(key)))
            })
            .await
    }
}

impl Driver for QdrantDriver {
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>> {
        async move {
            let server = self.server().await?;
            self.serving.get_or_try_init(|| until_serving(server, run)).await?;
            let name = &*run.step.planned.id.name;
            let held = run.permits().await;
            let wanted = (
                run.step.object.pointer("/vectors/size").and_then(serde_json::Value::as_u64).unwrap_or(0),
                run.step
                    .object
                    .pointer("/vectors/distance")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            );
            // A new schema: the collection and its vectors go (apply allows it only with
            // --prune-data), unless a run cut short already made it anew.
            if run.step.op == Op::Replace && server.collection(name).await?.is_some_and(|live| live != wanted) {
                server.delete_collection(name).await?;
            }
            server.ensure_collection(name, &run.step.object).await?;
            drop(held);
            run.applied(&Live::default())?;
            Ok(Live::default())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<(), Failure>> {
        async move {
            let server = self.server().await?;
            let _held = run.permits().await;
            Ok(server.delete_collection(&run.step.planned.id.name).await?)
        }
        .boxed()
    }
}

/// Waits until the Qdrant answers (its pods may still be starting after
/// the chart's install Job is done): up to 300 s × `--timeout-scale`.
async fn until_serving(server: &QdrantServer, run: &StepRun<'_>) -> Result<(), Failure> {
    let timeout = std::time::Duration::from_secs(300).mul_f64(run.settings.timeout_scale.clamp(0.0, 1e6));
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match server.collection("sovereign-readiness-probe").await {
            Ok(_) => return Ok(()),
            Err(QdrantError::Unreachable(why)) if std::time::Instant::now() < deadline => {
                run.waiting(&format!("waiting for Qdrant to answer: {why}"));
            }
            Err(QdrantError::Unreachable(why)) => {
                return Err(Failure::not_ready(format!("Qdrant does not answer within {}s: {why}", timeout.as_secs())));
            }
            // It answered, if only to refuse: it is serving.
            Err(_) => return Ok(()),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

impl From<QdrantError> for Failure {
    fn from(error: QdrantError) -> Failure {
        let kind = match error {
            QdrantError::Unreachable(_) => FailureKind::Unreachable,
            QdrantError::Refused { .. } | QdrantError::Differs { .. } => FailureKind::Refused,
        };
        Failure { kind, why: error.to_string(), fields: Vec::new() }
    }
}
