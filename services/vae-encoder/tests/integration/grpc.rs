//! `VaeService` over a real server: Encode and Decode, and every validation error.

use crate::common;

use common::*;
use ssdit_proto::v1::vae_image::Source;
use ssdit_proto::v1::vae_service_client::VaeServiceClient;
use ssdit_proto::v1::{Dtype, Tensor, VaeDecodeRequest, VaeEncodeRequest, VaeImage};
use ssdit_render::encode_png;
use ssdit_testkit::memory_context;
use ssdit_vae::PREVIEW_FINGERPRINT;
use ssdit_vae_encoder::images::{header, limits};
use tonic::Code;
use tonic::transport::Channel;

async fn client(url: &str) -> VaeServiceClient<Channel> {
    VaeServiceClient::connect(url.to_string()).await.unwrap()
}

fn png(width: u32, height: u32, seed: u8) -> VaeImage {
    VaeImage {
        source: Some(Source::Encoded(
            encode_png(&picture(width, height, seed)).unwrap().into(),
        )),
    }
}

fn pixels(shape: &[usize], value: f32) -> VaeImage {
    let count = shape.iter().product();
    VaeImage {
        source: Some(Source::Pixels(
            Tensor::from_f32(&vec![value; count], shape).unwrap(),
        )),
    }
}

fn encode(images: Vec<VaeImage>) -> VaeEncodeRequest {
    VaeEncodeRequest {
        images,
        sample: false,
        seed: None,
    }
}

#[tokio::test]
async fn encodes_images_and_decodes_latents_to_pngs() {
    let ctx = memory_context(config()).await;
    let running = start(ctx).await;
    let mut vae = client(&running.url).await;

    let reply = vae
        .encode(encode(vec![
            png(64, 64, 1),
            pixels(&[3, 32, 64], 0.25),
            png(64, 64, 2),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.vae_fingerprint, PREVIEW_FINGERPRINT);
    let shapes: Vec<Vec<u64>> = reply.latents.iter().map(|t| t.shape.clone()).collect();
    assert_eq!(shapes, [vec![16, 8, 8], vec![16, 4, 8], vec![16, 8, 8]]);
    assert_ne!(
        reply.latents[0], reply.latents[2],
        "different images, different latents"
    );

    let alone = vae
        .encode(encode(vec![png(64, 64, 2)]))
        .await
        .unwrap()
        .into_inner();
    let (alone, _) = alone.latents[0].to_f32().unwrap();
    let (batched, _) = reply.latents[2].to_f32().unwrap();
    let worst = alone
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Batched BLAS products sum in another order: agreement to float
    // rounding (measured 1.2e-5 on latents of unit scale), not bit for bit.
    assert!(
        worst < 1e-4,
        "a latent does not depend on its batch: {worst}"
    );

    let decoded = vae
        .decode(VaeDecodeRequest {
            latents: reply.latents.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decoded.vae_fingerprint, PREVIEW_FINGERPRINT);
    let sizes: Vec<(u32, u32)> = decoded
        .png_images
        .iter()
        .map(|png| {
            let head = header(png, &limits(1 << 20, 1 << 20)).unwrap();
            (head.width, head.height)
        })
        .collect();
    assert_eq!(sizes, [(64, 64), (64, 32), (64, 64)]);
    running.stop().await;
}

async fn encode_error(
    vae: &mut VaeServiceClient<Channel>,
    request: VaeEncodeRequest,
) -> tonic::Status {
    vae.encode(request).await.unwrap_err()
}

async fn decode_error(vae: &mut VaeServiceClient<Channel>, latents: Vec<Tensor>) -> tonic::Status {
    vae.decode(VaeDecodeRequest { latents }).await.unwrap_err()
}

fn assert_status(status: &tonic::Status, code: Code, needle: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{:?} lacks {needle:?}",
        status.message()
    );
}

#[tokio::test]
async fn encode_rejects_bad_requests_with_the_reason() {
    let mut config = config();
    config.encode.max_request_pixels = 128 * 128;
    let running = start(memory_context(config).await).await;
    let mut vae = client(&running.url).await;

    let cases: Vec<(VaeEncodeRequest, Code, &str)> = vec![
        (encode(vec![]), Code::InvalidArgument, "no images"),
        (
            encode(vec![png(8, 8, 0); 5]),
            Code::ResourceExhausted,
            "5 images",
        ),
        (
            encode(vec![png(128, 128, 0), png(8, 8, 0)]),
            Code::ResourceExhausted,
            "pixels",
        ),
        (
            encode(vec![png(64, 64, 0), png(60, 64, 0)]),
            Code::InvalidArgument,
            "image 1 is 60×64",
        ),
        (
            encode(vec![VaeImage {
                source: Some(Source::Encoded(b"GIF89a garbage".to_vec().into())),
            }]),
            Code::InvalidArgument,
            "image 0: GIF",
        ),
        (
            encode(vec![png(256, 128, 0)]),
            Code::ResourceExhausted,
            "image 0: PNG header declares 256x128",
        ),
        (
            encode(vec![VaeImage { source: None }]),
            Code::InvalidArgument,
            "neither",
        ),
        (
            encode(vec![pixels(&[4, 8, 8], 0.0)]),
            Code::InvalidArgument,
            "expected [3, H, W]",
        ),
        (
            encode(vec![pixels(&[3, 8, 12], 0.0)]),
            Code::InvalidArgument,
            "multiples of 8",
        ),
        (
            encode(vec![pixels(&[3, 8, 8], f32::NAN)]),
            Code::InvalidArgument,
            "NaN",
        ),
        (
            encode(vec![VaeImage {
                source: Some(Source::Pixels(Tensor {
                    dtype: Dtype::F32 as i32,
                    shape: vec![3, 8, 8],
                    data: vec![0u8; 100].into(),
                })),
            }]),
            Code::InvalidArgument,
            "needs 768 bytes, got 100",
        ),
        (
            encode(vec![VaeImage {
                source: Some(Source::Pixels(Tensor {
                    dtype: 42,
                    shape: vec![3, 8, 8],
                    data: vec![0u8; 768].into(),
                })),
            }]),
            Code::InvalidArgument,
            "dtype 42",
        ),
    ];
    for (request, code, needle) in cases {
        let status = encode_error(&mut vae, request).await;
        assert_status(&status, code, needle);
    }
    running.stop().await;
}

#[tokio::test]
async fn decode_rejects_bad_latents_with_the_reason() {
    let mut config = config();
    config.encode.max_request_pixels = 128 * 128;
    let running = start(memory_context(config).await).await;
    let mut vae = client(&running.url).await;
    let latent = |shape: &[usize], value: f32| {
        Tensor::from_f32(&vec![value; shape.iter().product()], shape).unwrap()
    };

    let cases: Vec<(Vec<Tensor>, Code, &str)> = vec![
        (vec![], Code::InvalidArgument, "no latents"),
        (
            vec![latent(&[16, 1, 1], 0.0); 5],
            Code::ResourceExhausted,
            "5 latents",
        ),
        (
            vec![latent(&[16, 16, 16], 0.0), latent(&[16, 2, 2], 0.0)],
            Code::ResourceExhausted,
            "pixels",
        ),
        (
            vec![latent(&[4, 2, 2], 0.0)],
            Code::InvalidArgument,
            "latent 0: shape [4, 2, 2]",
        ),
        (
            vec![latent(&[16, 0, 2], 0.0)],
            Code::InvalidArgument,
            "h, w > 0",
        ),
        (
            vec![latent(&[16, 2, 2], f32::INFINITY)],
            Code::InvalidArgument,
            "NaN or infinite",
        ),
        (
            vec![Tensor::from_u8(vec![0u8; 64], &[16, 2, 2]).unwrap()],
            Code::InvalidArgument,
            "cannot be read as f32",
        ),
        (
            vec![Tensor {
                dtype: Dtype::F32 as i32,
                shape: vec![16, 2, 2],
                data: vec![0u8; 7].into(),
            }],
            Code::InvalidArgument,
            "got 7",
        ),
        (
            vec![Tensor {
                dtype: Dtype::F32 as i32,
                shape: vec![16, 1 << 20, 1 << 20],
                data: vec![].into(),
            }],
            Code::ResourceExhausted,
            "more than the limit",
        ),
    ];
    for (latents, code, needle) in cases {
        let status = decode_error(&mut vae, latents).await;
        assert_status(&status, code, needle);
    }
    running.stop().await;
}
