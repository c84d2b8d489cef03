//! The Qdrant driver against the Qdrant double (tools/qdrant-double), and
//! against a real Qdrant when `SOVEREIGN_E2E_QDRANT_URL` is set (with
//! `SOVEREIGN_E2E_QDRANT_API_KEY` when it needs one).

use std::time::Duration;

use kube_double::Faults;
use qdrant_double::{Options, QdrantDouble};
use serde_json::json;
use sovereign_qdrant::{Ensured, QdrantError, QdrantServer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// The lifecycle every Qdrant must show: created once, unchanged on a
/// rerun, another schema refused, deleted (twice without error).
fn lifecycle(server: &QdrantServer) {
    let name = unique("papers");
    let desired = json!({"vectors": {"size": 1024, "distance": "Cosine"}});
    runtime().block_on(async {
        assert_eq!(server.collection(&name).await.unwrap(), None);
        assert_eq!(server.ensure_collection(&name, &desired).await.unwrap(), Ensured::Created);
        assert_eq!(server.ensure_collection(&name, &desired).await.unwrap(), Ensured::Unchanged);
        assert_eq!(server.collection(&name).await.unwrap(), Some((1024, "Cosine".to_owned())));
        let other = json!({"vectors": {"size": 768, "distance": "Dot"}});
        let differs = server.ensure_collection(&name, &other).await;
        assert_eq!(differs, Err(QdrantError::Differs { size: 1024, distance: "Cosine".into() }));
        server.delete_collection(&name).await.unwrap();
        server.delete_collection(&name).await.unwrap();
        assert_eq!(server.collection(&name).await.unwrap(), None);
        let wrong =
            server.ensure_collection(&unique("bad"), &json!({"vectors": {"size": 0, "distance": "Cosine"}})).await;
        assert!(matches!(wrong, Err(QdrantError::Refused { status: 400..=422, .. })), "{wrong:?}");
    });
}

#[test]
fn collections_on_the_double() {
    let double = QdrantDouble::start(Options { api_key: Some("key-7f3a".into()), ..Options::default() }).unwrap();
    let server = QdrantServer::new(&double.url(), Some("key-7f3a".into()), Duration::from_secs(5)).unwrap();
    lifecycle(&server);
}

#[test]
fn collections_on_a_real_qdrant() {
    let Ok(url) = std::env::var("SOVEREIGN_E2E_QDRANT_URL") else {
        eprintln!(
            "skipped: set SOVEREIGN_E2E_QDRANT_URL (and SOVEREIGN_E2E_QDRANT_API_KEY) to run against a real Qdrant"
        );
        return;
    };
    let key = std::env::var("SOVEREIGN_E2E_QDRANT_API_KEY").ok();
    lifecycle(&QdrantServer::new(&url, key, Duration::from_secs(10)).unwrap());
}

#[test]
fn a_missing_or_wrong_key_is_refused_not_retried() {
    let double = QdrantDouble::start(Options { api_key: Some("right".into()), ..Options::default() }).unwrap();
    runtime().block_on(async {
        let none = QdrantServer::new(&double.url(), None, Duration::from_secs(5)).unwrap();
        assert!(matches!(none.collection("x").await, Err(QdrantError::Refused { status: 401, .. })));
        let wrong = QdrantServer::new(&double.url(), Some("wrong".into()), Duration::from_secs(5)).unwrap();
        let answer = wrong.collection("x").await;
        assert!(matches!(&answer, Err(QdrantError::Refused { status: 403, .. })), "{answer:?}");
        assert!(!format!("{answer:?}").contains("wrong"), "the key is in no message");
    });
}

#[test]
fn faults_at_a_fifth_of_the_writes_still_converge() {
    let faults = Faults { rate: 0.2, seed: 11, hang: Duration::from_millis(300), ..Faults::default() };
    let double = QdrantDouble::start(Options { api_key: None, faults }).unwrap();
    let server = QdrantServer::new(&double.url(), None, Duration::from_secs(1)).unwrap();
    let desired = json!({"vectors": {"size": 8, "distance": "Dot"}});
    runtime().block_on(async {
        for n in 0..30 {
            let name = format!("c{n}");
            let ensured = server.ensure_collection(&name, &desired).await.unwrap();
            assert_eq!(ensured, Ensured::Created, "{name}");
        }
    });
    assert_eq!(double.collections().len(), 30, "nothing lost or duplicated");
    assert!(double.faults_injected() > 0);
}
