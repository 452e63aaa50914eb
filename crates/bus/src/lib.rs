//! ssdit's event bus: small protobuf events on subjects, consumed by durable pull consumers
//! with explicit acknowledgement.
//!
//! One trait, [`Bus`], two implementations:
//! - [`NatsBus`]: NATS JetStream — one stream per deployment over `<prefix>.>`, durable pull
//!   consumers shared by all replicas of a stage, redelivery after the ack wait, a
//!   dead-letter subject after the last allowed delivery. For distributed deployments.
//! - [`InProcessBus`]: the same semantics on in-memory state, for the embedded
//!   single-process mode (no broker).
//!
//! A stage opens a [`Consumer`] with a [`ConsumerConfig`], [`Consumer::fetch`]es a batch of
//! [`Delivery`]s and answers each one: [`Delivery::ack`] when its output is stored,
//! [`Delivery::nak`] to retry later with backoff, [`Delivery::in_progress`] to keep a long
//! batch, [`Delivery::term`] for a poison message. After `max_deliver` deliveries a message
//! is published as a [`ssdit_proto::v1::DeadLetter`] on `dead_letter.<durable>` with the
//! reason, and terminated.
//!
//! Delivery is at-least-once: handlers must be idempotent, which ssdit gets from
//! content-hash ids and deterministic output keys.

mod backoff;
mod config;
mod consumer;
mod error;
mod memory;
mod nats;
mod subject;

use async_trait::async_trait;
use bytes::Bytes;
use ssdit_proto::Event;

pub use backoff::Backoff;
pub use config::{ConsumerConfig, StreamConfig, dead_letter_subject};
pub use consumer::{Consumer, Delivery};
pub use error::{Error, Result};
pub use memory::InProcessBus;
pub use nats::{NatsBus, NatsConfig};

/// An event bus: durable publish, durable competing consumers.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` on `<prefix>.<subject>` (`subject` relative, no wildcards) and
    /// returns once the bus has stored it.
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<()>;

    /// Opens a handle on the durable consumer `config.durable`, creating or updating it
    /// (idempotent: any number of processes may do this at start-up).
    async fn consumer(&self, config: ConsumerConfig) -> Result<Consumer>;
}

/// Typed publishing of [`Event`]s on their own subjects.
#[async_trait]
pub trait BusExt: Bus {
    /// Publishes `event` on `<prefix>.<E::NAME>`.
    async fn publish_event<E: Event + Sync>(&self, event: &E) -> Result<()> {
        self.publish(E::NAME, event.to_bytes()).await
    }
}

impl<B: Bus + ?Sized> BusExt for B {}
