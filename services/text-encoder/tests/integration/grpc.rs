//! `TextEncoderService.Encode` over a real server: embeddings, masks and
//! fingerprints, and every validation error with its status and reason.

use crate::common;

use common::*;
use ssdit_proto::v1::EncodeTextRequest;
use ssdit_proto::v1::text_encoder_service_client::TextEncoderServiceClient;
use ssdit_testkit::memory_context;
use tonic::Code;
use tonic::transport::Channel;

async fn client(url: &str) -> TextEncoderServiceClient<Channel> {
    TextEncoderServiceClient::connect(url.to_string())
        .await
        .unwrap()
}

fn request(prompts: &[&str], max_length: Option<u32>) -> EncodeTextRequest {
    EncodeTextRequest {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        max_length,
    }
}

/// `[n, len, dim]` values and `[n, len]` mask of a reply.
fn unpack(reply: &ssdit_proto::v1::EncodeTextReply) -> (Vec<f32>, Vec<usize>, Vec<u8>) {
    let (values, shape) = reply.embeddings.as_ref().unwrap().to_f32().unwrap();
    let (mask, mask_shape) = reply.mask.as_ref().unwrap().to_u8().unwrap();
    assert_eq!(mask_shape, shape[..2]);
    (values, shape, mask.to_vec())
}

#[tokio::test]
async fn encodes_prompts_to_embeddings_masks_and_fingerprints() {
    let running = start(memory_context(config()).await).await;
    let mut text = client(&running.url).await;
    let info = running.service.model().info().clone();

    let prompts = [
        "a red rose in the rain",
        "iris",
        "a sunflower field at dusk",
    ];
    let reply = text
        .encode(request(&prompts, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.encoder_fingerprint, info.fingerprint);
    assert_eq!(reply.tokenizer_fingerprint, info.tokenizer_fingerprint);
    let (values, shape, mask) = unpack(&reply);
    assert_eq!(shape, [3, 16, info.dim]);
    assert!(values.iter().all(|v| v.is_finite()));
    let real: Vec<usize> = mask
        .chunks(16)
        .map(|row| row.iter().filter(|&&m| m == 1).count())
        .collect();
    assert!(mask.iter().all(|&m| m <= 1), "{mask:?}");
    assert!(
        real[1] < real[0] && real[0] <= 16 && real[1] > 0,
        "a short prompt has fewer real tokens: {real:?}"
    );

    // A prompt's embedding does not depend on the prompts beside it.
    let alone = text
        .encode(request(&prompts[1..2], None))
        .await
        .unwrap()
        .into_inner();
    let (alone, _, alone_mask) = unpack(&alone);
    let per = 16 * info.dim;
    let batched = &values[per..2 * per];
    let worst = alone
        .iter()
        .zip(batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "batched and alone differ by {worst}");
    assert_eq!(alone_mask, mask[16..32]);

    // Another token length on request.
    let short = text
        .encode(request(&prompts[..1], Some(8)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unpack(&short).1, [1, 8, info.dim]);
    running.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reason() {
    let running = start(memory_context(config()).await).await;
    let mut text = client(&running.url).await;
    let long = "petal ".repeat(50);
    let enormous = "x".repeat(200_000);
    let cases: Vec<(EncodeTextRequest, Code, &str)> = vec![
        (request(&[], None), Code::InvalidArgument, "no prompts"),
        (
            request(&[""], None),
            Code::InvalidArgument,
            "prompt 0 is empty",
        ),
        (
            request(&["a rose", " \n\t"], None),
            Code::InvalidArgument,
            "prompt 1 is empty",
        ),
        (
            request(&[&long], None),
            Code::InvalidArgument,
            "prompt 0 is 300 bytes, more than the limit of 256",
        ),
        (
            request(&["a rose", &enormous], None),
            Code::InvalidArgument,
            "prompt 1 is 200000 bytes",
        ),
        (
            request(&["a"; 5], None),
            Code::ResourceExhausted,
            "5 prompts in one request, more than the limit of 4",
        ),
        (
            request(&["a rose"], Some(0)),
            Code::InvalidArgument,
            "max_length 0 is outside 1..=1024",
        ),
        (
            request(&["a rose"], Some(5000)),
            Code::InvalidArgument,
            "max_length 5000",
        ),
    ];
    for (request, code, needle) in cases {
        let status = text.encode(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }

    // A message beyond the transport limit is cut off by gRPC itself, and
    // the server goes on serving.
    let huge = "x".repeat(4 << 20);
    let status = text.encode(request(&[&huge], None)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    text.encode(request(&["still serving"], None))
        .await
        .unwrap();
    running.stop().await;
}
