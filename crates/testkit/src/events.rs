//! Watching an event bus from a test: publish events, open observers,
//! collect what arrives, and check that nothing more does.

use std::time::Duration;

use ssdit_bus::{Bus, BusExt, Consumer, ConsumerConfig};
use ssdit_proto::Event;
use ssdit_server::ServiceContext;

/// Publishes every event.
pub async fn publish<E: Event + Sync>(bus: &dyn Bus, events: &[E]) {
    for event in events {
        bus.publish_event(event).await.unwrap();
    }
}

/// A consumer of `E` events named `name` (the in-process bus and JetStream
/// both keep earlier events, so it sees them whenever it is opened).
pub async fn observer<E: Event>(bus: &dyn Bus, name: &str) -> Consumer {
    bus.consumer(ConsumerConfig::new(name, E::NAME))
        .await
        .unwrap()
}

/// Collects `n` events from `consumer` (acking them), failing after `within`.
pub async fn collect<E: Event>(consumer: &Consumer, n: usize, within: Duration) -> Vec<E> {
    let deadline = tokio::time::Instant::now() + within;
    let mut events = Vec::new();
    while events.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {n} {} events",
            events.len(),
            E::NAME
        );
        for delivery in consumer
            .fetch(n - events.len(), left.min(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            events.push(delivery.decode::<E>().unwrap());
            delivery.ack().await.unwrap();
        }
    }
    events
}

/// Asserts that no further event arrives on `consumer` within `wait`.
pub async fn assert_quiet(consumer: &Consumer, wait: Duration) {
    let extra = consumer.fetch(8, wait).await.unwrap();
    assert!(extra.is_empty(), "unexpected events: {extra:?}");
}

/// Asserts that the service on `ctx` acked every message of its durable
/// consumer `config`: after twice the ack wait, none comes back.
pub async fn assert_all_acked(ctx: &ServiceContext, config: ConsumerConfig) {
    tokio::time::sleep(ctx.config.bus.ack_wait * 2).await;
    let leftover = ctx.bus.consumer(config).await.unwrap();
    assert_quiet(&leftover, Duration::from_millis(300)).await;
}
