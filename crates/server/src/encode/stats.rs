//! What an encoding worker has done since it started.

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters of an encoding worker, shared by its clones.
#[derive(Debug, Default)]
pub(super) struct WorkerStats {
    pub(super) delivered: AtomicU64,
    pub(super) redelivered: AtomicU64,
    pub(super) written: AtomicU64,
    pub(super) skipped: AtomicU64,
    pub(super) ignored: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) retried: AtomicU64,
}

/// A copy of an encoding worker's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages received (first deliveries and redeliveries).
    pub delivered: u64,
    /// Messages received that had been delivered before (to this worker or another).
    pub redelivered: u64,
    /// Results computed and written (one per distinct cache key of a batch).
    pub written: u64,
    /// Messages whose result was already in the store.
    pub skipped: u64,
    /// Samples with nothing for the stage to encode (a text-encoder's
    /// uncaptioned samples), acked.
    pub ignored: u64,
    /// Samples recorded as rejects.
    pub rejected: u64,
    /// Messages nak'd for a retry.
    pub retried: u64,
}

impl WorkerStats {
    /// The counters now.
    pub(super) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            delivered: self.delivered.load(Ordering::Relaxed),
            redelivered: self.redelivered.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }

    /// Counts one more of `counter`.
    pub(super) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
