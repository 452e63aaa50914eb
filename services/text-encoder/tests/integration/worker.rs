//! The bus worker: captions of published samples become embeddings at their
//! cache keys, once; identical captions share one, an edited caption gets a
//! new one that the trainer's manifest then reads; bad captions are rejected
//! and the rest goes on.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ssdit_bus::ConsumerConfig;
use ssdit_dataset::{CaptionHash, Dataset, Encodings, TextEncoding};
use ssdit_proto::Event;
use ssdit_proto::v1::{DeadLetter, EncodeTextRequest, SampleRejected, TextEncoded};
use ssdit_store::{Key, layout};
use ssdit_testkit::{
    assert_all_acked, assert_quiet, collect, memory_context, observer, publish, sample_id,
};
use ssdit_text_encoder::{DURABLE, EMBEDDING_TENSOR, MASK_TENSOR, TextGrpc};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn captions_become_embeddings_once_at_their_cache_keys() {
    let ctx = memory_context(config()).await;
    let captions = ["a red rose", "two white lilies in a vase", "iris"];
    let mut events = Vec::new();
    for (n, caption) in captions.iter().enumerate() {
        events.push(captioned_sample(&ctx.store, &sample_id(n as u32 + 1), Some(caption)).await);
    }
    let uncaptioned = captioned_sample(&ctx.store, &sample_id(9), None).await;
    let encoded = observer::<TextEncoded>(ctx.bus.as_ref(), "test-encoded").await;
    let running = start(ctx.clone()).await;
    let mut all = events.clone();
    all.push(uncaptioned);
    publish(ctx.bus.as_ref(), &all).await;

    let mut got = collect::<TextEncoded>(&encoded, 3, WAIT).await;
    got.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
    let encoding = running.service.worker().stage().encoding().clone();
    let grpc = TextGrpc::new(running.service.model().clone(), &ctx.config);
    let mut files = Vec::new();
    for ((event, sample), caption) in got.iter().zip(&events).zip(captions) {
        let key = encoding.embedding_key(&CaptionHash::of(caption)).unwrap();
        assert_eq!(event.sample_id, sample.sample_id);
        assert_eq!(event.embedding_key, key.as_str());
        assert_eq!(event.encoder_fingerprint, encoding.encoder);
        assert_eq!(event.tokenizer_fingerprint, encoding.tokenizer);
        assert_eq!(event.max_length, 16);
        let file = ctx.store.get_tensors(&key).await.unwrap();
        let dim = running.service.model().info().dim;
        let embedding = file.require(EMBEDDING_TENSOR, &[16, dim]).unwrap();
        let mask = file.require(MASK_TENSOR, &[16]).unwrap();
        assert_eq!(file.require_metadata("caption").unwrap(), caption);

        // The stored embedding is what `Encode` answers for the caption.
        let reply = grpc
            .encode_request(EncodeTextRequest {
                prompts: vec![caption.to_string()],
                max_length: None,
            })
            .await
            .unwrap();
        let (values, _) = reply.embeddings.unwrap().to_f32().unwrap();
        let (mask_bytes, _) = reply.mask.unwrap().to_u8().unwrap();
        let worst = values
            .iter()
            .zip(embedding.data())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{caption}: stored and served differ by {worst}"
        );
        let stored_mask: Vec<u8> = mask.data().iter().map(|&m| m as u8).collect();
        assert_eq!(stored_mask, mask_bytes.to_vec(), "{caption}");
        files.push((key.clone(), ctx.store.get(&key).await.unwrap()));
    }
    let stats = running.service.worker().stats();
    assert_eq!(
        (stats.written, stats.ignored, stats.skipped, stats.rejected),
        (3, 1, 0, 0)
    );

    // The same messages again: nothing is computed twice, events come again.
    publish(ctx.bus.as_ref(), &events).await;
    collect::<TextEncoded>(&encoded, 3, WAIT).await;
    let stats = running.service.worker().stats();
    assert_eq!((stats.written, stats.skipped), (3, 3));
    assert_eq!(stats.delivered, 7);
    for (key, bytes) in &files {
        assert_eq!(&ctx.store.get(key).await.unwrap(), bytes, "{key} unchanged");
    }
    running.stop().await;

    // Every message was acked: nothing comes back after the ack wait.
    assert_all_acked(
        &ctx,
        ssdit_text_encoder::EmbeddingWorker::consumer_config(&ctx.config),
    )
    .await;
    assert_quiet(&encoded, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn bad_captions_are_rejected_and_malformed_events_dead_lettered() {
    let ctx = memory_context(config()).await;
    let good = captioned_sample(&ctx.store, &sample_id(1), Some("a rose")).await;
    let not_utf8 = captioned_sample(&ctx.store, &sample_id(2), Some("placeholder")).await;
    ctx.store
        .put(
            &Key::parse(&not_utf8.caption_key).unwrap(),
            Bytes::from_static(b"a \xff\xfe rose"),
        )
        .await
        .unwrap();
    let mut missing = captioned_sample(&ctx.store, &sample_id(3), Some("a tulip")).await;
    missing.caption_key = layout::caption(DATASET, &sample_id(99))
        .unwrap()
        .to_string();
    let mut escaping = captioned_sample(&ctx.store, &sample_id(4), Some("a daisy")).await;
    escaping.sample_id = "../../etc".into();

    let encoded = observer::<TextEncoded>(ctx.bus.as_ref(), "test-encoded").await;
    let rejected = observer::<SampleRejected>(ctx.bus.as_ref(), "test-rejected").await;
    let letters = ctx
        .bus
        .consumer(ConsumerConfig::new(
            "test-letters",
            format!("{}.{DURABLE}", DeadLetter::NAME),
        ))
        .await
        .unwrap();
    let running = start(ctx.clone()).await;
    publish(
        ctx.bus.as_ref(),
        &[not_utf8.clone(), missing.clone(), escaping, good.clone()],
    )
    .await;

    let done = collect::<TextEncoded>(&encoded, 1, WAIT).await;
    assert_eq!(done[0].sample_id, good.sample_id);
    let mut refused = collect::<SampleRejected>(&rejected, 2, WAIT).await;
    refused.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
    assert_eq!(
        refused[0].sample_id.as_deref(),
        Some(not_utf8.sample_id.as_str())
    );
    assert!(refused[0].reason.contains("not UTF-8"), "{refused:?}");
    assert_eq!(
        refused[1].sample_id.as_deref(),
        Some(missing.sample_id.as_str())
    );
    assert!(refused[1].reason.contains("missing"), "{refused:?}");
    assert!(refused.iter().all(|r| r.stage == "text"));
    let records = Dataset::new(ctx.store.clone(), DATASET)
        .unwrap()
        .rejects()
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    let dead = collect::<DeadLetter>(&letters, 1, WAIT).await;
    assert!(dead[0].reason.contains("sample id"), "{:?}", dead[0].reason);

    let stats = running.service.worker().stats();
    assert_eq!((stats.written, stats.rejected, stats.retried), (1, 2, 0));
    running.stop().await;
}

/// Encodings with `text`, and a latent written for each sample (the trainer's
/// manifest needs both).
async fn with_latents(
    ctx: &ssdit_server::ServiceContext,
    text: TextEncoding,
    samples: &[&str],
) -> Encodings {
    let encodings = Encodings {
        vae: "test-vae".into(),
        text,
    };
    let bucket = ssdit_dataset::Bucket {
        width: 64,
        height: 64,
    };
    for id in samples {
        let key = encodings.latent_key(id, bucket).unwrap();
        ctx.store
            .put(&key, Bytes::from_static(b"latent"))
            .await
            .unwrap();
    }
    encodings
}

#[tokio::test]
async fn an_edited_caption_is_encoded_again_and_identical_captions_share_one() {
    let ctx = memory_context(config()).await;
    let ids: Vec<String> = (1..=3).map(sample_id).collect();
    let mut events = Vec::new();
    for (id, caption) in ids.iter().zip(["a red rose", "a red rose", "iris"]) {
        events.push(captioned_sample(&ctx.store, id, Some(caption)).await);
    }
    let encoded = observer::<TextEncoded>(ctx.bus.as_ref(), "test-encoded").await;
    publish(ctx.bus.as_ref(), &events).await;
    let running = start(ctx.clone()).await;
    let mut got = collect::<TextEncoded>(&encoded, 3, WAIT).await;
    got.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
    let encoding = running.service.worker().stage().encoding().clone();
    let rose = encoding
        .embedding_key(&CaptionHash::of("a red rose"))
        .unwrap();
    assert_eq!(got[0].embedding_key, rose.as_str());
    assert_eq!(
        got[1].embedding_key,
        rose.as_str(),
        "same caption, same embedding"
    );
    assert_ne!(got[2].embedding_key, rose.as_str());
    let stored = ctx.store.list(&encoding.prefix().unwrap()).await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(running.service.worker().stats().written, 2);

    let dataset = Dataset::new(ctx.store.clone(), DATASET).unwrap();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let encodings = with_latents(&ctx, encoding.clone(), &id_refs).await;
    assert_eq!(dataset.status(&encodings).await.unwrap().ready, 3);

    // `ssdit captions edit --apply` rewrites the caption: the sample is no
    // longer encoded, and the old embedding is not offered to the trainer.
    let edited = "a red rose in the rain";
    ctx.store
        .put(
            &Key::parse(&events[0].caption_key).unwrap(),
            Bytes::from_static(edited.as_bytes()),
        )
        .await
        .unwrap();
    let status = dataset.status(&encodings).await.unwrap();
    assert_eq!((status.embeddings, status.ready), (2, 2), "{status:?}");
    let manifest = dataset.training_manifest(&encodings).await.unwrap();
    assert_eq!(manifest.missing.len(), 1);
    assert_eq!(manifest.missing[0].id, ids[0]);

    // It announces the sample again: the text encoder encodes the new caption.
    publish(ctx.bus.as_ref(), &events[..1]).await;
    let again = collect::<TextEncoded>(&encoded, 1, WAIT).await;
    let rain = encoding.embedding_key(&CaptionHash::of(edited)).unwrap();
    assert_eq!(again[0].embedding_key, rain.as_str());
    assert_eq!(running.service.worker().stats().written, 3);
    assert_eq!(dataset.status(&encodings).await.unwrap().embeddings, 3);
    let manifest = dataset.training_manifest(&encodings).await.unwrap();
    let keys: Vec<(&str, &str)> = manifest
        .ready
        .iter()
        .map(|s| (s.id.as_str(), s.embedding_key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (ids[0].as_str(), rain.as_str()),
            (ids[1].as_str(), rose.as_str()),
            (ids[2].as_str(), got[2].embedding_key.as_str()),
        ]
    );
    running.stop().await;
}
