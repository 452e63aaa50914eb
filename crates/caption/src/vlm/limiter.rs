//! A request-rate limiter shared by all concurrent requests: each caller gets
//! the next free start slot, one interval after the previous one.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces request starts at least `interval` apart.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` starts per second.
    pub(crate) fn new(per_second: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's slot.
    pub(crate) async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_interval() {
        let limiter = RateLimiter::new(10.0);
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        // Slots at 0, 100, 200, 300 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }
}
