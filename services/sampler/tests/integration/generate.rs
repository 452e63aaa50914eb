//! `SamplerService.Generate` over a real server on the tiny models: the
//! progress stream, the PNG, determinism, and every validation error.

use crate::common;

use common::*;
use ssdit_proto::v1::{GenerateRequest, Sampler};
use ssdit_testkit::memory_context;
use tonic::Code;

#[tokio::test]
async fn streams_every_step_then_a_png_of_the_requested_size() {
    let running = start(memory_context(config()).await).await;
    let mut client = connect(&running).await;
    let request = GenerateRequest {
        width: Some(48),
        height: Some(32),
        steps: Some(3),
        seed: Some(7),
        ..prompt("a red rose")
    };
    let first = generate(&mut client, request.clone()).await.unwrap();
    let steps: Vec<(u32, u32)> = first
        .steps
        .iter()
        .map(|s| (s.step, s.total_steps))
        .collect();
    assert_eq!(steps, [(1, 3), (2, 3), (3, 3)]);
    let times: Vec<f32> = first.steps.iter().map(|s| s.t).collect();
    assert!(
        times.windows(2).all(|w| w[1] < w[0]) && times[2].abs() < 1e-6,
        "flow time runs from noise (1) to image (0): {times:?}"
    );
    assert_eq!(png_size(&first.image.png), (48, 32));
    let meta = first.image.metadata.as_ref().unwrap();
    assert_eq!(
        (meta.width, meta.height, meta.steps, meta.seed),
        (48, 32, 3, 7)
    );
    assert_eq!(meta.prompt, "a red rose");
    assert_eq!(
        meta.sampler,
        Sampler::Euler as i32,
        "the configured default"
    );
    assert_eq!((meta.cfg, meta.shift), (3.0, 1.0));
    assert!(
        meta.checkpoint.starts_with("random-init:tiny"),
        "{}",
        meta.checkpoint
    );

    let again = generate(&mut client, request.clone()).await.unwrap();
    assert_eq!(again.image.png, first.image.png, "same seed, same image");
    let other = generate(
        &mut client,
        GenerateRequest {
            seed: Some(8),
            ..request.clone()
        },
    )
    .await
    .unwrap();
    assert_ne!(
        other.image.png, first.image.png,
        "another seed, another image"
    );
    let rk4 = generate(
        &mut client,
        GenerateRequest {
            sampler: Sampler::Rk4 as i32,
            negative_prompt: "blurry".into(),
            ..request
        },
    )
    .await
    .unwrap();
    assert_eq!(png_size(&rk4.image.png), (48, 32));
    assert_eq!(rk4.image.metadata.unwrap().sampler, Sampler::Rk4 as i32);
    running.stop().await;
}

#[tokio::test]
async fn defaults_come_from_the_configuration() {
    let running = start(memory_context(config()).await).await;
    let mut client = connect(&running).await;
    let generated = generate(&mut client, prompt("an iris")).await.unwrap();
    assert_eq!(generated.steps.len(), 3);
    assert_eq!(png_size(&generated.image.png), (32, 32));
    running.stop().await;
}

#[tokio::test]
async fn bad_requests_are_invalid_argument_with_the_reason() {
    let running = start(memory_context(config()).await).await;
    let mut client = connect(&running).await;
    let enormous = "petal ".repeat(10_000);
    let cases: Vec<(GenerateRequest, Code, &str)> = vec![
        (prompt(""), Code::InvalidArgument, "prompt is empty"),
        (prompt("  \n"), Code::InvalidArgument, "prompt is empty"),
        (
            prompt(&enormous),
            Code::InvalidArgument,
            "prompt is 60000 bytes, more than the limit of 256",
        ),
        (
            GenerateRequest {
                negative_prompt: enormous.clone(),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "negative_prompt is 60000 bytes",
        ),
        (
            GenerateRequest {
                width: Some(40),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "width 40 must be a multiple of 16 between 16 and 256",
        ),
        (
            GenerateRequest {
                height: Some(0),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "height 0 must be",
        ),
        (
            GenerateRequest {
                width: Some(512),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "width 512",
        ),
        (
            GenerateRequest {
                steps: Some(0),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "steps 0 is outside 1..=20",
        ),
        (
            GenerateRequest {
                steps: Some(21),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "steps 21",
        ),
        (
            GenerateRequest {
                cfg: Some(f32::NAN),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "cfg NaN must be a finite number ≥ 0",
        ),
        (
            GenerateRequest {
                cfg: Some(f32::INFINITY),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "cfg inf",
        ),
        (
            GenerateRequest {
                cfg: Some(-1.0),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "cfg -1",
        ),
        (
            GenerateRequest {
                shift: Some(0.0),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "shift 0",
        ),
        (
            GenerateRequest {
                sampler: 7,
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "sampler 7 is not one of",
        ),
        (
            GenerateRequest {
                checkpoint: Some("../../etc/passwd".into()),
                ..prompt("a rose")
            },
            Code::InvalidArgument,
            "checkpoint \"../../etc/passwd\"",
        ),
        (
            GenerateRequest {
                checkpoint: Some("runs/nope/checkpoints/step-0000000001".into()),
                ..prompt("a rose")
            },
            Code::NotFound,
            "not found",
        ),
    ];
    for (request, code, needle) in cases {
        let status = generate(&mut client, request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }
    assert_eq!(running.service.stats().requests, 0, "nothing was queued");
    // The server is still serving.
    generate(&mut client, prompt("still here")).await.unwrap();
    running.stop().await;
}
