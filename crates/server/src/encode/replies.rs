//! How an encoding stage answers the samples it is handed: publish and ack,
//! reject, or nak for a retry — each counted.

use std::sync::Arc;

use bytes::Bytes;
use ssdit_bus::{BusExt, Delivery};
use ssdit_dataset::{Dataset, RejectRecord};
use ssdit_proto::Event;
use ssdit_proto::v1::{SampleIngested, SampleRejected};
use ssdit_store::{Key, TensorFile};

use super::stats::{StatsSnapshot, WorkerStats};
use crate::ServiceContext;

/// One fetched `SampleIngested` message, decoded.
pub struct Sample {
    /// The message, answered once.
    pub delivery: Delivery,
    /// Its event.
    pub event: SampleIngested,
}

/// Answers an encoding stage's samples and counts each outcome. Clones share
/// the counters.
#[derive(Clone)]
pub struct Replies {
    pub(super) ctx: ServiceContext,
    stats: Arc<WorkerStats>,
    stage: &'static str,
    input_key: fn(&SampleIngested) -> &str,
}

impl Replies {
    /// Replies of stage `stage` (named in reject records), whose samples'
    /// input file is `input_key` of their event.
    pub(super) fn new(
        ctx: ServiceContext,
        stage: &'static str,
        input_key: fn(&SampleIngested) -> &str,
    ) -> Self {
        Self {
            ctx,
            stats: Arc::default(),
            stage,
            input_key,
        }
    }

    /// The counters now.
    pub(super) fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Counts a fetched message and decodes it; a message that is not a
    /// `SampleIngested` is dead-lettered.
    pub(super) async fn receive(&self, delivery: Delivery) -> Option<Sample> {
        WorkerStats::add(&self.stats.delivered);
        if delivery.delivered() > 1 {
            WorkerStats::add(&self.stats.redelivered);
        }
        match delivery.decode::<SampleIngested>() {
            Ok(event) => Some(Sample { delivery, event }),
            Err(error) => {
                answer(delivery.term(&error.to_string()).await);
                None
            }
        }
    }

    /// Reads the sample's `what` file at `key` (at most `max_bytes`); a file
    /// that is missing or too large rejects the sample, another store failure
    /// retries it.
    pub async fn read_input(
        &self,
        sample: Sample,
        key: &Key,
        max_bytes: u64,
        what: &str,
    ) -> Option<(Sample, Bytes)> {
        match self.ctx.store.get_bounded(key, max_bytes).await {
            Ok(bytes) => Some((sample, bytes)),
            Err(ssdit_store::Error::NotFound { .. }) => {
                self.reject(sample, format!("{what} is missing from the store"))
                    .await;
                None
            }
            Err(error @ ssdit_store::Error::TooLarge { .. }) => {
                self.reject(sample, error.to_string()).await;
                None
            }
            Err(error) => {
                self.retry(sample, &error.to_string()).await;
                None
            }
        }
    }

    /// Writes `file` at `key`, then finishes each sample with its event; when
    /// the file cannot be built or written, every sample is retried.
    pub async fn store<E: Event + Sync>(
        &self,
        key: &Key,
        file: ssdit_store::Result<TensorFile>,
        finished: Vec<(Sample, E)>,
    ) {
        let written = match file {
            Ok(file) => self.ctx.store.put_tensors(key, file).await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            let samples = finished.into_iter().map(|(sample, _)| sample);
            self.retry_all(samples, &error.to_string()).await;
            return;
        }
        WorkerStats::add(&self.stats.written);
        for (sample, event) in finished {
            self.finish(sample, &event).await;
        }
    }

    /// Publishes `event` for a sample whose result was already in the store,
    /// and acks (counted as skipped); naks when the bus fails.
    pub async fn finish_cached<E: Event + Sync>(&self, sample: Sample, event: &E) {
        if self.finish(sample, event).await {
            WorkerStats::add(&self.stats.skipped);
        }
    }

    /// Acks a sample with nothing for the stage to encode (counted as ignored).
    pub async fn ignore(&self, sample: Sample) {
        WorkerStats::add(&self.stats.ignored);
        answer(sample.delivery.ack().await);
    }

    /// Dead-letters a sample whose event cannot be processed at all (its
    /// dataset, sample id or keys are not valid ones).
    pub async fn terminate(&self, sample: Sample, reason: &str) {
        tracing::warn!(sample_id = %sample.event.sample_id, %reason, "malformed sample_ingested event");
        answer(sample.delivery.term(reason).await);
    }

    /// Records the sample as rejected by this stage, publishes
    /// `SampleRejected`, acks; retries when the store or the bus fails.
    pub async fn reject(&self, sample: Sample, reason: String) {
        let event = &sample.event;
        let file = (self.input_key)(event).to_string();
        tracing::warn!(dataset = %event.dataset, sample_id = %event.sample_id, %file, %reason, "sample rejected");
        let record = RejectRecord {
            file: file.clone(),
            reason: reason.clone(),
            stage: self.stage.into(),
            sample_id: Some(event.sample_id.clone()),
        };
        let recorded = match Dataset::new(self.ctx.store.clone(), &event.dataset) {
            Ok(dataset) => dataset.add_reject(&record).await,
            Err(error) => Err(error),
        };
        if let Err(error) = recorded {
            self.retry(sample, &error.to_string()).await;
            return;
        }
        let rejected = SampleRejected {
            dataset: event.dataset.clone(),
            file,
            reason,
            stage: self.stage.into(),
            sample_id: Some(event.sample_id.clone()),
        };
        if let Err(error) = self.ctx.bus.publish_event(&rejected).await {
            self.retry(sample, &error.to_string()).await;
            return;
        }
        WorkerStats::add(&self.stats.rejected);
        answer(sample.delivery.ack().await);
    }

    /// Naks for a retry after the consumer's backoff.
    pub async fn retry(&self, sample: Sample, reason: &str) {
        let delivery = sample.delivery;
        tracing::warn!(delivered = delivery.delivered(), reason, "retrying later");
        WorkerStats::add(&self.stats.retried);
        answer(delivery.nak(reason).await);
    }

    /// Naks every one of `samples` for a retry.
    pub async fn retry_all(&self, samples: impl IntoIterator<Item = Sample>, reason: &str) {
        for sample in samples {
            self.retry(sample, reason).await;
        }
    }

    /// Publishes `event` (the sample's result is in the store) and acks;
    /// naks when the bus fails. Returns whether the message was acked.
    async fn finish<E: Event + Sync>(&self, sample: Sample, event: &E) -> bool {
        match self.ctx.bus.publish_event(event).await {
            Ok(()) => {
                answer(sample.delivery.ack().await);
                true
            }
            Err(error) => {
                self.retry(sample, &error.to_string()).await;
                false
            }
        }
    }
}

/// Logs a failed ack/nak/term: the message will be redelivered after the ack wait.
fn answer(result: ssdit_bus::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(%error, "answering the bus failed; the message will be redelivered");
    }
}
