//! Faults a distributed deployment must shrug off, each against real
//! processes: `ssdit serve …` services (tiny models), a private nats-server
//! with JetStream and a private S3-compatible server (moto) behind a proxy
//! that can cut the link, all on loopback.
//!
//! Every test ingests generated photos, causes its fault while the encoders
//! work, and then checks, from the broker and the store themselves, that
//! every ingested sample has exactly one complete latent and every caption
//! exactly one complete embedding: nothing lost, nothing duplicated, nothing half-written. Each
//! prints its counts (published, delivered, redelivered, stored, duplicates,
//! missing). The tests run one at a time (they share two cores); each takes
//! well under a minute once the binary is built.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ssdit_dataset::CaptionHash;
use ssdit_testkit::cluster::{self, CacheContents};
use ssdit_testkit::{BusProbe, Cluster, ClusterOptions, ConsumerCounts, ServiceProcess};
use tokio::sync::Mutex;

const DATASET: &str = "faults";
const SAMPLE_INGESTED: &str = "ssdit.sample_ingested";
const LATENT_ENCODED: &str = "ssdit.latent_encoded";
const TEXT_ENCODED: &str = "ssdit.text_encoded";
const VAE: &str = "vae-encoder";
const TEXT: &str = "text-encoder";
/// How long the pipeline may take to finish after a fault.
const SETTLE: Duration = Duration::from_secs(90);

/// One fault test at a time: each starts six processes.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn program() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_ssdit"))
}

fn logs(processes: &[&ServiceProcess]) -> String {
    processes
        .iter()
        .map(|p| p.log_tail())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ingests `folder`, retrying while the call fails (a fault may interrupt
/// it; re-ingesting is idempotent). Returns the sample ids and the failed calls.
async fn ingest_all(ingest: &ServiceProcess, folder: &std::path::Path) -> (BTreeSet<String>, u32) {
    let mut failures = 0;
    loop {
        match cluster::ingest_url(&ingest.url(), DATASET, folder).await {
            Ok(reply) => {
                assert!(reply.rejected.is_empty(), "{reply:?}");
                let ids = reply.samples.iter().map(|s| s.sample_id.clone()).collect();
                return (ids, failures);
            }
            Err(status) => {
                failures += 1;
                assert!(
                    failures < 10,
                    "ingest kept failing: {status}\n{}",
                    ingest.log_tail()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Waits until `durable` holds unanswered messages, then freezes `worker`
/// (SIGSTOP) at such a moment; returns how many it holds, frozen.
async fn freeze_mid_batch(worker: &ServiceProcess, bus: &BusProbe, durable: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if bus
            .consumer(durable)
            .await
            .is_some_and(|c| c.ack_pending > 0)
        {
            worker.pause();
            match bus.consumer(durable).await {
                Some(counts) if counts.ack_pending > 0 => return counts.ack_pending,
                _ => worker.resume(),
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "{durable} never held a message in flight\n{}",
        worker.log_tail()
    );
}

/// What a finished pipeline holds: a latent per sample, an embedding per caption.
struct Expected {
    samples: BTreeSet<String>,
    captions: BTreeSet<String>,
}

impl Expected {
    /// For `samples` ingested from `folder` with its sidecar captions.
    fn new(samples: BTreeSet<String>, folder: &Path) -> Self {
        let captions = std::fs::read_dir(folder)
            .expect("listing the photo folder")
            .map(|entry| entry.expect("reading the photo folder").path())
            .filter(|path| path.extension().is_some_and(|e| e == "txt"))
            .map(|path| {
                let caption = std::fs::read_to_string(&path).expect("reading a caption");
                CaptionHash::of(&caption).to_string()
            })
            .collect();
        Self { samples, captions }
    }
}

/// Every expected id once in the cache, every file complete; prints the counts.
fn assert_exactly_once(what: &str, expected: &BTreeSet<String>, found: &CacheContents) {
    let missing: Vec<_> = expected.difference(&found.ids).collect();
    let unexpected: Vec<_> = found.ids.difference(expected).collect();
    println!(
        "{what}: stored {}, duplicates {}, missing {}, incomplete {}",
        found.ids.len(),
        found.duplicates(),
        missing.len(),
        found.invalid.len()
    );
    assert!(missing.is_empty(), "{what} missing for {missing:?}");
    assert!(
        unexpected.is_empty(),
        "{what} for unknown samples {unexpected:?}"
    );
    assert_eq!(found.duplicates(), 0, "{what} duplicated");
    assert!(
        found.invalid.is_empty(),
        "{what} incomplete: {:?}",
        found.invalid
    );
}

/// Prints what the broker saw of one stage: published inputs, deliveries,
/// redeliveries (deliveries beyond one per message) and outputs announced.
async fn report_stage(bus: &BusProbe, durable: &str, output: &str) -> ConsumerCounts {
    let published = bus.published(SAMPLE_INGESTED).await;
    let counts = bus
        .consumer(durable)
        .await
        .unwrap_or_else(|| panic!("consumer {durable} is gone"));
    let announced = bus.published(output).await;
    println!(
        "{durable}: published {published}, delivered {}, redelivered {}, pending {}, unacked {}, announced {announced}",
        counts.deliveries,
        counts.deliveries.saturating_sub(published),
        counts.pending,
        counts.ack_pending,
    );
    assert_eq!(
        counts.pending + counts.ack_pending,
        0,
        "{durable} left work on the bus"
    );
    counts
}

/// Waits for both caches to be complete, then checks them exactly once.
async fn assert_pipeline_complete(
    cluster: &Cluster,
    expected: &Expected,
    processes: &[&ServiceProcess],
) {
    let store = cluster.store().await;
    let (samples, captions) = (expected.samples.len(), expected.captions.len());
    let (latents, embeddings) = cluster::wait_for_caches(&store, samples, captions, SETTLE).await;
    if latents.ids.len() < samples || embeddings.ids.len() < captions {
        panic!(
            "the pipeline did not finish: {} latents of {samples}, {} embeddings of {captions}\n{}",
            latents.ids.len(),
            embeddings.ids.len(),
            logs(processes)
        );
    }
    assert_exactly_once("latents", &expected.samples, &latents);
    assert_exactly_once("embeddings", &expected.captions, &embeddings);
}

/// Waits until a stage has answered every message (acks follow the writes).
async fn wait_drained(bus: &BusProbe, durable: &str) {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if bus
            .consumer(durable)
            .await
            .is_some_and(|c| c.pending + c.ack_pending == 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{durable} did not drain within {SETTLE:?}");
}

/// A vae-encoder SIGKILLed while it holds a batch: its messages are
/// redelivered (after the ack wait) to a second replica, and every sample
/// still ends with exactly one latent and one embedding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_encoder_replica_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(program(), &ClusterOptions::default()).await;
    let ingest = cluster.serve("captioning-ingest", "ingest").await;
    let text = cluster.serve(TEXT, "text").await;
    let folder = cluster.photos(16);
    let expected = Expected::new(ingest_all(&ingest, &folder).await.0, &folder);
    let bus = cluster.bus().await;

    let mut first = cluster.serve(VAE, "vae-1").await;
    let held = freeze_mid_batch(&first, &bus, VAE).await;
    first.kill();
    let done_before = cluster::cache_ids(&cluster.store().await, cluster::LATENTS)
        .await
        .len();
    println!("killed vae-1 holding {held} unacked messages; {done_before} latents stored before");
    assert!(
        done_before < expected.samples.len(),
        "vae-1 finished before it was killed"
    );

    let second = cluster.serve(VAE, "vae-2").await;
    assert_pipeline_complete(&cluster, &expected, &[&ingest, &text, &second]).await;
    wait_drained(&bus, VAE).await;
    wait_drained(&bus, TEXT).await;
    let vae = report_stage(&bus, VAE, LATENT_ENCODED).await;
    report_stage(&bus, TEXT, TEXT_ENCODED).await;
    assert!(
        vae.deliveries >= expected.samples.len() as u64 + held,
        "the killed replica's {held} messages were not redelivered: {vae:?}"
    );
}

/// NATS killed and restarted on the same port and store directory while
/// samples are ingested and encoded: the services reconnect by themselves,
/// JetStream keeps the messages, and the dataset completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(program(), &ClusterOptions::default()).await;
    let ingest = cluster.serve("captioning-ingest", "ingest").await;
    let vae = cluster.serve(VAE, "vae").await;
    let text = cluster.serve(TEXT, "text").await;
    let folder = cluster.photos(16);
    let bus = cluster.bus().await;
    // A service listens before it has reached NATS; the outage must find
    // each one connected, or it has no disconnect to recover from.
    for process in [&ingest, &vae, &text] {
        assert!(
            process
                .wait_logged("nats connected", Duration::from_secs(60))
                .await,
            "never connected to NATS\n{}",
            process.log_tail()
        );
    }

    let ingesting = {
        let folder = folder.clone();
        let url = ingest.url();
        tokio::spawn(async move { cluster::ingest_url(&url, DATASET, &folder).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while bus.published(SAMPLE_INGESTED).await == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing was ingested\n{}",
            ingest.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.nats.stop();
    println!("nats stopped after the first sample was announced");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nats.restart().await;
    println!("nats restarted on the same port and store");

    let first_call = ingesting.await.expect("the ingest task");
    let (samples, retries) = match first_call {
        Ok(reply) => (
            reply.samples.iter().map(|s| s.sample_id.clone()).collect(),
            0,
        ),
        Err(status) => {
            println!("the interrupted ingest call failed ({status}); calling again");
            let (ids, failures) = ingest_all(&ingest, &folder).await;
            (ids, failures + 1)
        }
    };
    assert_eq!(samples.len(), 16, "every photo is a sample");
    let expected = Expected::new(samples, &folder);
    assert_pipeline_complete(&cluster, &expected, &[&ingest, &vae, &text]).await;
    wait_drained(&bus, VAE).await;
    wait_drained(&bus, TEXT).await;
    report_stage(&bus, VAE, LATENT_ENCODED).await;
    report_stage(&bus, TEXT, TEXT_ENCODED).await;
    println!("ingest calls repeated: {retries}");
    for process in [&ingest, &vae, &text] {
        let log = process.log();
        let reconnected = log
            .rfind("nats disconnected")
            .is_some_and(|at| log[at..].contains("nats connected"));
        assert!(
            reconnected,
            "no disconnect and reconnect logged\n{}",
            process.log_tail()
        );
    }
}

/// The S3 server unreachable (the proxy cut) while the encoders work: store
/// calls fail, are retried with backoff, the messages are nak'd and
/// redelivered, and once the link is back every sample completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_delays_but_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(program(), &ClusterOptions::default()).await;
    let ingest = cluster.serve("captioning-ingest", "ingest").await;
    let vae = cluster.serve(VAE, "vae").await;
    let text = cluster.serve(TEXT, "text").await;
    vae.pause();
    text.pause();
    let folder = cluster.photos(12);
    let expected = Expected::new(ingest_all(&ingest, &folder).await.0, &folder);

    cluster.s3_link.cut();
    vae.resume();
    text.resume();
    let outage = Duration::from_secs(6);
    tokio::time::sleep(outage).await;
    let store = cluster.store().await;
    let during = cluster::cache_ids(&store, cluster::LATENTS).await.len()
        + cluster::cache_ids(&store, cluster::EMBEDDINGS).await.len();
    cluster.s3_link.restore();
    println!(
        "store unreachable for {outage:?}: {:?}; {during} cache files written meanwhile",
        cluster.s3_link.counts()
    );
    assert_eq!(during, 0, "a cache file was written through a cut link");

    assert_pipeline_complete(&cluster, &expected, &[&ingest, &vae, &text]).await;
    let bus = cluster.bus().await;
    wait_drained(&bus, VAE).await;
    wait_drained(&bus, TEXT).await;
    report_stage(&bus, VAE, LATENT_ENCODED).await;
    report_stage(&bus, TEXT, TEXT_ENCODED).await;
    let retried = [&vae, &text]
        .iter()
        .map(|p| p.log().matches("transient store error; retrying").count())
        .sum::<usize>();
    println!("store retries logged {retried}");
    assert!(
        retried > 0,
        "no store retry was logged\n{}",
        logs(&[&vae, &text])
    );
    assert!(
        cluster.s3_link.counts().refused > 0,
        "the outage was never felt"
    );
}

/// SIGTERM to a text-encoder while it holds a batch: it finishes (or naks)
/// that batch and exits 0; nothing it acked lacks its embedding, and a
/// second replica completes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_acks_only_what_is_done() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(program(), &ClusterOptions::default()).await;
    let ingest = cluster.serve("captioning-ingest", "ingest").await;
    let vae = cluster.serve(VAE, "vae").await;
    let folder = cluster.photos(16);
    let expected = Expected::new(ingest_all(&ingest, &folder).await.0, &folder);
    let bus = cluster.bus().await;

    let mut first = cluster.serve(TEXT, "text-1").await;
    let held = freeze_mid_batch(&first, &bus, TEXT).await;
    first.signal("TERM");
    first.resume();
    let clean = first.wait_exit(Duration::from_secs(60));
    assert!(
        clean,
        "text-1 did not exit 0 after SIGTERM\n{}",
        first.log_tail()
    );

    let store = cluster.store().await;
    let stored = cluster::cache_ids(&store, cluster::EMBEDDINGS).await.len() as u64;
    let counts = bus.consumer(TEXT).await.expect("the text-encoder consumer");
    let outstanding = counts.pending + counts.ack_pending;
    let acked = expected.samples.len() as u64 - outstanding;
    println!(
        "text-1 stopped by SIGTERM holding {held}: exit 0, {stored} embeddings stored, {acked} acked, {outstanding} still on the bus"
    );
    assert!(
        acked <= stored,
        "{acked} messages acked but only {stored} embeddings stored"
    );
    assert!(
        first.log().contains("text-encoder worker stopped"),
        "the worker did not stop cleanly\n{}",
        first.log_tail()
    );

    let second = cluster.serve(TEXT, "text-2").await;
    assert_pipeline_complete(&cluster, &expected, &[&ingest, &vae, &second]).await;
    wait_drained(&bus, VAE).await;
    wait_drained(&bus, TEXT).await;
    report_stage(&bus, VAE, LATENT_ENCODED).await;
    report_stage(&bus, TEXT, TEXT_ENCODED).await;
}
