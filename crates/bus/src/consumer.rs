//! Durable consumers and their deliveries, shared by both buses.
//!
//! A bus implementation supplies a [`ConsumerBackend`] (fetch raw messages) and one
//! [`Acker`] per message (ack / nak / in-progress / term). The max-deliveries rule and the
//! dead-letter subject are implemented once, here, on top of them:
//!
//! - a [`Delivery::nak`] or [`Delivery::term`] on a message's last allowed delivery publishes
//!   a [`DeadLetter`] carrying the reason, then terminates the message;
//! - a message fetched with more deliveries than allowed (its last holder never answered
//!   within the ack wait, e.g. it crashed) is dead-lettered at fetch time and never handed
//!   to the caller.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ssdit_proto::Event;
use ssdit_proto::v1::DeadLetter;
use tokio::time::Instant;

use crate::Bus;
use crate::config::ConsumerConfig;
use crate::error::{Error, Result};

/// One message as a bus implementation fetched it.
pub(crate) struct RawDelivery {
    /// Subject relative to the deployment prefix.
    pub subject: String,
    pub payload: Bytes,
    /// 1 on first delivery.
    pub delivered: u32,
    pub acker: Box<dyn Acker>,
}

/// Fetches raw messages of one durable consumer.
#[async_trait]
pub(crate) trait ConsumerBackend: Send + Sync {
    /// Up to `max` messages; waits up to `timeout` for the first one, then returns what is
    /// immediately available.
    async fn fetch(&self, max: usize, timeout: Duration) -> Result<Vec<RawDelivery>>;
}

/// Answers the bus about one delivered message.
#[async_trait]
pub(crate) trait Acker: Send + Sync {
    async fn ack(&self) -> Result<()>;
    async fn nak(&self, delay: Duration) -> Result<()>;
    async fn in_progress(&self) -> Result<()>;
    async fn term(&self) -> Result<()>;
}

/// What a delivery needs to dead-letter itself.
#[derive(Clone)]
struct Policy {
    config: Arc<ConsumerConfig>,
    bus: Arc<dyn Bus>,
}

impl Policy {
    async fn dead_letter(&self, raw: &RawDelivery, reason: &str) -> Result<()> {
        let letter = DeadLetter {
            subject: raw.subject.clone(),
            consumer: self.config.durable.clone(),
            deliveries: raw.delivered,
            reason: reason.to_owned(),
            payload: raw.payload.clone(),
        };
        tracing::warn!(
            consumer = %self.config.durable,
            subject = %raw.subject,
            deliveries = raw.delivered,
            reason,
            "message dead-lettered"
        );
        self.bus
            .publish(&self.config.dead_letter_subject(), letter.to_bytes())
            .await?;
        raw.acker.term().await
    }
}

/// A handle on a durable consumer. Handles opened with the same durable name — in this
/// process or others — compete for its messages.
pub struct Consumer {
    backend: Box<dyn ConsumerBackend>,
    policy: Policy,
}

impl Consumer {
    pub(crate) fn new(
        backend: Box<dyn ConsumerBackend>,
        config: ConsumerConfig,
        bus: Arc<dyn Bus>,
    ) -> Self {
        Self {
            backend,
            policy: Policy {
                config: Arc::new(config),
                bus,
            },
        }
    }

    /// The consumer's configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.policy.config
    }

    /// Up to `max` deliveries: waits up to `timeout` for the first, then takes what is
    /// available at once (a GPU stage batches them into one forward pass). Empty on timeout.
    pub async fn fetch(&self, max: usize, timeout: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let raw = self.backend.fetch(max, remaining).await?;
            if raw.is_empty() {
                return Ok(Vec::new());
            }
            let mut deliveries = Vec::with_capacity(raw.len());
            for raw in raw {
                if raw.delivered > self.policy.config.max_deliver {
                    self.expire(raw).await;
                } else {
                    deliveries.push(Delivery {
                        raw,
                        policy: self.policy.clone(),
                    });
                }
            }
            if !deliveries.is_empty() || Instant::now() >= deadline {
                return Ok(deliveries);
            }
        }
    }

    /// Dead-letters a message whose deliveries ran out without an answer. If publishing
    /// the dead letter fails the message is nak'd, so it is tried again rather than lost.
    async fn expire(&self, raw: RawDelivery) {
        let reason = format!(
            "not acknowledged within the ack wait ({:?}) after {} deliveries",
            self.policy.config.ack_wait, self.policy.config.max_deliver
        );
        if let Err(error) = self.policy.dead_letter(&raw, &reason).await {
            tracing::error!(
                consumer = %self.policy.config.durable,
                subject = %raw.subject,
                %error,
                "dead-lettering failed; the message will be redelivered"
            );
            let delay = self.policy.config.backoff.delay(raw.delivered);
            if let Err(error) = raw.acker.nak(delay).await {
                tracing::error!(consumer = %self.policy.config.durable, %error, "nak failed");
            }
        }
    }
}

/// One delivered message. Answer it with exactly one of [`ack`](Self::ack),
/// [`nak`](Self::nak) or [`term`](Self::term); unanswered, it is redelivered after the ack
/// wait. [`in_progress`](Self::in_progress) extends the wait for long batches.
pub struct Delivery {
    raw: RawDelivery,
    policy: Policy,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.raw.subject)
            .field("payload_len", &self.raw.payload.len())
            .field("delivered", &self.raw.delivered)
            .finish()
    }
}

impl Delivery {
    /// Subject relative to the deployment prefix (`sample_ingested`).
    pub fn subject(&self) -> &str {
        &self.raw.subject
    }

    /// The payload bytes, as published.
    pub fn payload(&self) -> &Bytes {
        &self.raw.payload
    }

    /// How many times this message has been delivered, this time included (1 at first).
    pub fn delivered(&self) -> u32 {
        self.raw.delivered
    }

    /// Whether this is the last delivery before a nak dead-letters the message.
    pub fn is_last_attempt(&self) -> bool {
        self.raw.delivered >= self.policy.config.max_deliver
    }

    /// Decodes the payload as event `E`.
    pub fn decode<E: Event>(&self) -> Result<E> {
        E::from_bytes(&self.raw.payload).map_err(|source| Error::Decode {
            subject: self.raw.subject.clone(),
            source,
        })
    }

    /// The message is done: it is not delivered again.
    pub async fn ack(self) -> Result<()> {
        self.raw.acker.ack().await
    }

    /// Processing failed: redeliver after the consumer's backoff for this attempt, or
    /// dead-letter with `reason` when this was the last allowed delivery.
    pub async fn nak(self, reason: &str) -> Result<()> {
        let delay = self.policy.config.backoff.delay(self.raw.delivered);
        self.nak_with_delay(delay, reason).await
    }

    /// As [`nak`](Self::nak) with an explicit redelivery delay.
    pub async fn nak_with_delay(self, delay: Duration, reason: &str) -> Result<()> {
        if self.is_last_attempt() {
            return self.policy.dead_letter(&self.raw, reason).await;
        }
        tracing::debug!(
            subject = %self.raw.subject,
            delivered = self.raw.delivered,
            ?delay,
            reason,
            "message nak'd"
        );
        self.raw.acker.nak(delay).await
    }

    /// Still working on it: restarts the ack-wait clock.
    pub async fn in_progress(&self) -> Result<()> {
        self.raw.acker.in_progress().await
    }

    /// The message can never be processed (poison): it is dead-lettered with `reason` and
    /// not delivered again.
    pub async fn term(self, reason: &str) -> Result<()> {
        self.policy.dead_letter(&self.raw, reason).await
    }
}
