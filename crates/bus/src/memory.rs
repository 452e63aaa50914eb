//! The in-process bus: [`Bus`] semantics on shared memory, for the embedded mode.
//!
//! State is one log of published messages plus, per durable consumer, a cursor (next
//! message never delivered) and the pending set (delivered, not yet acked: redeliverable
//! once their due time passes — the ack-wait deadline, or the nak delay). All handles of a
//! durable share that state, so they split the work like JetStream pull consumers.
//! Critical sections are short and never await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::Bus;
use crate::config::{ConsumerConfig, StreamConfig};
use crate::consumer::{Acker, Consumer, ConsumerBackend, RawDelivery};
use crate::error::Result;
use crate::subject::{matches, validate_subject};

/// An in-memory [`Bus`]; clones share the same stream.
#[derive(Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

struct Inner {
    stream: StreamConfig,
    state: Mutex<State>,
    /// Woken on every publish and nak, so waiting fetches look again.
    changed: Notify,
}

#[derive(Default)]
struct State {
    log: VecDeque<Stored>,
    /// Sequence number of the next message published (the first is 1).
    next_seq: u64,
    groups: HashMap<String, Group>,
}

struct Stored {
    seq: u64,
    subject: String,
    payload: Bytes,
    published: Instant,
}

struct Group {
    config: ConsumerConfig,
    /// Next sequence number never delivered to this consumer.
    cursor: u64,
    pending: BTreeMap<u64, Pending>,
}

struct Pending {
    deliveries: u32,
    /// When the message becomes deliverable again.
    due: Instant,
}

impl InProcessBus {
    /// A new empty bus for `stream` (its prefix and retention limits apply as on NATS).
    pub fn new(stream: StreamConfig) -> Result<Self> {
        stream.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                stream,
                state: Mutex::new(State {
                    next_seq: 1,
                    ..State::default()
                }),
                changed: Notify::new(),
            }),
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than losing the bus, so recover the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn first_seq(&self) -> u64 {
        self.log.front().map_or(self.next_seq, |m| m.seq)
    }

    fn get(&self, seq: u64) -> Option<&Stored> {
        let index = seq.checked_sub(self.first_seq())?;
        self.log.get(usize::try_from(index).ok()?)
    }

    /// Drops messages beyond the retention limits.
    fn trim(&mut self, stream: &StreamConfig, now: Instant) {
        while self.log.len() as u64 > stream.max_messages {
            self.log.pop_front();
        }
        while self
            .log
            .front()
            .is_some_and(|m| now.duration_since(m.published) > stream.max_age)
        {
            self.log.pop_front();
        }
    }

    /// Up to `max` deliveries for `durable`: due redeliveries first, then new messages.
    /// Also returns when the next pending message falls due.
    fn take(&mut self, durable: &str, max: usize, now: Instant) -> (Vec<Taken>, Option<Instant>) {
        let first_seq = self.first_seq();
        let next_seq = self.next_seq;
        let Some(group) = self.groups.get_mut(durable) else {
            return (Vec::new(), None);
        };
        group.pending.retain(|&seq, _| seq >= first_seq);
        let ack_wait = group.config.ack_wait;
        let mut taken = Vec::new();
        for (&seq, pending) in group.pending.iter_mut() {
            if taken.len() == max {
                break;
            }
            if pending.due <= now {
                pending.deliveries += 1;
                pending.due = now + ack_wait;
                taken.push((seq, pending.deliveries));
            }
        }
        group.cursor = group.cursor.max(first_seq);
        while taken.len() < max && group.cursor < next_seq {
            let seq = group.cursor;
            group.cursor += 1;
            let index = (seq - first_seq) as usize;
            if self
                .log
                .get(index)
                .is_some_and(|m| matches(&group.config.subject, &m.subject))
            {
                group.pending.insert(
                    seq,
                    Pending {
                        deliveries: 1,
                        due: now + ack_wait,
                    },
                );
                taken.push((seq, 1));
            }
        }
        let next_due = group.pending.values().map(|p| p.due).min();
        let taken = taken
            .into_iter()
            .filter_map(|(seq, deliveries)| {
                self.get(seq).map(|m| Taken {
                    seq,
                    subject: m.subject.clone(),
                    payload: m.payload.clone(),
                    deliveries,
                })
            })
            .collect();
        (taken, next_due)
    }
}

struct Taken {
    seq: u64,
    subject: String,
    payload: Bytes,
    deliveries: u32,
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<()> {
        validate_subject("subject", subject, false)?;
        let now = Instant::now();
        {
            let mut state = self.inner.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.log.push_back(Stored {
                seq,
                subject: subject.to_owned(),
                payload,
                published: now,
            });
            state.trim(&self.inner.stream, now);
        }
        self.inner.changed.notify_waiters();
        Ok(())
    }

    async fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        {
            let mut state = self.inner.lock();
            let first_seq = state.first_seq();
            state
                .groups
                .entry(config.durable.clone())
                .and_modify(|group| group.config = config.clone())
                .or_insert_with(|| Group {
                    config: config.clone(),
                    cursor: first_seq,
                    pending: BTreeMap::new(),
                });
        }
        let backend = MemoryConsumer {
            inner: self.inner.clone(),
            durable: config.durable.clone(),
        };
        Ok(Consumer::new(
            Box::new(backend),
            config,
            Arc::new(self.clone()),
        ))
    }
}

struct MemoryConsumer {
    inner: Arc<Inner>,
    durable: String,
}

#[async_trait]
impl ConsumerBackend for MemoryConsumer {
    async fn fetch(&self, max: usize, timeout: Duration) -> Result<Vec<RawDelivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let (taken, next_due) = {
                let mut state = self.inner.lock();
                state.trim(&self.inner.stream, now);
                state.take(&self.durable, max, now)
            };
            if !taken.is_empty() {
                return Ok(taken.into_iter().map(|t| self.raw(t)).collect());
            }
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = next_due.map_or(deadline, |due| due.min(deadline));
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

impl MemoryConsumer {
    fn raw(&self, taken: Taken) -> RawDelivery {
        RawDelivery {
            subject: taken.subject,
            payload: taken.payload,
            delivered: taken.deliveries,
            acker: Box::new(MemoryAcker {
                inner: self.inner.clone(),
                durable: self.durable.clone(),
                seq: taken.seq,
            }),
        }
    }
}

/// Answers for one in-memory delivery. Like JetStream, answers apply to the message
/// (by sequence number) whichever delivery of it they come from.
struct MemoryAcker {
    inner: Arc<Inner>,
    durable: String,
    seq: u64,
}

impl MemoryAcker {
    fn remove(&self) {
        if let Some(group) = self.inner.lock().groups.get_mut(&self.durable) {
            group.pending.remove(&self.seq);
        }
    }

    /// Makes the message due again after `delay` (the ack wait when `None`).
    fn reschedule(&self, delay: Option<Duration>) {
        let mut state = self.inner.lock();
        let Some(group) = state.groups.get_mut(&self.durable) else {
            return;
        };
        let delay = delay.unwrap_or(group.config.ack_wait);
        if let Some(pending) = group.pending.get_mut(&self.seq) {
            pending.due = Instant::now() + delay;
        }
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<()> {
        self.remove();
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<()> {
        self.reschedule(Some(delay));
        self.inner.changed.notify_waiters();
        Ok(())
    }

    async fn in_progress(&self) -> Result<()> {
        self.reschedule(None);
        Ok(())
    }

    async fn term(&self) -> Result<()> {
        self.remove();
        Ok(())
    }
}
