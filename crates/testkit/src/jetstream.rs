//! Counts read from the broker itself: how many events a subject holds and
//! what a durable consumer has delivered, so a fault test can print and
//! check published / delivered / redelivered without trusting the services.

use async_nats::jetstream::{self, Context};
use futures::StreamExt;

/// A durable consumer's state on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerCounts {
    /// Deliveries made, redeliveries included (the consumer sequence).
    pub deliveries: u64,
    /// Messages delivered and not yet answered.
    pub ack_pending: u64,
    /// Messages not yet delivered.
    pub pending: u64,
    /// Messages now pending that were delivered more than once.
    pub redelivered_pending: u64,
}

/// A read-only client of one JetStream stream.
pub struct BusProbe {
    js: Context,
    stream: String,
}

impl BusProbe {
    /// Connects to `url` (reconnecting by itself after a broker restart).
    pub async fn connect(url: &str, stream: &str) -> Self {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("connecting the bus probe to {url}: {e}"));
        Self {
            js: jetstream::new(client),
            stream: stream.to_string(),
        }
    }

    /// Messages the stream holds on `subject` (absolute, e.g. `ssdit.latent_encoded`);
    /// 0 while no service has created the stream yet.
    pub async fn published(&self, subject: &str) -> u64 {
        let Ok(stream) = self.js.get_stream(&self.stream).await else {
            return 0;
        };
        let mut subjects = stream
            .info_with_subjects(subject)
            .await
            .unwrap_or_else(|e| panic!("stream {} subjects: {e}", self.stream));
        let mut count = 0u64;
        while let Some(entry) = subjects.next().await {
            let (name, messages) = entry.unwrap_or_else(|e| panic!("subject counts: {e}"));
            if name == subject {
                count += messages as u64;
            }
        }
        count
    }

    /// The state of durable consumer `durable`; `None` while it does not
    /// exist yet or the broker cannot be reached.
    pub async fn consumer(&self, durable: &str) -> Option<ConsumerCounts> {
        let stream = self.js.get_stream(&self.stream).await.ok()?;
        let info = stream.consumer_info(durable).await.ok()?;
        Some(ConsumerCounts {
            deliveries: info.delivered.consumer_sequence,
            ack_pending: info.num_ack_pending as u64,
            pending: info.num_pending,
            redelivered_pending: info.num_redelivered as u64,
        })
    }
}
