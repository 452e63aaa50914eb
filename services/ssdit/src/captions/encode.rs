//! Getting the captions `ssdit captions edit --apply` rewrote encoded.
//!
//! Caption embeddings are cached by the caption's text, so an edited caption
//! has none until a text encoder encodes it:
//!
//! - with `bus.kind = "nats"` each rewritten sample is announced again
//!   (`SampleIngested`) on the deployment's bus, where the running text
//!   encoders pick it up (the VAE encoders find their latents cached);
//! - with the embedded bus (no broker: a local store, `ssdit run`) no
//!   encoder could hear that, so the command runs the text encoder's own
//!   worker itself — `models.text_encoder`, as `ssdit serve text-encoder`
//!   with this configuration would — on a private in-process bus, announces
//!   the samples to it and waits until each one's new caption is encoded or
//!   refused. The dataset is ready to train on when the command returns.
//!
//! The old caption's embedding is left in the cache: embeddings are keyed by
//! caption text, so other samples with the same caption (or another dataset
//! in the store) may still use it; an unused one costs only its space.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use ssdit_bus::{BusExt, Consumer, ConsumerConfig, Delivery, dead_letter_subject};
use ssdit_core::Config;
use ssdit_core::config::BusKind;
use ssdit_dataset::Dataset;
use ssdit_proto::Event;
use ssdit_proto::v1::{DeadLetter, SampleIngested, SampleRejected, TextEncoded};
use ssdit_server::ServiceContext;
use ssdit_text_encoder::TextEncoderService;
use tokio_util::sync::CancellationToken;

/// The durable consumer on the private bus that follows the encoder's answers.
const FOLLOWER: &str = "ssdit-captions";
/// Answers fetched at once.
const FETCH_BATCH: usize = 64;
/// How long one fetch of answers waits.
const FETCH_WAIT: Duration = Duration::from_millis(250);

/// Has the new captions of `sample_ids` (rewritten in `dataset`) encoded:
/// announced on the NATS bus, or encoded by this process with the embedded
/// bus. Fails, saying the captions are written, when that cannot be done.
pub async fn encode_edited(
    config: &Config,
    dataset: &Dataset,
    sample_ids: &[String],
) -> anyhow::Result<()> {
    if sample_ids.is_empty() {
        return Ok(());
    }
    let written = format!("the {} edited captions are written, but", sample_ids.len());
    let ctx = ServiceContext::connect(config.clone(), "ssdit-captions")
        .await
        .with_context(|| format!("{written} the event bus {} is unreachable", config.bus.url))?;
    match config.bus.kind {
        BusKind::Nats => {
            announce(&ctx, dataset, sample_ids)
                .await
                .with_context(|| format!("{written} announcing them failed"))?;
            println!(
                "announced: {} samples, for the text encoders to encode their new captions",
                sample_ids.len()
            );
        }
        BusKind::Embedded => {
            let refused = encode_here(&ctx, dataset, sample_ids)
                .await
                .with_context(|| format!("{written} encoding them failed"))?;
            let encoded = sample_ids.len() - refused.len();
            println!(
                "encoded: {encoded} new captions, with the text encoder {} (embedded bus: encoded here)",
                config.models.text_encoder
            );
            for (sample, reason) in &refused {
                println!("not encoded: sample {sample}: {reason}");
            }
            if !refused.is_empty() {
                anyhow::bail!("{written} {} could not be encoded", refused.len());
            }
        }
    }
    Ok(())
}

/// Publishes `SampleIngested` for each of `sample_ids` on `ctx`'s bus.
async fn announce(
    ctx: &ServiceContext,
    dataset: &Dataset,
    sample_ids: &[String],
) -> anyhow::Result<()> {
    for id in sample_ids {
        let event = dataset.announcement(&dataset.sample(id).await?);
        ctx.bus
            .publish_event(&event)
            .await
            .with_context(|| format!("announcing sample {id}"))?;
    }
    Ok(())
}

/// Runs the configured text encoder's worker on `ctx`'s (in-process) bus,
/// announces `sample_ids` to it and waits for its answers; returns the
/// samples it refused, with the reasons.
async fn encode_here(
    ctx: &ServiceContext,
    dataset: &Dataset,
    sample_ids: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let encoder = TextEncoderService::load(ctx.clone())
        .await
        .with_context(|| {
            format!(
                "loading the text encoder {}",
                ctx.config.models.text_encoder
            )
        })?;
    let answers = ctx.bus.consumer(ConsumerConfig::new(FOLLOWER, ">")).await?;
    let stop = CancellationToken::new();
    let worker = encoder.worker().run(stop.clone());
    tokio::pin!(worker);
    let refused = tokio::select! {
        followed = async {
            announce(ctx, dataset, sample_ids).await?;
            follow(&answers, sample_ids).await
        } => followed?,
        stopped = &mut worker => {
            stopped?;
            anyhow::bail!("the text encoder stopped before answering");
        }
    };
    stop.cancel();
    worker.await?;
    Ok(refused)
}

/// How the text encoder answered one sample.
enum Answer {
    Encoded,
    Refused(String),
}

/// Reads the bus until the text encoder has answered every one of
/// `sample_ids`; returns the refused ones with the reasons.
async fn follow(
    answers: &Consumer,
    sample_ids: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut waiting: BTreeSet<&str> = sample_ids.iter().map(String::as_str).collect();
    let mut refused = BTreeMap::new();
    while !waiting.is_empty() {
        for delivery in answers.fetch(FETCH_BATCH, FETCH_WAIT).await? {
            let answered = answer_in(&delivery)?;
            delivery.ack().await?;
            let Some((sample, answer)) = answered else {
                continue;
            };
            if waiting.remove(sample.as_str())
                && let Answer::Refused(reason) = answer
            {
                refused.insert(sample, reason);
            }
        }
    }
    Ok(refused)
}

/// The sample and the text encoder's answer about it, when `delivery` is
/// one: its `TextEncoded`, its text-stage `SampleRejected`, or the dead
/// letter of its announcement.
fn answer_in(delivery: &Delivery) -> anyhow::Result<Option<(String, Answer)>> {
    let subject = delivery.subject();
    if subject == TextEncoded::NAME {
        let encoded: TextEncoded = delivery.decode()?;
        return Ok(Some((encoded.sample_id, Answer::Encoded)));
    }
    if subject == SampleRejected::NAME {
        let rejected: SampleRejected = delivery.decode()?;
        return Ok(rejected
            .sample_id
            .filter(|_| rejected.stage == ssdit_text_encoder::STAGE)
            .map(|sample| (sample, Answer::Refused(rejected.reason))));
    }
    if subject == dead_letter_subject(ssdit_text_encoder::DURABLE) {
        let letter: DeadLetter = delivery.decode()?;
        let announced = SampleIngested::from_bytes(&letter.payload)?;
        return Ok(Some((announced.sample_id, Answer::Refused(letter.reason))));
    }
    Ok(None)
}
