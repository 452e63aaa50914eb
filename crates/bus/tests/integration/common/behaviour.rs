//! Behaviours every [`Bus`] must show, written once and run on both implementations.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssdit_bus::{Bus, BusExt, ConsumerConfig, Delivery};
use ssdit_proto::Event;
use ssdit_proto::v1::{DeadLetter, LatentEncoded, SampleIngested};

use super::Harness;

fn sample(i: u32) -> SampleIngested {
    SampleIngested {
        dataset: "flowers".into(),
        sample_id: format!("sample-{i:04}"),
        image_key: format!("datasets/flowers/images/sample-{i:04}.png"),
        caption_key: format!("datasets/flowers/captions/sample-{i:04}.txt"),
        bucket_width: 448,
        bucket_height: 448,
    }
}

fn config(durable: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(durable, SampleIngested::NAME);
    config.ack_wait = Duration::from_millis(800);
    config.max_deliver = 3;
    config
}

async fn publish_samples(bus: &Arc<dyn Bus>, range: std::ops::Range<u32>) {
    for i in range {
        bus.publish_event(&sample(i)).await.expect("publish");
    }
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| d.decode::<SampleIngested>().expect("decode").sample_id)
        .collect()
}

async fn ack_all(deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        delivery.ack().await.expect("ack");
    }
}

/// Receives the dead letters of `durable`, waiting up to 5 s for `count` of them.
async fn dead_letters(bus: &Arc<dyn Bus>, durable: &str, count: usize) -> Vec<DeadLetter> {
    let config = ConsumerConfig::new(format!("{durable}-dlq"), "dead_letter.>");
    let consumer = bus.consumer(config).await.expect("dead-letter consumer");
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while letters.len() < count && Instant::now() < deadline {
        let batch = consumer
            .fetch(10, Duration::from_millis(500))
            .await
            .expect("fetch dead letters");
        for delivery in batch {
            assert_eq!(delivery.subject(), format!("dead_letter.{durable}"));
            letters.push(delivery.decode::<DeadLetter>().expect("decode dead letter"));
            delivery.ack().await.expect("ack dead letter");
        }
    }
    letters
}

/// Nothing is delivered to `consumer` within `wait`.
async fn assert_quiet(consumer: &ssdit_bus::Consumer, wait: Duration) {
    let batch = consumer.fetch(10, wait).await.expect("fetch");
    assert!(batch.is_empty(), "unexpected deliveries: {:?}", ids(&batch));
}

pub async fn publish_fetch_ack(harness: &impl Harness) {
    let bus = harness.connect().await;
    let consumer = bus.consumer(config("ack")).await.expect("consumer");
    publish_samples(&bus, 0..3).await;

    let batch = consumer
        .fetch(10, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(ids(&batch), ["sample-0000", "sample-0001", "sample-0002"]);
    for (i, delivery) in (0..).zip(&batch) {
        assert_eq!(delivery.subject(), SampleIngested::NAME);
        assert_eq!(delivery.delivered(), 1);
        assert_eq!(delivery.payload(), &sample(i).to_bytes());
    }
    ack_all(batch).await;
    assert_quiet(&consumer, Duration::from_millis(1200)).await;
}

pub async fn fetch_respects_max_and_timeout(harness: &impl Harness) {
    let bus = harness.connect().await;
    let consumer = bus.consumer(config("batch")).await.expect("consumer");

    let started = Instant::now();
    let empty = consumer
        .fetch(4, Duration::from_millis(300))
        .await
        .expect("fetch");
    assert!(empty.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    publish_samples(&bus, 0..10).await;
    let first = consumer
        .fetch(4, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(first.len(), 4);
    let rest = consumer
        .fetch(100, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(rest.len(), 6);
    assert!(
        consumer
            .fetch(0, Duration::from_secs(1))
            .await
            .expect("fetch")
            .is_empty()
    );
    ack_all(first).await;
    ack_all(rest).await;
}

pub async fn consumers_see_only_their_subject_and_earlier_events(harness: &impl Harness) {
    let bus = harness.connect().await;
    publish_samples(&bus, 0..2).await;
    bus.publish_event(&LatentEncoded {
        sample_id: "sample-0000".into(),
        ..LatentEncoded::default()
    })
    .await
    .expect("publish");

    let samples = bus
        .consumer(config("late-samples"))
        .await
        .expect("consumer");
    let batch = samples
        .fetch(10, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(ids(&batch), ["sample-0000", "sample-0001"]);
    ack_all(batch).await;

    let latents = bus
        .consumer(ConsumerConfig::new("late-latents", LatentEncoded::NAME))
        .await
        .expect("consumer");
    let batch = latents
        .fetch(10, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].subject(), LatentEncoded::NAME);
    ack_all(batch).await;
    assert_quiet(&samples, Duration::from_millis(300)).await;
}

pub async fn nak_redelivers(harness: &impl Harness) {
    let bus = harness.connect().await;
    let mut config = config("nak");
    config.ack_wait = Duration::from_secs(4);
    let consumer = bus.consumer(config).await.expect("consumer");
    publish_samples(&bus, 0..1).await;

    let mut batch = consumer
        .fetch(1, Duration::from_secs(5))
        .await
        .expect("fetch");
    let first = batch.pop().expect("one delivery");
    assert!(!first.is_last_attempt());
    let nakked = Instant::now();
    first
        .nak_with_delay(Duration::from_millis(200), "transient")
        .await
        .expect("nak");

    let batch = consumer
        .fetch(1, Duration::from_secs(5))
        .await
        .expect("fetch");
    let waited = nakked.elapsed();
    assert_eq!(ids(&batch), ["sample-0000"]);
    assert_eq!(batch[0].delivered(), 2);
    // After the nak delay, long before the ack wait.
    assert!(
        waited >= Duration::from_millis(150),
        "redelivered after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "redelivered after {waited:?}"
    );
    ack_all(batch).await;
    assert_quiet(&consumer, Duration::from_millis(1200)).await;
}

pub async fn unacked_message_is_redelivered_after_ack_wait(harness: &impl Harness) {
    let bus = harness.connect().await;
    let consumer = bus.consumer(config("crash")).await.expect("consumer");
    publish_samples(&bus, 0..1).await;

    let batch = consumer
        .fetch(1, Duration::from_secs(5))
        .await
        .expect("fetch");
    let taken = Instant::now();
    drop(batch); // the worker "crashes" without answering

    let batch = consumer
        .fetch(1, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(ids(&batch), ["sample-0000"]);
    assert_eq!(batch[0].delivered(), 2);
    let waited = taken.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "redelivered after {waited:?}"
    );
    ack_all(batch).await;
}

pub async fn in_progress_extends_ack_wait(harness: &impl Harness) {
    let mut config = config("slow");
    config.ack_wait = Duration::from_millis(1500);
    let bus = harness.connect().await;
    let consumer = bus.consumer(config.clone()).await.expect("consumer");
    let other = harness
        .connect()
        .await
        .consumer(config)
        .await
        .expect("second consumer");
    publish_samples(&bus, 0..1).await;

    let mut batch = consumer
        .fetch(1, Duration::from_secs(5))
        .await
        .expect("fetch");
    let delivery = batch.pop().expect("one delivery");
    // Work for more than two ack waits, reporting progress every 300 ms.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3500) {
        delivery.in_progress().await.expect("in progress");
        assert_quiet(&other, Duration::from_millis(300)).await;
    }
    delivery.ack().await.expect("ack");
    assert_quiet(&other, Duration::from_millis(2000)).await;
}

pub async fn competing_consumers_split_the_work(harness: &impl Harness) {
    const N: u32 = 40;
    let publisher = harness.connect().await;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let bus = harness.connect().await;
        let consumer = bus.consumer(config("workers")).await.expect("consumer");
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut idle = 0;
            while idle < 3 {
                let batch = consumer
                    .fetch(5, Duration::from_millis(400))
                    .await
                    .expect("fetch");
                if batch.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                seen.extend(ids(&batch));
                ack_all(batch).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }));
    }
    publish_samples(&publisher, 0..N).await;

    let mut all = Vec::new();
    for worker in workers {
        let seen = worker.await.expect("worker");
        assert!(!seen.is_empty(), "a worker got no messages");
        all.extend(seen);
    }
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), N as usize, "duplicates or losses: {all:?}");
    assert_eq!(unique.len(), N as usize);
}

pub async fn nak_on_last_delivery_dead_letters(harness: &impl Harness) {
    let bus = harness.connect().await;
    let consumer = bus.consumer(config("poisoned")).await.expect("consumer");
    publish_samples(&bus, 7..8).await;

    for attempt in 1..=3u32 {
        let mut batch = consumer
            .fetch(1, Duration::from_secs(5))
            .await
            .expect("fetch");
        let delivery = batch.pop().expect("a delivery per attempt");
        assert_eq!(delivery.delivered(), attempt);
        assert_eq!(delivery.is_last_attempt(), attempt == 3);
        delivery
            .nak_with_delay(Duration::ZERO, &format!("decode failed #{attempt}"))
            .await
            .expect("nak");
    }
    assert_quiet(&consumer, Duration::from_millis(1200)).await;

    let letters = dead_letters(&bus, "poisoned", 1).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.reason, "decode failed #3");
    assert_eq!(letter.deliveries, 3);
    assert_eq!(letter.consumer, "poisoned");
    assert_eq!(letter.subject, SampleIngested::NAME);
    assert_eq!(letter.payload, sample(7).to_bytes());
}

pub async fn silent_holders_exhaust_deliveries_into_dead_letter(harness: &impl Harness) {
    let bus = harness.connect().await;
    let mut config = config("silent");
    config.ack_wait = Duration::from_millis(300);
    config.max_deliver = 2;
    let consumer = bus.consumer(config).await.expect("consumer");
    publish_samples(&bus, 0..1).await;

    for attempt in 1..=2 {
        let batch = consumer
            .fetch(1, Duration::from_secs(5))
            .await
            .expect("fetch");
        assert_eq!(batch.len(), 1, "attempt {attempt}");
        assert_eq!(batch[0].delivered(), attempt);
    }
    // The third delivery is past the limit: it is dead-lettered, never handed out.
    assert_quiet(&consumer, Duration::from_millis(1500)).await;
    let letters = dead_letters(&bus, "silent", 1).await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("not acknowledged"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].payload, sample(0).to_bytes());
}

pub async fn term_dead_letters_at_once(harness: &impl Harness) {
    let bus = harness.connect().await;
    let consumer = bus.consumer(config("term")).await.expect("consumer");
    publish_samples(&bus, 0..2).await;

    let mut batch = consumer
        .fetch(2, Duration::from_secs(5))
        .await
        .expect("fetch");
    let good = batch.pop().expect("second delivery");
    let poison = batch.pop().expect("first delivery");
    poison.term("not an image").await.expect("term");
    good.ack().await.expect("ack");
    assert_quiet(&consumer, Duration::from_millis(1200)).await;

    let letters = dead_letters(&bus, "term", 1).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "not an image");
    assert_eq!(letters[0].deliveries, 1);
    assert_eq!(letters[0].payload, sample(0).to_bytes());
}

pub async fn setup_is_idempotent_and_concurrent(harness: &impl Harness) {
    let (a, b) = tokio::join!(harness.connect(), harness.connect());
    let (ca, cb) = tokio::join!(a.consumer(config("setup")), b.consumer(config("setup")));
    let (ca, cb) = (ca.expect("first consumer"), cb.expect("second consumer"));
    let again = harness.connect().await;
    let cc = again
        .consumer(config("setup"))
        .await
        .expect("third consumer");

    publish_samples(&a, 0..3).await;
    let mut seen = Vec::new();
    for consumer in [&ca, &cb, &cc] {
        let batch = consumer
            .fetch(1, Duration::from_secs(5))
            .await
            .expect("fetch");
        seen.extend(ids(&batch));
        ack_all(batch).await;
    }
    seen.sort();
    assert_eq!(seen, ["sample-0000", "sample-0001", "sample-0002"]);
}
