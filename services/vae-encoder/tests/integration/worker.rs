//! The bus worker: published samples become latents at their cache keys, once.

use crate::common;

use std::time::Duration;

use common::*;
use ssdit_bus::ConsumerConfig;
use ssdit_dataset::{Bucket, Dataset};
use ssdit_proto::Event;
use ssdit_proto::v1::{DeadLetter, LatentEncoded, SampleIngested, SampleRejected};
use ssdit_store::layout;
use ssdit_testkit::{
    assert_all_acked, assert_quiet, collect, memory_context, observer, publish, sample_id,
};
use ssdit_vae::PREVIEW_FINGERPRINT;
use ssdit_vae_encoder::{DURABLE, LATENT_TENSOR};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn samples_become_latents_once_and_redelivery_recomputes_nothing() {
    let ctx = memory_context(config()).await;
    let events = vec![
        png_sample(&ctx.store, &sample_id(1), 64, 64, 1).await,
        png_sample(&ctx.store, &sample_id(2), 64, 32, 2).await,
        png_sample(&ctx.store, &sample_id(3), 64, 64, 3).await,
    ];
    let encoded = observer::<LatentEncoded>(ctx.bus.as_ref(), "test-encoded").await;
    let running = start(ctx.clone()).await;
    publish(ctx.bus.as_ref(), &events).await;

    let mut got = collect::<LatentEncoded>(&encoded, 3, WAIT).await;
    got.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
    let mut files = Vec::new();
    for (event, sample) in got.iter().zip(&events) {
        let key = layout::latent(
            &sample.sample_id,
            PREVIEW_FINGERPRINT,
            sample.bucket_width,
            sample.bucket_height,
        )
        .unwrap();
        assert_eq!(event.latent_key, key.as_str());
        assert_eq!(event.vae_fingerprint, PREVIEW_FINGERPRINT);
        assert_eq!(event.dataset, DATASET);
        let file = ctx.store.get_tensors(&key).await.unwrap();
        let shape = [
            16,
            sample.bucket_height as usize / 8,
            sample.bucket_width as usize / 8,
        ];
        let latent = file.require(LATENT_TENSOR, &shape).unwrap();
        assert!(latent.data().iter().all(|v| v.is_finite()));
        assert!(latent.data().iter().any(|&v| v != 0.0));
        assert_eq!(
            file.require_metadata("sample_id").unwrap(),
            sample.sample_id
        );
        assert_eq!(
            file.require_metadata("vae_fingerprint").unwrap(),
            PREVIEW_FINGERPRINT
        );
        assert_eq!(
            file.require_metadata("bucket").unwrap(),
            format!("{}x{}", sample.bucket_width, sample.bucket_height)
        );
        files.push((key.clone(), ctx.store.get(&key).await.unwrap()));
    }
    let stats = running.service.worker().stats();
    assert_eq!((stats.written, stats.skipped, stats.rejected), (3, 0, 0));

    // The same messages again (a re-ingest, or a redelivery after a lost ack).
    publish(ctx.bus.as_ref(), &events).await;
    collect::<LatentEncoded>(&encoded, 3, WAIT).await;
    let stats = running.service.worker().stats();
    assert_eq!(
        (stats.written, stats.skipped),
        (3, 3),
        "nothing is computed twice"
    );
    for (key, bytes) in &files {
        assert_eq!(&ctx.store.get(key).await.unwrap(), bytes, "{key} unchanged");
    }
    let cached = ctx
        .store
        .list(&layout::latents_prefix(PREVIEW_FINGERPRINT).unwrap())
        .await
        .unwrap();
    assert_eq!(cached.len(), 3, "one latent per sample");
    running.stop().await;

    // Every message was acked: nothing comes back after the ack wait.
    assert_all_acked(
        &ctx,
        ssdit_vae_encoder::LatentWorker::consumer_config(&ctx.config),
    )
    .await;
    assert_quiet(&encoded, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn bad_images_are_rejected_acked_and_the_rest_goes_on() {
    let ctx = memory_context(config()).await;
    let good = png_sample(&ctx.store, &sample_id(10), 64, 64, 4).await;
    let corrupt = store_sample(
        &ctx.store,
        &sample_id(11),
        b"\x89PNG\r\n\x1a\n but not really".to_vec(),
        Bucket {
            width: 64,
            height: 64,
        },
    )
    .await;
    let mut missing = png_sample(&ctx.store, &sample_id(12), 64, 64, 5).await;
    missing.image_key = layout::image(DATASET, &sample_id(99), "png")
        .unwrap()
        .to_string();
    let mut wrong_size = png_sample(&ctx.store, &sample_id(13), 32, 32, 6).await;
    wrong_size.bucket_width = 64;
    wrong_size.bucket_height = 64;

    let encoded = observer::<LatentEncoded>(ctx.bus.as_ref(), "test-encoded").await;
    let rejected = observer::<SampleRejected>(ctx.bus.as_ref(), "test-rejected").await;
    let running = start(ctx.clone()).await;
    publish(
        ctx.bus.as_ref(),
        &[
            corrupt.clone(),
            missing.clone(),
            good.clone(),
            wrong_size.clone(),
        ],
    )
    .await;

    let done = collect::<LatentEncoded>(&encoded, 1, WAIT).await;
    assert_eq!(done[0].sample_id, good.sample_id);
    let mut refused = collect::<SampleRejected>(&rejected, 3, WAIT).await;
    refused.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
    let reasons: Vec<(&str, &str)> = refused
        .iter()
        .map(|r| (r.sample_id.as_deref().unwrap(), r.reason.as_str()))
        .collect();
    assert!(reasons[0].1.starts_with("PNG "), "{reasons:?}");
    assert!(reasons[1].1.contains("missing"), "{reasons:?}");
    assert!(
        reasons[2].1.contains("32×32") && reasons[2].1.contains("64x64"),
        "{reasons:?}"
    );
    assert!(refused.iter().all(|r| r.stage == "vae"));

    let records = Dataset::new(ctx.store.clone(), DATASET)
        .unwrap()
        .rejects()
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.stage == "vae" && r.sample_id.is_some())
    );
    let stats = running.service.worker().stats();
    assert_eq!((stats.written, stats.rejected, stats.retried), (1, 3, 0));
    running.stop().await;

    assert_all_acked(
        &ctx,
        ssdit_vae_encoder::LatentWorker::consumer_config(&ctx.config),
    )
    .await;
}

#[tokio::test]
async fn malformed_events_are_dead_lettered() {
    let ctx = memory_context(config()).await;
    let letters = ctx
        .bus
        .consumer(ConsumerConfig::new(
            "test-letters",
            format!("{}.{DURABLE}", DeadLetter::NAME),
        ))
        .await
        .unwrap();
    let running = start(ctx.clone()).await;
    ctx.bus
        .publish(
            SampleIngested::NAME,
            bytes::Bytes::from_static(&[0xff, 0xff, 0xff]),
        )
        .await
        .unwrap();
    let mut escaping = png_sample(&ctx.store, &sample_id(20), 64, 64, 7).await;
    escaping.sample_id = "../../etc".into();
    publish(ctx.bus.as_ref(), &[escaping]).await;

    let dead = collect::<DeadLetter>(&letters, 2, WAIT).await;
    assert!(
        dead[0].reason.contains("sample_ingested"),
        "{:?}",
        dead[0].reason
    );
    assert!(dead[1].reason.contains("sample id"), "{:?}", dead[1].reason);
    assert_eq!(running.service.worker().stats().written, 0);
    running.stop().await;
}

#[tokio::test]
async fn posterior_samples_are_seeded_by_sample_id() {
    let mut config = config();
    config.models.vae = "tiny".into();
    config.encode.sample_latents = true;
    let latent_of = |config: ssdit_core::Config, seed: u8| async move {
        let ctx = memory_context(config).await;
        let event = png_sample(&ctx.store, &sample_id(30), 64, 64, seed).await;
        let encoded = observer::<LatentEncoded>(ctx.bus.as_ref(), "test-encoded").await;
        let running = start(ctx.clone()).await;
        publish(ctx.bus.as_ref(), &[event]).await;
        let done = collect::<LatentEncoded>(&encoded, 1, WAIT).await;
        let key = ssdit_store::Key::parse(&done[0].latent_key).unwrap();
        let file = ctx.store.get_tensors(&key).await.unwrap();
        let values = file
            .require(LATENT_TENSOR, &[16, 8, 8])
            .unwrap()
            .data()
            .to_vec();
        running.stop().await;
        values
    };
    let first = latent_of(config.clone(), 1).await;
    let again = latent_of(config.clone(), 1).await;
    assert_eq!(first, again, "another process writes the identical latent");
    let mut mean_config = config.clone();
    mean_config.encode.sample_latents = false;
    let mean = latent_of(mean_config, 1).await;
    assert_ne!(first, mean, "a posterior sample is not the mean");
}
