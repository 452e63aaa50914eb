//! The behaviour suite on NATS JetStream, each test against its own nats-server.

use crate::behaviour_tests;
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::Harness;
use ssdit_bus::{Bus, BusExt, Consumer, ConsumerConfig, NatsBus, NatsConfig, StreamConfig};
use ssdit_proto::Event;
use ssdit_proto::v1::SampleIngested;
use ssdit_testkit::NatsServer;

struct Nats {
    server: NatsServer,
}

impl Nats {
    async fn start() -> Self {
        Self {
            server: NatsServer::start().await,
        }
    }

    fn config(&self) -> NatsConfig {
        NatsConfig {
            url: self.server.url(),
            stream: StreamConfig {
                name: "SSDIT_TEST".into(),
                prefix: "test.ssdit".into(),
                ..StreamConfig::default()
            },
            client_name: "ssdit-bus-test".into(),
            request_timeout: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(10),
            ..NatsConfig::default()
        }
    }
}

#[async_trait]
impl Harness for Nats {
    async fn connect(&self) -> Arc<dyn Bus> {
        Arc::new(
            NatsBus::connect(self.config())
                .await
                .expect("connect to nats"),
        )
    }
}

behaviour_tests!(Nats::start().await);

/// Publishes one `SampleIngested` per id.
async fn publish_samples(bus: &dyn Bus, ids: &[&str]) {
    for id in ids {
        bus.publish_event(&SampleIngested {
            sample_id: (*id).to_owned(),
            ..SampleIngested::default()
        })
        .await
        .expect("publish");
    }
}

/// Fetches and acks until `n` samples arrived or `within` passed, trying
/// again after a failed fetch (the client may be reconnecting); their ids,
/// sorted, and how many fetches failed.
async fn receive_ids(consumer: &Consumer, n: usize, within: Duration) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut failed = 0;
    let deadline = std::time::Instant::now() + within;
    while ids.len() < n && std::time::Instant::now() < deadline {
        match consumer.fetch(10, Duration::from_millis(500)).await {
            Ok(batch) => {
                for delivery in batch {
                    ids.push(delivery.decode::<SampleIngested>().unwrap().sample_id);
                    delivery.ack().await.expect("ack");
                }
            }
            Err(_) => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    ids.sort();
    (ids, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_stream_config_is_applied_on_connect() {
    let nats = Nats::start().await;
    NatsBus::connect(nats.config())
        .await
        .expect("first connect");
    let mut changed = nats.config();
    changed.stream.max_messages = 1234;
    NatsBus::connect(changed)
        .await
        .expect("connect with a changed stream config");
}

/// Services starting together all set up the same stream; the server may
/// answer the later ones that their subjects overlap "another" stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_setting_up_the_stream_at_once_all_connect() {
    let nats = Nats::start().await;
    for round in 0..5 {
        let mut config = nats.config();
        config.stream.name = format!("SSDIT_ROUND_{round}");
        config.stream.prefix = format!("round{round}.ssdit");
        let connects = (0..8).map(|_| NatsBus::connect(config.clone()));
        for connected in futures::future::join_all(connects).await {
            connected.expect("every concurrent connect sets up or joins the stream");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_stream_holding_our_subjects_is_an_error() {
    let nats = Nats::start().await;
    let mut other = nats.config();
    other.stream.name = "SOMEONE_ELSE".into();
    NatsBus::connect(other).await.expect("the other stream");
    let Err(error) = NatsBus::connect(nats.config()).await else {
        panic!("connected although another stream holds our subjects");
    };
    assert!(error.to_string().contains("overlap"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_rejected_before_reaching_the_server() {
    let nats = Nats::start().await;
    let bus = nats.connect().await;
    assert!(bus.publish("a.>", bytes::Bytes::new()).await.is_err());
    assert!(bus.consumer(ConsumerConfig::new("a.b", "x")).await.is_err());
    let mut bad = nats.config();
    bad.stream.name = "has space".into();
    assert!(NatsBus::connect(bad).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_and_the_consumer_resumes_after_a_server_restart() {
    let mut nats = Nats::start().await;
    let bus = nats.connect().await;
    let consumer = bus
        .consumer(ConsumerConfig::new("resume", SampleIngested::NAME))
        .await
        .expect("consumer");
    publish_samples(bus.as_ref(), &["s0", "s1", "s2"]).await;
    let first = consumer
        .fetch(1, Duration::from_secs(5))
        .await
        .expect("fetch");
    assert_eq!(first.len(), 1);
    first.into_iter().next().unwrap().ack().await.expect("ack");

    nats.server.restart().await;

    let (rest, _) = receive_ids(&consumer, 2, Duration::from_secs(20)).await;
    assert_eq!(rest, ["s1", "s2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_waiting_while_the_server_restarts_returns_and_the_consumer_goes_on() {
    let mut nats = Nats::start().await;
    let bus = nats.connect().await;
    let consumer = bus
        .consumer(ConsumerConfig::new("waiting", SampleIngested::NAME))
        .await
        .expect("consumer");
    let waiting = consumer.fetch(1, Duration::from_secs(2));
    let restart = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        nats.server.restart().await;
    };
    let (fetched, ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(waiting, restart)
    })
    .await
    .expect("a fetch open across a server restart returns");
    // The request ends (empty, or an error while reconnecting): nothing was published.
    assert!(fetched.map_or(true, |batch| batch.is_empty()));

    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.is_empty() && std::time::Instant::now() < deadline {
        let published = bus
            .publish_event(&SampleIngested {
                sample_id: "after".into(),
                ..SampleIngested::default()
            })
            .await;
        if published.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if let Ok(batch) = consumer.fetch(1, Duration::from_secs(1)).await {
            got.extend(batch);
        }
    }
    let delivery = got
        .pop()
        .expect("a message published after the restart arrives");
    assert_eq!(
        delivery.decode::<SampleIngested>().unwrap().sample_id,
        "after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_the_server_lost_is_recreated_and_gets_every_message() {
    let nats = Nats::start().await;
    let bus = nats.connect().await;
    let consumer = bus
        .consumer(ConsumerConfig::new("lost", SampleIngested::NAME))
        .await
        .expect("consumer");
    publish_samples(bus.as_ref(), &["s0", "s1"]).await;
    // What a broker that crashed before writing the consumer to disk comes back with.
    let client = async_nats::connect(nats.server.url())
        .await
        .expect("client");
    async_nats::jetstream::new(client)
        .delete_consumer_from_stream("lost", "SSDIT_TEST")
        .await
        .expect("delete the consumer");

    let (got, failed_fetches) = receive_ids(&consumer, 2, Duration::from_secs(20)).await;
    assert_eq!(got, ["s0", "s1"], "after {failed_fetches} failed fetches");
}
