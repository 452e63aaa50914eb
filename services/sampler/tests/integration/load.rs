//! The sampler under load: 32 concurrent `Generate` calls on the tiny models.
//! The queue is bounded (the rest are told RESOURCE_EXHAUSTED at once),
//! same-shaped requests are computed together, every accepted request gets
//! its image, and memory stays flat from one burst to the next.

use crate::common;

use std::time::Instant;

use common::*;
use ssdit_proto::v1::GenerateRequest;
use ssdit_testkit::memory_context;
use tonic::Code;

const CALLS: usize = 32;

/// Outcome counts of one burst.
#[derive(Debug, Default)]
struct Burst {
    answered: usize,
    refused: usize,
}

/// Fires `CALLS` concurrent requests (two shapes) and checks every outcome.
async fn burst(running: &Running, round: u64) -> Burst {
    let client = connect(running).await;
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let mut client = client.clone();
            let width = if i % 4 == 3 { 48 } else { 32 };
            let request = GenerateRequest {
                width: Some(width),
                seed: Some(round * 1000 + i as u64),
                ..prompt(&format!("flower number {i}"))
            };
            tokio::spawn(async move { (width, generate(&mut client, request).await) })
        })
        .collect();
    let mut outcome = Burst::default();
    for call in calls {
        match call.await.unwrap() {
            (width, Ok(generated)) => {
                assert_eq!(png_size(&generated.image.png), (width, 32));
                assert_eq!(generated.steps.len(), 3);
                outcome.answered += 1;
            }
            (_, Err(status)) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(status.message().contains("sampler.max_queue"), "{status:?}");
                outcome.refused += 1;
            }
        }
    }
    outcome
}

/// Resident memory of this process, from /proc (Linux).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_burst_of_32_is_bounded_batched_and_fully_answered() {
    let running = start(memory_context(config()).await).await;
    let started = Instant::now();
    let first = burst(&running, 1).await;
    let after_first = resident_bytes();
    let second = burst(&running, 2).await;
    let after_second = resident_bytes();
    let stats = running.service.stats();
    eprintln!(
        "{CALLS} calls ×2: answered {} + {}, refused {} + {}; batches {}, requests {}, \
         largest batch {}; resident {} MiB after the first burst, {} MiB after the second; {:.1} s",
        first.answered,
        second.answered,
        first.refused,
        second.refused,
        stats.batches,
        stats.requests,
        stats.largest_batch,
        after_first >> 20,
        after_second >> 20,
        started.elapsed().as_secs_f64(),
    );
    for round in [&first, &second] {
        assert_eq!(round.answered + round.refused, CALLS);
        assert!(round.refused > 0, "the queue is bounded: {round:?}");
        assert!(
            round.answered >= 8,
            "the queue (8) and the batch being computed were filled: {round:?}"
        );
    }
    assert_eq!(
        stats.requests as usize,
        first.answered + second.answered,
        "every accepted request was computed"
    );
    assert!(
        stats.largest_batch > 1,
        "same-shaped requests share batches"
    );
    assert!(stats.largest_batch <= 4, "sampler.max_batch holds");
    assert!(
        stats.batches < stats.requests,
        "fewer batches than requests: {stats:?}"
    );
    assert_eq!(stats.waiting, 0);
    assert!(
        after_second < after_first + (64 << 20),
        "memory grew by {} MiB in the second burst",
        (after_second.saturating_sub(after_first)) >> 20
    );
    running.stop().await;
}
