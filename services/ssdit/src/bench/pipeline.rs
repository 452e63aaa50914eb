//! `ssdit bench pipeline`: what the event bus and the object store cost per
//! sample on the way ingest → vae-encoder / text-encoder → trainer, with the
//! model compute left out.
//!
//! Every stage does exactly what the real one does around its model: ingest
//! writes the image and the caption and publishes `SampleIngested`; the
//! vae-encoder and the text-encoder each fetch that event on their own durable
//! consumer, read their input from the store, write a safetensors output of
//! the real size (a 16×32×32 latent; a 64×1152 caption embedding), publish
//! `LatentEncoded` / `TextEncoded` and ack; the trainer's side reads and
//! validates both tensors and acks. All stages run at once, as in the
//! embedded deployment, so the figure is the pipelined cost: wall time and
//! this process' CPU time divided by the samples.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use ssdit_bus::{Bus, BusExt, ConsumerConfig, Delivery, InProcessBus, NatsBus, NatsConfig};
use ssdit_dataset::CaptionHash;
use ssdit_proto::v1::{LatentEncoded, SampleIngested, TextEncoded};
use ssdit_store::{F32Tensor, Key, Store, TensorFile, layout};
use tokio::task::JoinSet;

/// The dataset name and fingerprints the benchmark's keys carry.
const DATASET: &str = "bench";
const VAE_FP: &str = "bench-vae";
const ENCODER_FP: &str = "bench-enc";
const TOKENIZER_FP: &str = "bench-tok";
/// The bucket every benchmark sample is in (a 16×32×32 latent).
const BUCKET: u32 = 256;
const LATENT_SHAPE: [usize; 3] = [16, 32, 32];
/// How many deliveries a stage takes per fetch (a GPU stage's batch).
const FETCH_BATCH: usize = 16;
/// How long a stage waits for work before looking again.
const FETCH_WAIT: Duration = Duration::from_millis(200);
/// How long the whole run may take before it is called stuck.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Which buses to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Buses {
    /// The in-process bus, then NATS when a nats-server binary is found.
    All,
    /// The in-process bus of the embedded mode only.
    Embedded,
    /// NATS JetStream only (a private nats-server on a free loopback port).
    Nats,
}

#[derive(Args, Debug)]
pub struct PipelineArgs {
    /// Samples pushed through the pipeline per bus.
    #[arg(long, default_value_t = 500)]
    samples: usize,
    /// Bytes of each stored image (a 256² JPEG is 20–60 kB).
    #[arg(long, default_value_t = 48_000)]
    image_bytes: usize,
    /// Caption tokens of each embedding (×1152 floats).
    #[arg(long, default_value_t = 64)]
    text_tokens: usize,
    /// Which buses to measure.
    #[arg(long, value_enum, default_value_t = Buses::All)]
    bus: Buses,
    /// The object store (default: a fresh temporary directory per bus).
    #[arg(long)]
    store: Option<String>,
    /// The nats-server binary (default: the first of /usr/sbin, /usr/bin,
    /// /usr/local/bin that has one, or `nats-server` on PATH).
    #[arg(long, env = "NATS_SERVER_BIN")]
    nats_server: Option<PathBuf>,
}

/// What one bus measured.
#[derive(Debug, Clone)]
struct PipelineRun {
    bus: String,
    store: String,
    samples: usize,
    wall: Duration,
    cpu: Duration,
}

impl PipelineRun {
    fn ms_per_sample(&self, of: Duration) -> f64 {
        of.as_secs_f64() * 1e3 / self.samples as f64
    }
}

pub fn run(args: PipelineArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let runs = runtime.block_on(measure_all(&args))?;
    println!("{}", table(&runs));
    println!(
        "per sample: 2 objects written by ingest, 2 tensor files written and read, 3 events \
         published, 4 deliveries fetched and acked; {} B image, {}×1152 embedding; load average {}",
        args.image_bytes,
        args.text_tokens,
        load_average()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

async fn measure_all(args: &PipelineArgs) -> anyhow::Result<Vec<PipelineRun>> {
    let mut runs = Vec::new();
    if args.bus != Buses::Nats {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(Default::default())?);
        runs.push(measure_bus("embedded (in-process)", bus, args).await?);
    }
    if args.bus != Buses::Embedded {
        match nats_binary(args.nats_server.as_deref()) {
            Some(binary) => {
                let server = NatsServer::start(&binary)?;
                let bus: Arc<dyn Bus> = Arc::new(
                    NatsBus::connect(NatsConfig {
                        url: server.url(),
                        client_name: "ssdit-bench".into(),
                        startup_timeout: Duration::from_secs(10),
                        ..NatsConfig::default()
                    })
                    .await
                    .context("connecting to the benchmark's nats-server")?,
                );
                runs.push(measure_bus("NATS JetStream (loopback)", bus, args).await?);
            }
            None if args.bus == Buses::Nats => {
                bail!("no nats-server binary found; install one or pass --nats-server")
            }
            None => eprintln!("bench: no nats-server binary found; NATS skipped"),
        }
    }
    Ok(runs)
}

async fn measure_bus(
    name: &str,
    bus: Arc<dyn Bus>,
    args: &PipelineArgs,
) -> anyhow::Result<PipelineRun> {
    let scratch = tempfile::tempdir().context("creating the benchmark's store directory")?;
    let url = match &args.store {
        Some(url) => url.clone(),
        None => scratch.path().display().to_string(),
    };
    let store = Store::open(&url).await?;
    eprintln!("bench: {name}: {} samples, store {url}", args.samples);
    let cpu_before = process_cpu();
    let started = Instant::now();
    tokio::time::timeout(RUN_LIMIT, push_samples(bus, store, args))
        .await
        .with_context(|| format!("{name}: the pipeline did not finish in {RUN_LIMIT:?}"))??;
    Ok(PipelineRun {
        bus: name.into(),
        store: if args.store.is_some() {
            url
        } else {
            "local directory".into()
        },
        samples: args.samples,
        wall: started.elapsed(),
        cpu: process_cpu().saturating_sub(cpu_before),
    })
}

/// The sample ids of one run: unique per run, valid store ids.
fn sample_id(run: u128, index: usize) -> String {
    format!("s{run:x}-{index:06}")
}

/// Runs ingest and the three consuming stages at once until the trainer's
/// side has seen every sample's latent and embedding.
async fn push_samples(bus: Arc<dyn Bus>, store: Store, args: &PipelineArgs) -> anyhow::Result<()> {
    // Durable names unique per run, so a reused NATS stream or store starts clean.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let durable = |stage: &str| format!("bench-{stage}-{run:x}");
    let n = args.samples;
    let mut stages: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let open =
        |stage: &str, subject: &str| bus.consumer(ConsumerConfig::new(durable(stage), subject));
    let vae = open("vae", "sample_ingested").await?;
    let text = open("text", "sample_ingested").await?;
    let latents = open("latents", "latent_encoded").await?;
    let embeddings = open("embeddings", "text_encoded").await?;

    let (image_bytes, text_tokens) = (args.image_bytes, args.text_tokens);
    let ctx = Stage {
        bus: bus.clone(),
        store: store.clone(),
    };
    let ingest = ctx.clone();
    stages.spawn(async move {
        let image = Bytes::from(vec![0x5a; image_bytes]);
        for i in 0..n {
            ingest.ingest(&sample_id(run, i), image.clone()).await?;
        }
        Ok(())
    });
    for (consumer, step) in [
        (vae, Step::EncodeLatent),
        (text, Step::EncodeText(text_tokens)),
        (latents, Step::ReadLatent),
        (embeddings, Step::ReadEmbedding(text_tokens)),
    ] {
        let stage = ctx.clone();
        stages.spawn(async move { stage.drain(&consumer, step, n).await });
    }
    while let Some(done) = stages.join_next().await {
        done.context("a pipeline stage panicked")??;
    }
    Ok(())
}

/// What a consuming stage does with each delivery.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The vae-encoder: image in, latent out.
    EncodeLatent,
    /// The text-encoder: caption in, embedding of this many tokens out.
    EncodeText(usize),
    /// The trainer's side: reads and validates a latent.
    ReadLatent,
    /// The trainer's side: reads and validates an embedding of this many tokens.
    ReadEmbedding(usize),
}

/// What every stage shares: the bus and the store.
#[derive(Clone)]
struct Stage {
    bus: Arc<dyn Bus>,
    store: Store,
}

impl Stage {
    /// Fetches and handles deliveries until `n` were handled.
    async fn drain(
        &self,
        consumer: &ssdit_bus::Consumer,
        step: Step,
        n: usize,
    ) -> anyhow::Result<()> {
        let mut handled = 0;
        while handled < n {
            for delivery in consumer.fetch(FETCH_BATCH, FETCH_WAIT).await? {
                match step {
                    Step::EncodeLatent => self.encode_latent(delivery).await?,
                    Step::EncodeText(tokens) => self.encode_text(delivery, tokens).await?,
                    Step::ReadLatent => self.read_latent(delivery).await?,
                    Step::ReadEmbedding(tokens) => self.read_embedding(delivery, tokens).await?,
                }
                handled += 1;
            }
        }
        Ok(())
    }

    async fn ingest(&self, id: &str, image: Bytes) -> anyhow::Result<()> {
        let image_key = layout::image(DATASET, id, "jpg")?;
        let caption_key = layout::caption(DATASET, id)?;
        self.store.put(&image_key, image).await?;
        // A caption per sample, so that each embedding has its own key.
        let caption = format!("a fern frond unfurling, sample {id}");
        self.store.put(&caption_key, Bytes::from(caption)).await?;
        self.bus
            .publish_event(&SampleIngested {
                dataset: DATASET.into(),
                sample_id: id.into(),
                image_key: image_key.to_string(),
                caption_key: caption_key.to_string(),
                bucket_width: BUCKET,
                bucket_height: BUCKET,
            })
            .await?;
        Ok(())
    }

    async fn encode_latent(&self, delivery: Delivery) -> anyhow::Result<()> {
        let event: SampleIngested = delivery.decode()?;
        let image = self.store.get(&Key::parse(&event.image_key)?).await?;
        anyhow::ensure!(!image.is_empty(), "image {} is empty", event.image_key);
        let key = layout::latent(&event.sample_id, VAE_FP, BUCKET, BUCKET)?;
        let latent = filled(&LATENT_SHAPE)?;
        self.store
            .put_tensors(&key, single("latent", latent))
            .await?;
        self.bus
            .publish_event(&LatentEncoded {
                dataset: event.dataset,
                sample_id: event.sample_id,
                latent_key: key.to_string(),
                vae_fingerprint: VAE_FP.into(),
                bucket_width: BUCKET,
                bucket_height: BUCKET,
            })
            .await?;
        delivery.ack().await?;
        Ok(())
    }

    async fn encode_text(&self, delivery: Delivery, tokens: usize) -> anyhow::Result<()> {
        let event: SampleIngested = delivery.decode()?;
        let caption = self.store.get(&Key::parse(&event.caption_key)?).await?;
        anyhow::ensure!(
            !caption.is_empty(),
            "caption {} is empty",
            event.caption_key
        );
        let max_length = u32::try_from(tokens)?;
        let text = CaptionHash::of(&String::from_utf8_lossy(&caption));
        let key = layout::embedding(text.as_str(), ENCODER_FP, TOKENIZER_FP, max_length)?;
        let embedding = filled(&[tokens, 1152])?;
        self.store
            .put_tensors(&key, single("embedding", embedding))
            .await?;
        self.bus
            .publish_event(&TextEncoded {
                dataset: event.dataset,
                sample_id: event.sample_id,
                embedding_key: key.to_string(),
                encoder_fingerprint: ENCODER_FP.into(),
                tokenizer_fingerprint: TOKENIZER_FP.into(),
                max_length,
            })
            .await?;
        delivery.ack().await?;
        Ok(())
    }

    async fn read_latent(&self, delivery: Delivery) -> anyhow::Result<()> {
        let event: LatentEncoded = delivery.decode()?;
        let file = self
            .store
            .get_tensors(&Key::parse(&event.latent_key)?)
            .await?;
        file.require("latent", &LATENT_SHAPE)?;
        delivery.ack().await?;
        Ok(())
    }

    async fn read_embedding(&self, delivery: Delivery, tokens: usize) -> anyhow::Result<()> {
        let event: TextEncoded = delivery.decode()?;
        let file = self
            .store
            .get_tensors(&Key::parse(&event.embedding_key)?)
            .await?;
        file.require("embedding", &[tokens, 1152])?;
        delivery.ack().await?;
        Ok(())
    }
}

/// A tensor of `shape` with distinct values (so nothing compresses or is elided).
fn filled(shape: &[usize]) -> anyhow::Result<F32Tensor> {
    let n = shape.iter().product::<usize>();
    let data = (0..n).map(|i| (i % 977) as f32 * 1e-3).collect();
    Ok(F32Tensor::new(data, shape.to_vec())?)
}

fn single(name: &str, tensor: F32Tensor) -> TensorFile {
    let mut file = TensorFile::new();
    file.insert(name, tensor);
    file
}

/// The Markdown table of the runs.
fn table(runs: &[PipelineRun]) -> String {
    let mut out = String::from(
        "| bus | store | samples | wall s | samples/s | wall ms / sample | CPU ms / sample (this process) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} |\n",
            r.bus,
            r.store,
            r.samples,
            r.wall.as_secs_f64(),
            r.samples as f64 / r.wall.as_secs_f64(),
            r.ms_per_sample(r.wall),
            r.ms_per_sample(r.cpu),
        ));
    }
    out
}

/// User + system CPU time of this process so far (`/proc/self/stat`); zero
/// where `/proc` does not tell.
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th of the whole line, in clock ticks (USER_HZ, 100 on Linux).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The nats-server to start: the one given, or the first one found.
fn nats_binary(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path.to_path_buf());
    }
    let fixed = ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
        .into_iter()
        .map(|dir| Path::new(dir).join("nats-server"));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"));
    fixed.chain(on_path).find(|p| p.is_file())
}

/// A private `nats-server -js` on a free loopback port with a temporary
/// store directory, killed when dropped.
struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    fn start(binary: &Path) -> anyhow::Result<Self> {
        let store = tempfile::tempdir().context("creating nats-server's store directory")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free loopback port")?
            .port();
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self {
            child,
            port,
            _store: store,
        };
        server.wait_until_ready(binary)?;
        Ok(server)
    }

    /// Waits for the server to accept connections (its port answers).
    fn wait_until_ready(&mut self, binary: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited at start ({status})", binary.display());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} did not accept connections within 10 s",
            binary.display()
        )
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(bus: Buses) -> PipelineArgs {
        PipelineArgs {
            samples: 20,
            image_bytes: 1000,
            text_tokens: 4,
            bus,
            store: None,
            nats_server: None,
        }
    }

    #[test]
    fn the_embedded_pipeline_delivers_every_sample_through_every_stage() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let runs = runtime
            .block_on(measure_all(&args(Buses::Embedded)))
            .unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].samples, 20);
        assert!(runs[0].wall > Duration::ZERO);
        let table = table(&runs);
        assert!(
            table.contains("| embedded (in-process) | local directory | 20 |"),
            "{table}"
        );
    }

    #[test]
    fn a_missing_nats_server_is_an_error_when_nats_is_asked_for() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let err = runtime
            .block_on(measure_all(&PipelineArgs {
                nats_server: Some("/nonexistent/nats-server".into()),
                ..args(Buses::Nats)
            }))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/nats-server"),
            "{err:#}"
        );
    }

    #[test]
    fn process_cpu_time_is_read() {
        // The clock advances in ticks of 10 ms, so spin until it moves rather
        // than for a fixed amount of work a fast CPU finishes within a tick.
        let start = process_cpu();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        while process_cpu() <= start && Instant::now() < deadline {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(
            process_cpu() > start,
            "no CPU time counted in 10 s of spinning"
        );
    }
}
