//! The one configuration file of ssdit (`ssdit.toml`).
//!
//! Every field has the seed's default (`config.py` of the original PyTorch
//! project), so an empty file — or none — is a working configuration. A few
//! settings can be overridden from the environment through the explicit
//! [`ENV_OVERRIDES`] table; [`Config::validate`] checks the whole once at
//! start so that a bad value fails fast, naming the key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::DeviceSpec;
use crate::{Error, Result};

/// Environment variables that override configuration keys (dotted paths).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SSDIT_STORE_URL", "store.url"),
    ("SSDIT_BUS", "bus.kind"),
    ("SSDIT_NATS_URL", "bus.url"),
    ("SSDIT_NATS_STREAM", "bus.stream"),
    ("SSDIT_VAE", "models.vae"),
    ("SSDIT_TEXT_ENCODER", "models.text_encoder"),
    ("SSDIT_DIT", "models.dit"),
    ("SSDIT_DEVICE", "models.device"),
    ("SSDIT_HOST", "server.host"),
    ("SSDIT_VLM_ENDPOINT", "ingest.vlm.endpoint"),
    ("SSDIT_VLM_MODEL", "ingest.vlm.model"),
];

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub bus: BusConfig,
    pub models: ModelsConfig,
    pub ingest: IngestConfig,
    pub encode: EncodeConfig,
    pub train: TrainConfig,
    pub sampler: SamplerConfig,
    pub server: ServerConfig,
}

/// Where images, captions, latents, embeddings, checkpoints and samples live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// A local directory (the default), `file://…`, `s3://bucket/prefix`,
    /// `gs://…`, `az://…` or `memory://`.
    pub url: String,
    /// S3-compatible endpoint (MinIO, R2, …); `None` means AWS.
    pub endpoint: Option<String>,
    /// Region for S3.
    pub region: Option<String>,
    /// Attempts for a transient store error before giving up.
    pub retries: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "./ssdit-data".into(),
            endpoint: None,
            region: None,
            retries: 5,
        }
    }
}

/// Which event bus connects the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process channels: every service in one process, no broker.
    Embedded,
    /// NATS JetStream: services in separate processes or machines.
    Nats,
}

/// The event bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    pub kind: BusKind,
    /// NATS server URL (for `kind = "nats"`).
    pub url: String,
    /// JetStream stream name; subjects are `<stream lowercased>.<event>`.
    pub stream: String,
    /// How long a delivered message may stay unacknowledged before redelivery.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Deliveries after which a message goes to the dead-letter subject.
    pub max_deliver: i64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::Embedded,
            url: "nats://127.0.0.1:4222".into(),
            stream: "SSDIT".into(),
            ack_wait: Duration::from_secs(300),
            max_deliver: 5,
        }
    }
}

/// Numeric precision of model compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

/// The models of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// A model directory, a Hugging Face repo id, `preview` (the weight-free
    /// stand-in codec) or `tiny` (a small random VAE).
    pub vae: String,
    /// A model directory, a Hugging Face repo id, or `tiny`.
    pub text_encoder: String,
    /// A DiT preset (`seed`, `small`, `tiny`) or a path to a `config.json`.
    pub dit: String,
    /// `auto` (the build's backend), `cpu`, or `cuda` / `cuda:N`.
    pub device: String,
    /// What the DiT computes in on the GPU: the sampler's precision, and the
    /// trainer's mixed precision (f32 master weights, the forward in this
    /// dtype). The CPU always computes in f32.
    pub precision: Precision,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            vae: "diffusers/FLUX.1-vae".into(),
            text_encoder: "google/t5gemma-2-1b-1b".into(),
            dit: "seed".into(),
            device: "auto".into(),
            precision: Precision::Bf16,
        }
    }
}

impl ModelsConfig {
    /// The `--tiny` preset: small random models that need no downloads.
    /// Their images are not meaningful; they show the pipeline working.
    pub fn tiny() -> Self {
        Self {
            vae: "tiny".into(),
            text_encoder: "tiny".into(),
            dit: "tiny".into(),
            ..Self::default()
        }
    }

    /// The `--tiny` preset on the device these settings name (the
    /// precision at its default): what `--tiny` makes of the configured models.
    pub fn tiny_on_same_device(&self) -> Self {
        Self {
            device: self.device.clone(),
            ..Self::tiny()
        }
    }
}

/// How images are downscaled to their bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Downscale {
    /// Detail-Preserving Image Downscaling (Weber et al. 2016).
    Dpid,
    /// Lanczos3, as the seed's preprocess.py.
    Lanczos,
}

/// Where captions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionSource {
    /// A `.txt` or `.caption` file beside each image.
    Sidecar,
    /// A vision-language model behind an OpenAI-compatible endpoint.
    Vlm,
}

/// captioning-ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Side of the square whose area every bucket keeps (seed: 448).
    pub target_resolution: u32,
    /// Bucket sides are multiples of this (seed: 32).
    pub bucket_alignment: u32,
    pub downscale: Downscale,
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Largest accepted image, in pixels, read from the header before decoding.
    pub max_pixels: u64,
    /// Smallest accepted image side, in pixels.
    pub min_side: u32,
    /// Background RGB that transparent pixels are composited on.
    pub background: [u8; 3],
    pub captions: CaptionSource,
    pub vlm: VlmConfig,
    /// DPID detail exponent λ (0 = box filter; Weber et al. use 0.5).
    pub dpid_lambda: f32,
    /// Images decoded and resized at once, on blocking threads (0: one per CPU core).
    pub workers: usize,
    /// A labels file (`<file name or stem>,<label>` per line) giving each image's
    /// category label; without it labels come from folder names.
    pub labels_file: Option<PathBuf>,
    /// Local folders `IngestUri` may read; empty allows any folder the server can read.
    pub uri_roots: Vec<PathBuf>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            target_resolution: 448,
            bucket_alignment: 32,
            downscale: Downscale::Dpid,
            max_bytes: 64 << 20,
            max_pixels: 64_000_000,
            min_side: 64,
            background: [255, 255, 255],
            captions: CaptionSource::Sidecar,
            vlm: VlmConfig::default(),
            dpid_lambda: 0.5,
            workers: 0,
            labels_file: None,
            uri_roots: Vec::new(),
        }
    }
}

/// The vision-language captioning endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VlmConfig {
    /// Base URL of an OpenAI-compatible API, e.g. `http://127.0.0.1:8000/v1`.
    pub endpoint: String,
    pub model: String,
    /// Name of the environment variable holding the API key, if any.
    pub api_key_env: Option<String>,
    /// A file replacing the built-in botanical captioning instruction.
    pub prompt_file: Option<PathBuf>,
    /// Requests in flight at once.
    pub concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per image before it is rejected.
    pub retries: u32,
    /// Requests per second, at most.
    pub rate_limit: f64,
}

impl Default for VlmConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:8000/v1".into(),
            model: "Qwen/Qwen3-VL-4B-Instruct".into(),
            api_key_env: None,
            prompt_file: None,
            concurrency: 4,
            timeout: Duration::from_secs(120),
            retries: 3,
            rate_limit: 4.0,
        }
    }
}

/// vae-encoder and text-encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Items per forward pass.
    pub batch_size: usize,
    /// Text tokens per caption (seed: 128).
    pub max_text_length: usize,
    /// Store a seeded sample of the latent distribution (the seed's
    /// `latent_dist.sample()`) rather than its mean.
    pub sample_latents: bool,
    /// Prompts, images or latents one gRPC `Encode`/`Decode` call may carry;
    /// beyond, callers get RESOURCE_EXHAUSTED.
    pub max_request_items: usize,
    /// Pixels (width × height, summed over its images) one VAE gRPC call may
    /// encode or decode; beyond, callers get RESOURCE_EXHAUSTED.
    pub max_request_pixels: u64,
    /// Bytes of one prompt a gRPC text `Encode` call may carry (the tokenizer
    /// truncates to `max_text_length` tokens anyway).
    pub max_prompt_bytes: usize,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        Self {
            batch_size: 8,
            max_text_length: 128,
            sample_latents: true,
            max_request_items: 64,
            max_request_pixels: 16 << 20,
            max_prompt_bytes: 16 << 10,
        }
    }
}

/// The velocity loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    Mse,
    L1,
    /// Huber with δ = 0.1, as the seed.
    Huber,
}

/// An ODE sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    Euler,
    Rk4,
}

/// What a training step keeps for its backward pass
/// (`train.gradient_checkpointing`): a trade of compute for memory.
///
/// Written `"off"`, `"blocks"` or `"operations"` (its [`Display`](std::fmt::Display)
/// and [`FromStr`](std::str::FromStr) forms); `false` and `true` are read as
/// `"off"` and `"blocks"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GradientCheckpointing {
    /// Everything autodiff records (fastest).
    #[default]
    Off,
    /// Only each noise-refiner and fusion block's input; every block runs
    /// again in the backward pass (about a third more compute; the
    /// activations of one block instead of all: what fits the seed config
    /// in 16 GB).
    Blocks,
    /// burn's balanced checkpointing: memory-bound operations recomputed in
    /// the backward pass. Saves memory on the CPU; on the GPU graph it holds
    /// more than it saves (docs/benchmarks.md).
    Operations,
}

impl GradientCheckpointing {
    /// Every setting, in the order the error message lists them.
    pub const ALL: [Self; 3] = [Self::Off, Self::Blocks, Self::Operations];

    /// The setting as written in a config file or on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Blocks => "blocks",
            Self::Operations => "operations",
        }
    }
}

impl std::str::FromStr for GradientCheckpointing {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|setting| setting.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|setting| setting.name()).collect();
                format!(
                    "unknown gradient checkpointing `{name}`: expected one of {}",
                    known.join(", ")
                )
            })
    }
}

impl std::fmt::Display for GradientCheckpointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for GradientCheckpointing {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Switch(bool),
            Name(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Switch(false) => Ok(Self::Off),
            Written::Switch(true) => Ok(Self::Blocks),
            Written::Name(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// f32 AdamW (PyTorch's formula).
    Adamw,
    /// AdamW with block-wise 8-bit moments, for 16 GB cards.
    Adamw8bit,
}

/// The trainer; defaults are the seed's `config.py`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Fraction of the run spent in linear warmup.
    pub warmup: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub accum_steps: usize,
    pub grad_clip: f64,
    pub ema_decay: f64,
    /// Probability of replacing a caption embedding by zeros (CFG training).
    pub text_dropout: f64,
    pub offset_noise: f64,
    pub shift: f64,
    pub loss: LossKind,
    pub dropout: f64,
    pub flip: bool,
    pub latent_mean: f64,
    pub latent_std: f64,
    pub optimizer: OptimizerKind,
    pub self_eval: SelfEvalConfig,
    pub gradient_checkpointing: GradientCheckpointing,
    pub save_every: usize,
    pub keep_last: usize,
    pub validate_every: usize,
    pub validate_cfg: f64,
    pub validate_steps: usize,
    pub validate_sampler: SamplerKind,
    pub seed: u64,
    /// Hold every latent and embedding in RAM (the seed's
    /// `load_entire_dataset`); `false` streams them from the store per batch.
    pub load_entire_dataset: bool,
    /// Fixed prompts (embeddings of the first training captions) sampled at
    /// each validation.
    pub validate_prompts: usize,
    /// Samples held out of training to report a validation loss (0: none).
    pub validation_holdout: usize,
    /// On resume, start fresh optimizer moments and a new schedule over the
    /// remaining epochs (the seed's `reset_optmizer`) instead of continuing.
    pub reset_optimizer: bool,
    /// Port of the trainer's Prometheus `/metrics` HTTP endpoint (on
    /// `server.host`); 0 turns it off.
    pub metrics_port: u16,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-4,
            weight_decay: 0.05,
            warmup: 0.05,
            epochs: 1500,
            batch_size: 16,
            accum_steps: 2,
            grad_clip: 1.0,
            ema_decay: 0.999,
            text_dropout: 0.15,
            offset_noise: 0.05,
            shift: 1.0,
            loss: LossKind::Mse,
            dropout: 0.05,
            flip: false,
            latent_mean: 0.0,
            latent_std: 1.0,
            optimizer: OptimizerKind::Adamw,
            self_eval: SelfEvalConfig::default(),
            gradient_checkpointing: GradientCheckpointing::Off,
            save_every: 100,
            keep_last: 3,
            validate_every: 25,
            validate_cfg: 3.0,
            validate_steps: 30,
            validate_sampler: SamplerKind::Euler,
            seed: 42,
            load_entire_dataset: true,
            validate_prompts: 4,
            validation_holdout: 0,
            reset_optimizer: false,
            metrics_port: 9464,
        }
    }
}

/// Self-E: consistency with the EMA model as teacher, late in training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfEvalConfig {
    pub enabled: bool,
    /// Fraction of the epochs after which it switches on.
    pub start: f64,
    pub lambda: f64,
    pub cfg: f64,
}

impl Default for SelfEvalConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            start: 0.85,
            lambda: 0.3,
            cfg: 1.5,
        }
    }
}

/// The sampler service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    pub steps: usize,
    pub cfg: f64,
    pub sampler: SamplerKind,
    pub shift: f64,
    /// Largest `steps` a request may ask for.
    pub max_steps: usize,
    /// Largest image side a request may ask for, in pixels.
    pub max_side: u32,
    /// Requests waiting at most; beyond, callers get RESOURCE_EXHAUSTED.
    pub max_queue: usize,
    /// Requests of one shape computed together in one batch.
    pub max_batch: usize,
    /// Image width when a request names none (multiple of 16).
    pub width: u32,
    /// Image height when a request names none (multiple of 16).
    pub height: u32,
    /// Bytes of a prompt or negative prompt a request may carry.
    pub max_prompt_bytes: usize,
    /// The training run whose newest checkpoint is served, and whose
    /// `CheckpointSaved` events are hot-reloaded; none follows any run.
    pub run: Option<String>,
    /// A checkpoint served at start instead of the run's newest: a store key
    /// (`runs/<run>/checkpoints/step-<N>[/ema.safetensors]`) or a local
    /// `.safetensors` / seed `.pt` file.
    pub checkpoint: Option<String>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            steps: 50,
            cfg: 3.0,
            sampler: SamplerKind::Euler,
            shift: 1.0,
            max_steps: 500,
            max_side: 2048,
            max_queue: 16,
            max_batch: 4,
            width: 448,
            height: 448,
            max_prompt_bytes: 16 << 10,
            run: None,
            checkpoint: None,
        }
    }
}

/// gRPC servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub ports: Ports,
    /// Name of the environment variable holding a bearer token; when set,
    /// every gRPC call must carry `authorization: Bearer <token>`.
    pub auth_token_env: Option<String>,
    /// PEM certificate and key enabling TLS.
    pub tls: Option<TlsConfig>,
    /// Largest upload accepted by `Ingest`, in bytes.
    pub max_upload_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            ports: Ports::default(),
            auth_token_env: None,
            tls: None,
            max_upload_bytes: 64 << 20,
        }
    }
}

/// One port per service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ports {
    pub ingest: u16,
    pub vae: u16,
    pub text: u16,
    pub trainer: u16,
    pub sampler: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            ingest: 50051,
            vae: 50052,
            text: 50053,
            trainer: 50054,
            sampler: 50055,
        }
    }
}

/// TLS material for the gRPC servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Reads `path` (if given; no file means all defaults), applies the
    /// environment overrides found in `env`, and validates.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Self> {
        let (origin, text) = match path {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    source,
                })?,
            ),
            None => ("<defaults>".to_string(), String::new()),
        };
        Self::parse(&text, &origin, env)
    }

    /// Parses TOML text, applies overrides from `env`, and validates.
    pub fn parse(text: &str, origin: &str, env: &HashMap<String, String>) -> Result<Self> {
        let parse_error = |e: &dyn std::fmt::Display| Error::Parse {
            origin: origin.to_string(),
            reason: e.to_string(),
        };
        let mut table: toml::Table = text.parse().map_err(|e| parse_error(&e))?;
        for (var, key) in ENV_OVERRIDES {
            if let Some(value) = env.get(*var) {
                set_key(&mut table, key, override_value(value)).map_err(|reason| Error::Env {
                    var: (*var).to_string(),
                    reason,
                })?;
            }
        }
        let config: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e| parse_error(&e))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range once, naming the key that is wrong.
    pub fn validate(&self) -> Result<()> {
        let ingest = &self.ingest;
        check(
            "ingest.target_resolution",
            ingest.target_resolution,
            (128..=4096).contains(&ingest.target_resolution),
            "must be between 128 and 4096",
        )?;
        check(
            "ingest.bucket_alignment",
            ingest.bucket_alignment,
            ingest.bucket_alignment >= 16 && ingest.bucket_alignment.is_multiple_of(16),
            "must be a positive multiple of 16 (8× VAE downsampling × patch 2)",
        )?;
        check(
            "ingest.dpid_lambda",
            ingest.dpid_lambda,
            ingest.dpid_lambda.is_finite() && ingest.dpid_lambda >= 0.0,
            "must be a finite number ≥ 0",
        )?;
        check(
            "ingest.workers",
            ingest.workers,
            ingest.workers <= 1024,
            "must be at most 1024 (0 means one per CPU core)",
        )?;
        check(
            "ingest.vlm.concurrency",
            ingest.vlm.concurrency,
            ingest.vlm.concurrency > 0,
            "must be at least 1",
        )?;
        check(
            "ingest.vlm.rate_limit",
            ingest.vlm.rate_limit,
            ingest.vlm.rate_limit > 0.0 && ingest.vlm.rate_limit.is_finite(),
            "must be a positive number of requests per second",
        )?;
        check(
            "encode.batch_size",
            self.encode.batch_size,
            self.encode.batch_size > 0,
            "must be at least 1",
        )?;
        check(
            "encode.max_text_length",
            self.encode.max_text_length,
            (1..=4096).contains(&self.encode.max_text_length),
            "must be between 1 and 4096",
        )?;
        check(
            "encode.max_request_items",
            self.encode.max_request_items,
            self.encode.max_request_items > 0,
            "must be at least 1",
        )?;
        check(
            "encode.max_request_pixels",
            self.encode.max_request_pixels,
            self.encode.max_request_pixels >= 64 * 64,
            "must be at least 4096 (one 64×64 image)",
        )?;
        check(
            "encode.max_prompt_bytes",
            self.encode.max_prompt_bytes,
            self.encode.max_prompt_bytes > 0,
            "must be at least 1",
        )?;
        check(
            "bus.max_deliver",
            self.bus.max_deliver,
            self.bus.max_deliver > 0,
            "must be at least 1",
        )?;
        self.train.validate()?;
        self.sampler.validate()?;
        DeviceSpec::parse(&self.models.device)?;
        Ok(())
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        let positive = |key, v: f64| check(key, v, v > 0.0 && v.is_finite(), "must be positive");
        let fraction =
            |key, v: f64| check(key, v, (0.0..=1.0).contains(&v), "must be between 0 and 1");
        positive("train.learning_rate", self.learning_rate)?;
        positive("train.grad_clip", self.grad_clip)?;
        positive("train.shift", self.shift)?;
        positive("train.latent_std", self.latent_std)?;
        fraction("train.weight_decay", self.weight_decay)?;
        fraction("train.warmup", self.warmup)?;
        fraction("train.ema_decay", self.ema_decay)?;
        fraction("train.text_dropout", self.text_dropout)?;
        fraction("train.dropout", self.dropout)?;
        fraction("train.self_eval.start", self.self_eval.start)?;
        check(
            "train.batch_size",
            self.batch_size,
            self.batch_size > 0,
            "must be at least 1",
        )?;
        check(
            "train.accum_steps",
            self.accum_steps,
            self.accum_steps > 0,
            "must be at least 1",
        )?;
        check(
            "train.epochs",
            self.epochs,
            self.epochs > 0,
            "must be at least 1",
        )?;
        check(
            "train.keep_last",
            self.keep_last,
            self.keep_last > 0,
            "must be at least 1",
        )?;
        check(
            "train.validate_prompts",
            self.validate_prompts,
            (1..=16).contains(&self.validate_prompts),
            "must be between 1 and 16",
        )?;
        check(
            "train.save_every",
            self.save_every,
            self.save_every > 0,
            "must be at least 1",
        )?;
        check(
            "train.validate_every",
            self.validate_every,
            self.validate_every > 0,
            "must be at least 1",
        )?;
        check(
            "train.validate_steps",
            self.validate_steps,
            (1..=1000).contains(&self.validate_steps),
            "must be between 1 and 1000",
        )?;
        Ok(())
    }
}

impl SamplerConfig {
    fn validate(&self) -> Result<()> {
        check(
            "sampler.steps",
            self.steps,
            self.steps > 0 && self.steps <= self.max_steps,
            "must be between 1 and sampler.max_steps",
        )?;
        check(
            "sampler.cfg",
            self.cfg,
            self.cfg.is_finite() && self.cfg >= 0.0,
            "must be a finite number ≥ 0",
        )?;
        check(
            "sampler.max_queue",
            self.max_queue,
            self.max_queue > 0,
            "must be at least 1",
        )?;
        check(
            "sampler.max_batch",
            self.max_batch,
            self.max_batch > 0,
            "must be at least 1",
        )?;
        let side = |v: u32| v >= 16 && v.is_multiple_of(16);
        check(
            "sampler.max_side",
            self.max_side,
            side(self.max_side),
            "must be a positive multiple of 16 (8× VAE downsampling × patch 2)",
        )?;
        for (key, value) in [
            ("sampler.width", self.width),
            ("sampler.height", self.height),
        ] {
            check(
                key,
                value,
                side(value) && value <= self.max_side,
                "must be a multiple of 16 between 16 and sampler.max_side",
            )?;
        }
        check(
            "sampler.max_prompt_bytes",
            self.max_prompt_bytes,
            self.max_prompt_bytes > 0,
            "must be at least 1",
        )?;
        for (key, value) in [
            ("sampler.run", &self.run),
            ("sampler.checkpoint", &self.checkpoint),
        ] {
            if let Some(value) = value {
                check(key, value, !value.trim().is_empty(), "must not be empty")?;
            }
        }
        Ok(())
    }
}

fn check(key: &'static str, value: impl std::fmt::Display, ok: bool, reason: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            key,
            value: value.to_string(),
            reason: reason.to_string(),
        })
    }
}

/// An override is read as a TOML value when it parses as one (`5`, `true`,
/// `1.5`), else taken as a string (`s3://bucket`).
fn override_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_key(table: &mut toml::Table, dotted: &str, value: toml::Value) -> Result<(), String> {
    let (parents, leaf) = match dotted.rsplit_once('.') {
        Some((parents, leaf)) => (Some(parents), leaf),
        None => (None, dotted),
    };
    let mut current = table;
    for part in parents.into_iter().flat_map(|p| p.split('.')) {
        current = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{dotted}: {part} is not a table in the config file"))?;
    }
    current.insert(leaf.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_file_is_the_seed_defaults() {
        let config = Config::parse("", "test", &HashMap::new()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.train.learning_rate, 2e-4);
        assert_eq!(config.train.accum_steps, 2);
        assert_eq!(config.sampler.steps, 50);
        assert_eq!(config.ingest.target_resolution, 448);
    }

    #[test]
    fn gradient_checkpointing_is_named_or_switched() {
        let read = |value: &str| {
            Config::parse(
                &format!("[train]\ngradient_checkpointing = {value}"),
                "test",
                &HashMap::new(),
            )
            .map(|config| config.train.gradient_checkpointing)
        };
        assert_eq!(read("false").unwrap(), GradientCheckpointing::Off);
        assert_eq!(read("true").unwrap(), GradientCheckpointing::Blocks);
        assert_eq!(read(r#""off""#).unwrap(), GradientCheckpointing::Off);
        assert_eq!(read(r#""blocks""#).unwrap(), GradientCheckpointing::Blocks);
        assert_eq!(
            read(r#""operations""#).unwrap(),
            GradientCheckpointing::Operations
        );
        let error = read(r#""layers""#).unwrap_err().to_string();
        assert!(
            error.contains("unknown gradient checkpointing `layers`"),
            "{error}"
        );
        assert!(read("3").is_err());
        for setting in GradientCheckpointing::ALL {
            assert_eq!(read(&format!("\"{setting}\"")).unwrap(), setting);
            assert_eq!(
                toml::Value::try_from(setting).unwrap().as_str(),
                Some(setting.name())
            );
        }
    }

    #[test]
    fn file_values_and_env_overrides_apply_in_order() {
        let text = r#"
            [store]
            url = "s3://bucket/from-file"
            [train]
            batch_size = 4
            [bus]
            ack_wait = "90s"
        "#;
        let config = Config::parse(
            text,
            "test",
            &env(&[("SSDIT_STORE_URL", "/data/ssdit"), ("SSDIT_BUS", "nats")]),
        )
        .unwrap();
        assert_eq!(config.store.url, "/data/ssdit");
        assert_eq!(config.bus.kind, BusKind::Nats);
        assert_eq!(config.bus.ack_wait, Duration::from_secs(90));
        assert_eq!(config.train.batch_size, 4);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = Config::parse("[train]\nlearning_rat = 1.0", "ssdit.toml", &HashMap::new())
            .unwrap_err();
        assert!(err.to_string().contains("learning_rat"), "{err}");

        let err =
            Config::parse("[sampler]\ncfg = -1.0", "ssdit.toml", &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("sampler.cfg"), "{err}");

        let err = Config::parse("", "t", &env(&[("SSDIT_BUS", "carrier-pigeon")])).unwrap_err();
        assert!(err.to_string().contains("carrier-pigeon"), "{err}");

        let err = Config::parse("[models]\ndevice = \"tpu\"", "t", &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[test]
    fn ingest_worker_and_dpid_settings_parse_and_are_checked() {
        let text = r#"
            [ingest]
            dpid_lambda = 1.0
            workers = 3
            labels_file = "labels.csv"
            uri_roots = ["/data/images"]
        "#;
        let config = Config::parse(text, "t", &HashMap::new()).unwrap();
        assert_eq!(config.ingest.dpid_lambda, 1.0);
        assert_eq!(config.ingest.workers, 3);
        assert_eq!(
            config.ingest.labels_file.as_deref(),
            Some(Path::new("labels.csv"))
        );
        assert_eq!(config.ingest.uri_roots, [PathBuf::from("/data/images")]);
        for bad in ["dpid_lambda = -0.5", "dpid_lambda = nan", "workers = 5000"] {
            let key = bad.split(' ').next().unwrap();
            let err = Config::parse(&format!("[ingest]\n{bad}"), "t", &HashMap::new()).unwrap_err();
            assert!(err.to_string().contains(&format!("ingest.{key}")), "{err}");
        }
    }

    #[test]
    fn training_data_and_validation_settings_are_checked() {
        let config = Config::parse(
            "[train]\nload_entire_dataset = false\nvalidation_holdout = 8\nreset_optimizer = true",
            "t",
            &HashMap::new(),
        )
        .unwrap();
        assert!(!config.train.load_entire_dataset);
        assert_eq!(config.train.validation_holdout, 8);
        assert!(config.train.reset_optimizer);
        assert_eq!(Config::default().train.validate_prompts, 4);
        assert_eq!(Config::default().train.metrics_port, 9464);
        for bad in [
            "validate_prompts = 0",
            "validate_prompts = 17",
            "save_every = 0",
            "validate_every = 0",
            "validate_steps = 0",
        ] {
            let key = bad.split(' ').next().unwrap();
            let err = Config::parse(&format!("[train]\n{bad}"), "t", &HashMap::new()).unwrap_err();
            assert!(err.to_string().contains(&format!("train.{key}")), "{err}");
        }
    }

    #[test]
    fn encoder_and_sampler_service_limits_are_checked() {
        let text = r#"
            [encode]
            max_request_items = 4
            max_prompt_bytes = 100
            [sampler]
            width = 64
            height = 128
            run = "flowers-1"
            checkpoint = "/models/dit.safetensors"
        "#;
        let config = Config::parse(text, "t", &HashMap::new()).unwrap();
        assert_eq!(config.encode.max_request_items, 4);
        assert_eq!(config.encode.max_prompt_bytes, 100);
        assert_eq!((config.sampler.width, config.sampler.height), (64, 128));
        assert_eq!(config.sampler.run.as_deref(), Some("flowers-1"));
        assert_eq!(Config::default().sampler.run, None);
        for (section, bad) in [
            ("encode", "max_request_items = 0"),
            ("encode", "max_request_pixels = 100"),
            ("encode", "max_prompt_bytes = 0"),
            ("sampler", "width = 100"),
            ("sampler", "height = 4096"),
            ("sampler", "max_side = 1000"),
            ("sampler", "max_prompt_bytes = 0"),
            ("sampler", "run = \" \""),
        ] {
            let key = bad.split(' ').next().unwrap();
            let err =
                Config::parse(&format!("[{section}]\n{bad}"), "t", &HashMap::new()).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{section}.{key}")),
                "{err}"
            );
        }
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(
            Config::parse(&text, "t", &HashMap::new()).unwrap(),
            Config::default()
        );
    }
}
