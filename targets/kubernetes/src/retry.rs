//! Retries of transient failures: exponential backoff with full jitter,
//! a server's Retry-After honoured, and never a retry of a request the
//! server refused as wrong.

use std::future::Future;
use std::time::Duration;

use crate::{DriverError, classify};

#[derive(Clone, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Attempts in all, the first one included.
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { first: Duration::from_millis(100), max: Duration::from_secs(5), attempts: 8 }
    }
}

impl Backoff {
    /// The wait after the `attempt`th failure (from 1): full jitter under
    /// an exponentially growing ceiling.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.first.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(self.max);
        Duration::from_nanos(jitter(ceiling.as_nanos() as u64))
    }

    /// The wait after the `attempt`th transient failure, `why`, said as an
    /// event of the current span (an apply step's): which attempt comes next.
    pub fn before_retry(&self, attempt: u32, why: &dyn std::fmt::Display) -> Duration {
        tracing::info!(sovereign.attempt = i64::from(attempt) + 1, "retrying after a transient failure: {why}");
        self.delay(attempt)
    }
}

/// Whether a failure may pass if the request is made again.
pub(crate) fn transient(error: &DriverError) -> bool {
    match error {
        DriverError::Unreachable(_) => true,
        // 409 without field conflicts: "the object has been modified", or a racing create.
        DriverError::Rejected { code, .. } => matches!(code, 409 | 429 | 500..=599),
        DriverError::Conflict { .. } | DriverError::UnknownKind(_) | DriverError::Config(_) => false,
    }
}

/// For a write that must not be retried blindly once it may have landed
/// (a create, a replace with a resourceVersion): a 409 is the caller's to
/// judge, not a transient failure.
pub(crate) async fn run_once_written<T, F, Fut>(backoff: &Backoff, request: F) -> Result<T, DriverError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    run_with(backoff, request, false).await
}

pub(crate) async fn run<T, F, Fut>(backoff: &Backoff, request: F) -> Result<T, DriverError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    run_with(backoff, request, true).await
}

async fn run_with<T, F, Fut>(backoff: &Backoff, mut request: F, retry_conflicts: bool) -> Result<T, DriverError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let retry_after = match request().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let too_many = matches!(&error, kube::Error::Api(status) if status.code == 429);
                let (error, _) = classify(error);
                let conflict = matches!(error, DriverError::Rejected { code: 409, .. });
                if !transient(&error) || (conflict && !retry_conflicts) || attempt >= backoff.attempts {
                    return Err(error);
                }
                // kube-rs does not hand over the Retry-After header; a 429
                // waits at least the one second servers usually ask for.
                let jittered = backoff.before_retry(attempt, &error);
                (too_many.then_some(Duration::from_secs(1)), jittered)
            }
        };
        let (retry_after, jittered) = retry_after;
        tokio::time::sleep(retry_after.map_or(jittered, |after| after.max(jittered))).await;
    }
}

/// A uniform draw in [0, ceiling], from the clock's low bits (no RNG crate
/// for this; the spread is what matters, not its quality).
fn jitter(ceiling: u64) -> u64 {
    if ceiling == 0 {
        return 0;
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |now| now.subsec_nanos() as u64);
    let mixed = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    mixed % (ceiling + 1)
}
