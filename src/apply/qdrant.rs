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
}

impl QdrantDriver {
    #[must_use]
    pub fn new(cluster: Arc<Cluster>, namespace: &str, release: &str) -> QdrantDriver {
        QdrantDriver { cluster, namespace: namespace.to_owned(), release: release.to_owned(), server: OnceCell::new() }
    }

    async fn server(&self) -> Result<&QdrantServer, Failure> {
        self.server
            .get_or_try_init(|| async {
                let secret = sovereign_helm::api_key_secret(&self.release);
                let key =
                    super::secrets::read_key(&self.cluster, &self.namespace, &secret, sovereign_helm::API_KEY_KEY)
                        .await
                        .map_err(Failure::other)?;
                let service = sovereign_helm::qdrant_service(&self.release);
                let port = sovereign_helm::QDRANT_HTTP_PORT;
                Ok(QdrantServer::through_cluster(Arc::clone(&self.cluster), &self.namespace, &service, port, key))
            })
            .await
    }
}

impl Driver for QdrantDriver {
    fn apply<'a>(&'a self, run: &'a StepRun<'a>) -> BoxFuture<'a, Result<Live, Failure>> {
        async move {
            let server = self.server().await?;
            let name = &*run.step.planned.id.name;
            let held = run.permits().await;
            if run.step.op == Op::Replace {
                // A new schema: the collection and its vectors go (apply allows it only with --prune-data).
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

impl From<QdrantError> for Failure {
    fn from(error: QdrantError) -> Failure {
        let kind = match error {
            QdrantError::Unreachable(_) => FailureKind::Unreachable,
            QdrantError::Refused { .. } | QdrantError::Differs { .. } => FailureKind::Refused,
        };
        Failure { kind, why: error.to_string(), fields: Vec::new() }
    }
}
