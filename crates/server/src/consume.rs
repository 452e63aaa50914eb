//! The loop every event-driven part of a service runs over its durable
//! consumer, and the consumer settings they take from the configuration.

use std::future::Future;
use std::time::Duration;

use ssdit_bus::{Consumer, ConsumerConfig, Delivery};
use ssdit_core::Config;
use tokio_util::sync::CancellationToken;

/// Pause after the bus fails to deliver, before trying again.
const BUS_RETRY: Duration = Duration::from_secs(1);

/// The durable consumer `durable` of `subject`, with the configured ack wait
/// and delivery limit.
pub fn consumer_config(
    config: &Config,
    durable: impl Into<String>,
    subject: &str,
) -> ConsumerConfig {
    ConsumerConfig {
        ack_wait: config.bus.ack_wait,
        max_deliver: u32::try_from(config.bus.max_deliver).unwrap_or(u32::MAX),
        ..ConsumerConfig::new(durable, subject)
    }
}

/// Hands each non-empty batch of up to `max` deliveries (waiting up to `wait`
/// for the first) to `handle` until `shutdown` is cancelled. A batch being
/// handled is finished first; a failed fetch is logged and tried again after
/// a pause.
pub async fn consume<F, Fut>(
    consumer: &Consumer,
    max: usize,
    wait: Duration,
    shutdown: &CancellationToken,
    mut handle: F,
) where
    F: FnMut(Vec<Delivery>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => return,
            fetched = consumer.fetch(max, wait) => fetched,
        };
        match fetched {
            Ok(deliveries) if deliveries.is_empty() => {}
            Ok(deliveries) => handle(deliveries).await,
            Err(error) => {
                tracing::warn!(
                    consumer = %consumer.config().durable,
                    %error,
                    "fetching from the bus failed; retrying"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(BUS_RETRY) => {}
                }
            }
        }
    }
}
