//! Bounded retries with exponential backoff and jitter for transient store errors.
//!
//! object_store's own HTTP retries are switched off for the cloud backends (see
//! [`crate::Store::open`]), so this policy is the single place where attempts are counted
//! and logged.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// How often and how patiently to retry a failed store operation.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Upper bound of a delay (before jitter).
    pub max_delay: Duration,
    /// Growth factor per retry.
    pub multiplier: f64,
    /// Relative jitter in `[0, 1]`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(63) as i32;
        let base = self.initial_delay.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * rand::random::<f64>() - 1.0);
        Duration::from_secs_f64((capped * factor).max(0.0))
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the attempts run out.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        key: &str,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let max_attempts = self.max_attempts.max(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if let object_store::Error::NotFound { .. } = error {
                return Err(Error::NotFound {
                    operation,
                    key: key.to_owned(),
                });
            }
            if !is_transient(&error) || attempts >= max_attempts {
                if is_transient(&error) {
                    tracing::error!(operation, key, attempts, %error, "store operation failed; giving up");
                }
                return Err(Error::Backend {
                    operation,
                    key: key.to_owned(),
                    attempts,
                    source: error,
                });
            }
            let delay = self.delay(attempts);
            tracing::warn!(operation, key, attempts, ?delay, %error, "transient store error; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Network failures, server errors and timeouts surface as `Generic`; every other variant
/// (not found, already exists, precondition, permission, invalid path, not implemented…)
/// would fail the same way again.
fn is_transient(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::Generic { .. })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        }
    }

    fn transient() -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: "connection reset".into(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let value = quick(5)
            .run("get", "k", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(transient()),
                    _ => Ok(7),
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let calls = AtomicU32::new(0);
        let err = quick(3)
            .run("put", "k", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(transient())
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(matches!(err, Error::Backend { attempts: 3, .. }), "{err}");
    }

    #[tokio::test]
    async fn permanent_errors_fail_at_once() {
        let calls = AtomicU32::new(0);
        let err = quick(5)
            .run("get", "a/b", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(object_store::Error::NotFound {
                    path: "a/b".into(),
                    source: "missing".into(),
                })
            })
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(err, Error::NotFound { .. }));
    }

    #[test]
    fn delays_grow_and_saturate() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.delay(1), Duration::from_millis(100));
        assert_eq!(policy.delay(2), Duration::from_millis(200));
        assert_eq!(policy.delay(30), Duration::from_secs(5));
    }
}
