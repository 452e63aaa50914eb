//! The bounded request queue and its batching.
//!
//! Accepted requests wait in arrival order, at most `sampler.max_queue` of
//! them; one more is refused at once (RESOURCE_EXHAUSTED). The dispatcher
//! takes the oldest request and, with it, the waiting requests of the same
//! [`BatchKey`](crate::request::BatchKey) — up to `sampler.max_batch` — so
//! nobody is overtaken by a request of another shape, and same-shaped
//! requests share forward passes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use ssdit_proto::v1::GenerateProgress;
use tokio::sync::{Notify, mpsc};
use tonic::Status;

use crate::request::{BatchKey, GenerateParams};
use crate::{Error, Result};

/// Where a request's progress messages and final image go.
pub type Reply = mpsc::Sender<std::result::Result<GenerateProgress, Status>>;

/// An accepted request.
#[derive(Debug)]
pub struct Pending {
    pub params: GenerateParams,
    pub key: BatchKey,
    pub reply: Reply,
    pub accepted: Instant,
}

/// The queue shared by the gRPC handlers (producers) and the dispatcher.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    max_batch: usize,
    stats: Stats,
}

#[derive(Debug, Default)]
struct State {
    waiting: VecDeque<Pending>,
    closed: bool,
}

/// Counters of what the sampler has computed.
#[derive(Debug, Default)]
struct Stats {
    batches: AtomicU64,
    requests: AtomicU64,
    largest_batch: AtomicUsize,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplerStats {
    /// Batches taken by the dispatcher.
    pub batches: u64,
    /// Requests taken by the dispatcher.
    pub requests: u64,
    /// The most requests computed together.
    pub largest_batch: usize,
    /// Requests waiting now.
    pub waiting: usize,
}

impl Queue {
    /// A queue of at most `capacity` waiting requests, taken `max_batch` at a time.
    pub fn new(capacity: usize, max_batch: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            capacity,
            max_batch: max_batch.max(1),
            stats: Stats::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts a request, or refuses it at once when the queue is full or closed.
    pub fn push(&self, pending: Pending) -> Result<()> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(Error::ShuttingDown);
            }
            if state.waiting.len() >= self.capacity {
                return Err(Error::QueueFull(format!(
                    "{} requests are already waiting (sampler.max_queue); retry later",
                    state.waiting.len()
                )));
            }
            state.waiting.push_back(pending);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next batch: the oldest request and the waiting ones of its key.
    /// `None` once the queue is closed and empty.
    pub async fn next_batch(&self) -> Option<Vec<Pending>> {
        loop {
            if let Some(batch) = self.take_batch() {
                return Some(batch);
            }
            if self.lock().closed {
                return None;
            }
            self.ready.notified().await;
        }
    }

    fn take_batch(&self) -> Option<Vec<Pending>> {
        let mut state = self.lock();
        let head = state.waiting.pop_front()?;
        let mut batch = vec![head];
        let mut index = 0;
        while batch.len() < self.max_batch && index < state.waiting.len() {
            if state.waiting[index].key == batch[0].key {
                batch.extend(state.waiting.remove(index));
            } else {
                index += 1;
            }
        }
        drop(state);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats
            .largest_batch
            .fetch_max(batch.len(), Ordering::Relaxed);
        Some(batch)
    }

    /// Refuses new requests from now on and returns those still waiting.
    pub fn close(&self) -> Vec<Pending> {
        let waiting = {
            let mut state = self.lock();
            state.closed = true;
            state.waiting.drain(..).collect()
        };
        self.ready.notify_waiters();
        waiting
    }

    /// The counters now.
    pub fn stats(&self) -> SamplerStats {
        SamplerStats {
            batches: self.stats.batches.load(Ordering::Relaxed),
            requests: self.stats.requests.load(Ordering::Relaxed),
            largest_batch: self.stats.largest_batch.load(Ordering::Relaxed),
            waiting: self.lock().waiting.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssdit_core::config::SamplerConfig;
    use ssdit_proto::v1::GenerateRequest;

    fn pending(
        width: u32,
        seed: u64,
    ) -> (
        Pending,
        mpsc::Receiver<std::result::Result<GenerateProgress, Status>>,
    ) {
        let request = GenerateRequest {
            prompt: "a rose".into(),
            width: Some(width),
            height: Some(64),
            seed: Some(seed),
            ..GenerateRequest::default()
        };
        let params = GenerateParams::from_request(request, &SamplerConfig::default(), 0).unwrap();
        let (reply, receiver) = mpsc::channel(1);
        (
            Pending {
                key: params.batch_key(),
                params,
                reply,
                accepted: Instant::now(),
            },
            receiver,
        )
    }

    #[tokio::test]
    async fn batches_the_oldest_request_with_its_shape_and_refuses_beyond_capacity() {
        let queue = Queue::new(4, 2);
        let mut receivers = Vec::new();
        for (width, seed) in [(64, 1), (128, 2), (64, 3), (64, 4)] {
            let (p, r) = pending(width, seed);
            queue.push(p).unwrap();
            receivers.push(r);
        }
        let (extra, _r) = pending(64, 5);
        assert!(matches!(queue.push(extra), Err(Error::QueueFull(_))));

        let seeds = |batch: Vec<Pending>| batch.iter().map(|p| p.params.seed).collect::<Vec<_>>();
        assert_eq!(seeds(queue.next_batch().await.unwrap()), [1, 3]);
        assert_eq!(seeds(queue.next_batch().await.unwrap()), [2]);
        assert_eq!(seeds(queue.next_batch().await.unwrap()), [4]);
        let stats = queue.stats();
        assert_eq!(
            (
                stats.batches,
                stats.requests,
                stats.largest_batch,
                stats.waiting
            ),
            (3, 4, 2, 0)
        );

        let (late, _r) = pending(64, 6);
        queue.push(late).unwrap();
        assert_eq!(queue.close().len(), 1);
        let (refused, _r) = pending(64, 7);
        assert!(matches!(queue.push(refused), Err(Error::ShuttingDown)));
        assert!(queue.next_batch().await.is_none());
    }
}
