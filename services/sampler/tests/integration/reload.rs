//! Hot reload: a `CheckpointSaved` event of the followed run swaps the served
//! DiT between batches; a checkpoint that fails its commit check is refused
//! and the previous one stays served.

use crate::common;

use std::time::Duration;

use common::*;
use ssdit_bus::BusExt;
use ssdit_proto::v1::{CheckpointSaved, GenerateRequest};
use ssdit_sampler::CheckpointId;
use ssdit_testkit::memory_context;
use tonic::Code;

const RUN: &str = "flowers-1";

/// Waits until the service serves `wanted`, or fails after 20 s.
async fn until_served(running: &Running, wanted: &CheckpointId) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while &running.service.served() != wanted {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still serving {} instead of {wanted}",
            running.service.served()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn checkpoint_saved_events_hot_reload_the_served_model() {
    let mut config = config();
    config.sampler.run = Some(RUN.into());
    let ctx = memory_context(config).await;
    let running = start(ctx.clone()).await;
    let info = running.service.info().clone();
    assert!(
        matches!(running.service.served(), CheckpointId::Random { .. }),
        "a run without checkpoints serves random weights until its first"
    );
    let mut client = connect(&running).await;
    let request = GenerateRequest {
        seed: Some(3),
        ..prompt("a tulip")
    };
    let before = generate(&mut client, request.clone()).await.unwrap();

    // The trainer saves step 10: the sampler follows.
    let weights = tiny_weights(&info, 10);
    let key = write_checkpoint(&ctx.store, RUN, 10, weights.clone(), &weights).await;
    ctx.bus
        .publish_event(&CheckpointSaved {
            run_id: RUN.into(),
            step: 10,
            key: key.clone(),
        })
        .await
        .unwrap();
    let step10 = CheckpointId::of_run(RUN, 10).unwrap();
    until_served(&running, &step10).await;
    let after = generate(&mut client, request.clone()).await.unwrap();
    assert_eq!(
        after.image.metadata.as_ref().unwrap().checkpoint,
        step10.to_string()
    );
    assert_ne!(
        after.image.png, before.image.png,
        "other weights, other image"
    );

    // Another run's checkpoint is ignored; a corrupt one of this run is refused.
    let other = tiny_weights(&info, 11);
    let other_key = write_checkpoint(&ctx.store, "other-run", 20, other.clone(), &other).await;
    let corrupt = tiny_weights(&info, 12);
    let corrupt_key = write_checkpoint(&ctx.store, RUN, 30, corrupt, b"not these bytes").await;
    for (run, step, key) in [("other-run", 20, other_key), (RUN, 30, corrupt_key)] {
        ctx.bus
            .publish_event(&CheckpointSaved {
                run_id: run.into(),
                step,
                key,
            })
            .await
            .unwrap();
    }
    // A later good checkpoint is still taken after the refused one.
    let good = tiny_weights(&info, 13);
    let key = write_checkpoint(&ctx.store, RUN, 40, good.clone(), &good).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        running.service.served(),
        step10,
        "nothing newer that verifies"
    );
    ctx.bus
        .publish_event(&CheckpointSaved {
            run_id: RUN.into(),
            step: 40,
            key,
        })
        .await
        .unwrap();
    let step40 = CheckpointId::of_run(RUN, 40).unwrap();
    until_served(&running, &step40).await;

    // A request may still name an older checkpoint of the store.
    let named = generate(
        &mut client,
        GenerateRequest {
            checkpoint: Some(step10.to_string()),
            ..request
        },
    )
    .await
    .unwrap();
    assert_eq!(
        named.image.png, after.image.png,
        "step 10 again, same image"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_run_with_checkpoints_serves_its_newest_at_start() {
    let mut config = config();
    config.sampler.run = Some(RUN.into());
    let ctx = memory_context(config).await;
    // The architecture of the tiny preset, from a throwaway instance.
    let probe = start(memory_context(ctx.config.as_ref().clone()).await).await;
    let info = probe.service.info().clone();
    probe.stop().await;
    for step in [5, 7] {
        let weights = tiny_weights(&info, step);
        write_checkpoint(&ctx.store, RUN, step, weights.clone(), &weights).await;
    }
    // An uncommitted folder (no marker yet) is never picked.
    ctx.store
        .put(
            &ssdit_store::layout::checkpoint_file(RUN, 9, "ema.safetensors").unwrap(),
            tiny_weights(&info, 9).into(),
        )
        .await
        .unwrap();
    let running = start(ctx).await;
    assert_eq!(
        running.service.served(),
        CheckpointId::of_run(RUN, 7).unwrap()
    );
    running.stop().await;
}

#[tokio::test]
async fn a_request_may_name_the_served_checkpoint_and_unknown_ones_are_not_found() {
    let mut config = config();
    config.sampler.run = Some(RUN.into());
    let ctx = memory_context(config).await;
    let running = start(ctx.clone()).await;
    let info = running.service.info().clone();
    let weights = tiny_weights(&info, 5);
    let folder = write_checkpoint(&ctx.store, RUN, 5, weights.clone(), &weights).await;
    ctx.bus
        .publish_event(&CheckpointSaved {
            run_id: RUN.into(),
            step: 5,
            key: folder.clone(),
        })
        .await
        .unwrap();
    let step5 = CheckpointId::of_run(RUN, 5).unwrap();
    until_served(&running, &step5).await;
    let mut client = connect(&running).await;
    let request = GenerateRequest {
        seed: Some(9),
        ..prompt("a daisy")
    };
    let served = generate(&mut client, request.clone()).await.unwrap();

    // The folder and the weights file both name the checkpoint being served.
    for key in [folder, step5.to_string()] {
        let named = generate(
            &mut client,
            GenerateRequest {
                checkpoint: Some(key.clone()),
                ..request.clone()
            },
        )
        .await
        .unwrap_or_else(|status| panic!("{key}: {status:?}"));
        assert_eq!(
            named.image.metadata.as_ref().unwrap().checkpoint,
            step5.to_string()
        );
        assert_eq!(
            named.image.png, served.image.png,
            "{key}: the served weights"
        );
    }

    let unknown = format!("runs/{RUN}/checkpoints/step-0000000006");
    let status = generate(
        &mut client,
        GenerateRequest {
            checkpoint: Some(unknown.clone()),
            ..request
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(&unknown), "{status:?}");
    running.stop().await;
}
