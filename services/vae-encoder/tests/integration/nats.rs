//! Two vae-encoder workers on one durable JetStream consumer split the samples:
//! every sample is encoded exactly once.

use crate::common;

use std::time::Duration;

use common::*;
use ssdit_core::config::BusKind;
use ssdit_proto::v1::LatentEncoded;
use ssdit_server::ServiceContext;
use ssdit_store::layout;
use ssdit_testkit::NatsServer;
use ssdit_testkit::{assert_quiet, collect, observer, publish, sample_id};
use ssdit_vae::PREVIEW_FINGERPRINT;

const SAMPLES: u32 = 12;

#[tokio::test]
async fn two_workers_share_one_durable_consumer() {
    let nats = NatsServer::start().await;
    let store_dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.bus.kind = BusKind::Nats;
    config.bus.url = nats.url();
    config.bus.ack_wait = std::time::Duration::from_secs(30);
    config.store.url = store_dir.path().display().to_string();
    config.encode.batch_size = 2;

    // Two processes' worth of connections: each its own bus client and store handle.
    let first = ServiceContext::connect(config.clone(), "vae-encoder-a")
        .await
        .unwrap();
    let second = ServiceContext::connect(config.clone(), "vae-encoder-b")
        .await
        .unwrap();
    let mut events = Vec::new();
    for n in 0..SAMPLES {
        events.push(
            png_sample(
                &first.store,
                &sample_id(100 + n),
                64,
                32 + 32 * (n % 2),
                n as u8,
            )
            .await,
        );
    }
    let encoded = observer::<LatentEncoded>(first.bus.as_ref(), "test-encoded").await;
    let a = start(first.clone()).await;
    let b = start(second).await;
    publish(first.bus.as_ref(), &events).await;

    let got = collect::<LatentEncoded>(&encoded, SAMPLES as usize, Duration::from_secs(60)).await;
    assert_quiet(&encoded, Duration::from_secs(1)).await;
    let mut ids: Vec<&str> = got.iter().map(|e| e.sample_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let announced_twice = got.len() - ids.len();

    let (sa, sb) = (a.service.worker().stats(), b.service.worker().stats());
    let cached = first
        .store
        .list(&layout::latents_prefix(PREVIEW_FINGERPRINT).unwrap())
        .await
        .unwrap();
    let written = sa.written + sb.written;
    let missing = events
        .iter()
        .filter(|event| {
            let key = layout::latent(
                &event.sample_id,
                PREVIEW_FINGERPRINT,
                event.bucket_width,
                event.bucket_height,
            )
            .unwrap();
            !cached.iter().any(|object| object.key == key)
        })
        .count();
    let duplicates = written.saturating_sub(cached.len() as u64) + announced_twice as u64;
    eprintln!(
        "published {SAMPLES}, delivered {} (a {}, b {}), redelivered {}, stored {}, \
         duplicates {duplicates}, missing {missing}",
        sa.delivered + sb.delivered,
        sa.delivered,
        sb.delivered,
        sa.redelivered + sb.redelivered,
        cached.len(),
    );
    assert!(
        sa.written > 0 && sb.written > 0,
        "both workers took part: {sa:?} {sb:?}"
    );
    assert_eq!(written, u64::from(SAMPLES), "no sample encoded twice");
    assert_eq!((duplicates, missing), (0, 0));
    assert_eq!(cached.len(), SAMPLES as usize, "one latent per sample");
    assert_eq!(sa.delivered + sb.delivered, u64::from(SAMPLES));
    assert_eq!(sa.skipped + sb.skipped + sa.retried + sb.retried, 0);
    a.stop().await;
    b.stop().await;
}
