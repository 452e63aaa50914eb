//! Every service of the pipeline in this process, sharing one store and one
//! bus: captioning-ingest, vae-encoder and text-encoder (bus workers and
//! gRPC servers), the trainer (its gRPC server; the job's training is one of
//! its runs, on its own thread), and the sampler's gRPC server once a
//! checkpoint exists. Servers listen on loopback ports picked by the
//! system, so several jobs (and tests) run side by side.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use image::RgbImage;
use ssdit_core::Config;
use ssdit_dataset::{Dataset, DatasetStatus, Encodings, SampleRecord};
use ssdit_ingest::{IngestOptions, IngestReport, Ingester};
use ssdit_proto::v1::generate_progress::Event as ProgressEvent;
use ssdit_proto::v1::sampler_service_client::SamplerServiceClient;
use ssdit_proto::v1::{GenerateRequest, GeneratedImage};
use ssdit_sampler::SamplingService;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::Key;
use ssdit_text_encoder::TextEncoderService;
use ssdit_train::{RunRequest, RunState, RunStatus, RunUpdate, TrainEvent};
use ssdit_trainer::Trainer;
use ssdit_vae_encoder::{LATENT_TENSOR, VaeEncoder};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::error::{Error, Result};

/// The job's gRPC servers listen here only: it serves itself, not a network.
const LOOPBACK: &str = "127.0.0.1";

/// The bus client name of the job.
const CLIENT_NAME: &str = "ssdit-run";

/// How often the dataset status is read while the encoders work.
const STATUS_POLL: Duration = Duration::from_millis(250);

/// Largest generated image a `Generate` reply may carry.
const MAX_REPLY_BYTES: usize = 64 << 20;

/// A service running on a task of its own.
struct Running {
    name: &'static str,
    addr: SocketAddr,
    task: JoinHandle<Result<(), String>>,
}

/// The pipeline's services, running.
pub struct Pipeline {
    ctx: ServiceContext,
    ingester: Ingester,
    vae: VaeEncoder,
    text: TextEncoderService,
    trainer: Trainer,
    training_stop: TrainingStop,
    shutdown: CancellationToken,
    services: Vec<Running>,
}

/// Asks the pipeline's training in progress to stop at its next step, with
/// a checkpoint, as its time limit does (Ctrl-C in `ssdit run`): the job
/// then goes on from that checkpoint.
#[derive(Clone, Default)]
pub struct TrainingStop(Arc<StopState>);

#[derive(Default)]
struct StopState {
    training: AtomicBool,
    requested: Notify,
}

impl TrainingStop {
    /// Asks the training in progress to stop; `false` (and nothing asked)
    /// when nothing is training.
    pub fn request(&self) -> bool {
        let training = self.0.training.load(Ordering::SeqCst);
        if training {
            self.0.requested.notify_one();
        }
        training
    }

    /// Completes once a stop is requested.
    async fn requested(&self) {
        self.0.requested.notified().await;
    }

    /// Marks training as in progress until the returned guard drops.
    fn training(&self) -> TrainingInProgress<'_> {
        self.0.training.store(true, Ordering::SeqCst);
        TrainingInProgress(&self.0)
    }
}

/// Training is in progress while this lives.
struct TrainingInProgress<'a>(&'a StopState);

impl Drop for TrainingInProgress<'_> {
    fn drop(&mut self) {
        self.0.training.store(false, Ordering::SeqCst);
    }
}

/// The end of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub status: RunStatus,
    /// Store key of the EMA weights of its last checkpoint.
    pub checkpoint: String,
    /// Optimizer steps taken in this job.
    pub steps: u64,
    pub elapsed: Duration,
}

/// A training sample as the model saw it.
#[derive(Debug, Clone)]
pub struct Reference {
    pub record: SampleRecord,
    pub caption: String,
    /// The bucket-sized image ingest stored.
    pub original: RgbImage,
    /// Its stored latent, decoded by the codec: what the DiT learns to make.
    pub reconstruction: RgbImage,
}

impl Pipeline {
    /// Opens the configured store and bus, loads the codec and the text
    /// encoder, and starts ingest, vae-encoder and text-encoder (their bus
    /// workers and gRPC servers) and the trainer's gRPC server. `env` is the
    /// environment the binary read (for `ingest.vlm.api_key_env`).
    pub async fn start(config: Config, env: &HashMap<String, String>) -> Result<Self> {
        let ctx = ServiceContext::connect(config, CLIENT_NAME).await?;
        let vae = VaeEncoder::load(ctx.clone())
            .await
            .map_err(|e| Error::service("vae-encoder", e))?;
        let text = TextEncoderService::load(ctx.clone())
            .await
            .map_err(|e| Error::service("text-encoder", e))?;
        let ingester = Ingester::new(&ctx, env)?;
        let trainer = Trainer::new(ctx.clone());
        let mut pipeline = Self {
            ctx,
            ingester,
            vae,
            text,
            trainer,
            training_stop: TrainingStop::default(),
            shutdown: CancellationToken::new(),
            services: Vec::new(),
        };
        let ingester = pipeline.ingester.clone();
        pipeline
            .spawn("captioning-ingest", |listener, stop| async move {
                ssdit_ingest::run(ingester, listener, GrpcOptions::default(), stop)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        let vae = pipeline.vae.clone();
        pipeline
            .spawn("vae-encoder", |listener, stop| async move {
                vae.serve(listener, GrpcOptions::default(), stop)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        let text = pipeline.text.clone();
        pipeline
            .spawn("text-encoder", |listener, stop| async move {
                text.serve(listener, GrpcOptions::default(), stop)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        let trainer = pipeline.trainer.clone();
        pipeline
            .spawn("trainer", |listener, stop| async move {
                ssdit_trainer::run(trainer, listener, None, GrpcOptions::default(), stop)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        Ok(pipeline)
    }

    /// Binds a loopback port and runs `serve` on it until shutdown.
    async fn spawn<F, Fut>(&mut self, name: &'static str, serve: F) -> Result<SocketAddr>
    where
        F: FnOnce(TcpListener, WaitForCancellationFutureOwned) -> Fut,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let listener = ssdit_server::listen(LOOPBACK, 0).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::service(name, format!("listener address: {e}")))?;
        let task = tokio::spawn(serve(listener, self.shutdown.clone().cancelled_owned()));
        tracing::info!(service = name, %addr, "serving");
        self.services.push(Running { name, addr, task });
        Ok(addr)
    }

    /// The configuration the services run with.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The services' gRPC addresses, by name.
    pub fn addresses(&self) -> Vec<(&'static str, SocketAddr)> {
        self.services.iter().map(|s| (s.name, s.addr)).collect()
    }

    /// The cache identities of the loaded codec and text encoder.
    pub fn encodings(&self) -> Encodings {
        Encodings {
            vae: self.vae.codec().info().fingerprint.clone(),
            text: self.text.model().encoding(),
        }
    }

    /// The dataset `name` in the job's store.
    pub fn dataset(&self, name: &str) -> Result<Dataset> {
        Ok(Dataset::new(self.ctx.store.clone(), name)?)
    }

    /// Ingests the images of `folder` (captions from their sidecar files).
    pub async fn ingest(&self, dataset: &str, folder: &Path) -> Result<IngestReport> {
        Ok(self
            .ingester
            .ingest_folder(dataset, folder, IngestOptions::default())
            .await?)
    }

    /// Waits until every ingested sample has its latent and every captioned
    /// one its embedding (or was rejected by that encoder), reporting each
    /// change of the counts; fails after `timeout` or when a service stops.
    pub async fn wait_encoded(
        &self,
        dataset: &str,
        timeout: Duration,
        mut observe: impl FnMut(&DatasetStatus),
    ) -> Result<DatasetStatus> {
        let dataset = self.dataset(dataset)?;
        let encodings = self.encodings();
        let started = Instant::now();
        let mut last = None;
        loop {
            self.check_services()?;
            let status = dataset.status(&encodings).await?;
            if last.as_ref() != Some(&status) {
                observe(&status);
            }
            let vae_rejected = self.vae.worker().stats().rejected as usize;
            let text_rejected = self.text.worker().stats().rejected as usize;
            if status.latents + vae_rejected >= status.ingested
                && status.embeddings + text_rejected >= status.captioned
            {
                return Ok(status);
            }
            if started.elapsed() >= timeout {
                return Err(Error::EncodingTimeout {
                    dataset: dataset.name().to_string(),
                    seconds: timeout.as_secs(),
                    status,
                });
            }
            last = Some(status);
            tokio::time::sleep(STATUS_POLL).await;
        }
    }

    /// Fails when a service task has ended before shutdown.
    fn check_services(&self) -> Result<()> {
        match self.services.iter().find(|s| s.task.is_finished()) {
            Some(service) => Err(Error::service(
                service.name,
                "stopped unexpectedly (see the log above)",
            )),
            None => Ok(()),
        }
    }

    /// Asks this pipeline's training, when one is in progress, to stop.
    pub fn training_stop(&self) -> TrainingStop {
        self.training_stop.clone()
    }

    /// Trains `request` as a run of the served trainer (so its gRPC
    /// `GetRun`/`WatchRun`/`StopRun` see it), reporting every event, until it
    /// completes — or until `time_limit` or a [`TrainingStop::request`], when
    /// it is asked to stop (it saves a checkpoint at the next step boundary).
    pub async fn train(
        &self,
        mut request: RunRequest,
        time_limit: Option<Duration>,
        mut observe: impl FnMut(&TrainEvent),
    ) -> Result<Trained> {
        let _training = self.training_stop.training();
        request.encodings = Some(self.encodings());
        let started = Instant::now();
        let run = self
            .trainer
            .train(request)
            .await
            .map_err(|e| Error::Training(e.to_string()))?;
        let handle = &run.handle;
        let mut updates = handle.subscribe();
        let mut stop_asked = pin!(async {
            let time_up = async {
                match time_limit {
                    Some(limit) => tokio::time::sleep(limit).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = time_up => "time limit reached",
                () = self.training_stop.requested() => "interrupted",
            }
        });
        let mut stop_sent = false;
        let mut steps = 0;
        let mut ended = pin!(handle.wait());
        let status = loop {
            tokio::select! {
                status = &mut ended => break status,
                update = updates.recv() => match update {
                    Ok(RunUpdate::Event(event)) => {
                        steps += u64::from(matches!(event, TrainEvent::Step(_)));
                        observe(&event);
                    }
                    Ok(RunUpdate::Finished(_)) | Err(RecvError::Closed) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "progress events skipped");
                    }
                },
                reason = &mut stop_asked, if !stop_sent => {
                    tracing::info!("{reason}: stopping training at the next step");
                    handle.stop();
                    stop_sent = true;
                }
            }
        };
        while let Ok(update) = updates.try_recv() {
            if let RunUpdate::Event(event) = update {
                steps += u64::from(matches!(event, TrainEvent::Step(_)));
                observe(&event);
            }
        }
        if status.state == RunState::Failed {
            return Err(Error::Training(
                status.error.unwrap_or_else(|| "failed".into()),
            ));
        }
        let checkpoint = status
            .latest_checkpoint
            .clone()
            .ok_or_else(|| Error::Training("the run ended without a checkpoint".into()))?;
        Ok(Trained {
            status,
            checkpoint,
            steps,
            elapsed: started.elapsed(),
        })
    }

    /// Starts the sampler's gRPC server serving `checkpoint` (following run
    /// `run_id` for newer ones); returns its address.
    pub async fn start_sampler(&mut self, run_id: &str, checkpoint: &str) -> Result<SocketAddr> {
        let mut config = Config::clone(&self.ctx.config);
        config.sampler.run = Some(run_id.to_string());
        config.sampler.checkpoint = Some(checkpoint.to_string());
        let ctx = ServiceContext {
            config: Arc::new(config),
            store: self.ctx.store.clone(),
            bus: self.ctx.bus.clone(),
        };
        let sampler = SamplingService::load(ctx, Some(CLIENT_NAME.to_string()))
            .await
            .map_err(|e| Error::service("sampler", e))?;
        self.spawn("sampler", |listener, stop| async move {
            sampler
                .serve(listener, GrpcOptions::default(), stop)
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// The sampler's address, once started.
    pub fn sampler_address(&self) -> Option<SocketAddr> {
        self.services
            .iter()
            .find(|s| s.name == "sampler")
            .map(|s| s.addr)
    }

    /// Calls the sampler's `Generate` over gRPC and returns the final image.
    pub async fn generate(&self, request: GenerateRequest) -> Result<GeneratedImage> {
        let prompt = request.prompt.clone();
        let error = |reason: String| Error::Generate {
            prompt: prompt.clone(),
            reason,
        };
        let addr = self
            .sampler_address()
            .ok_or_else(|| error("the sampler is not started".into()))?;
        let mut client = SamplerServiceClient::connect(format!("http://{addr}"))
            .await
            .map_err(|e| error(format!("cannot connect to {addr}: {e}")))?
            .max_decoding_message_size(MAX_REPLY_BYTES);
        let mut stream = client
            .generate(request)
            .await
            .map_err(|e| error(e.message().to_string()))?
            .into_inner();
        while let Some(progress) = stream
            .message()
            .await
            .map_err(|e| error(e.message().to_string()))?
        {
            if let Some(ProgressEvent::Image(image)) = progress.event {
                return Ok(image);
            }
        }
        Err(error("the stream ended without an image".into()))
    }

    /// Every sample of `dataset` with its caption, stored image and codec
    /// reconstruction (its stored latent, decoded), in sample-id order.
    pub async fn references(&self, dataset: &str) -> Result<Vec<Reference>> {
        let dataset = self.dataset(dataset)?;
        let encodings = self.encodings();
        let mut references = Vec::new();
        for record in dataset.samples().await? {
            let caption = dataset.caption(&record).await?.unwrap_or_default();
            let image_key = Key::parse(&record.image_key)?;
            let original = decode_png(&self.ctx.store.get(&image_key).await?, &record.image_key)?;
            let latent_key = encodings.latent_key(&record.id, record.bucket)?;
            let reconstruction = self.decode_latent(&latent_key, &record).await?;
            references.push(Reference {
                record,
                caption,
                original,
                reconstruction,
            });
        }
        Ok(references)
    }

    async fn decode_latent(&self, key: &Key, record: &SampleRecord) -> Result<RgbImage> {
        let info = self.vae.codec().info();
        let (h, w) = record.bucket.latent_hw();
        let file = self.ctx.store.get_tensors(key).await?;
        let latent = file.require(LATENT_TENSOR, &[info.channels, h, w])?;
        let mut images = self
            .vae
            .codec()
            .decode(latent.data().to_vec(), [1, info.channels, h, w])
            .await
            .map_err(|e| Error::Image {
                what: format!("latent {key}"),
                reason: e.to_string(),
            })?;
        images.pop().ok_or_else(|| Error::Image {
            what: format!("latent {key}"),
            reason: "the codec decoded no image".into(),
        })
    }

    /// Stops every service (each finishes its work in progress) and reports
    /// the first that failed.
    pub async fn shutdown(self) -> Result<()> {
        self.shutdown.cancel();
        let mut first_error = None;
        for service in self.services {
            let outcome = match service.task.await {
                Ok(result) => result,
                Err(join) => Err(format!("task ended abnormally: {join}")),
            };
            if let Err(reason) = outcome {
                tracing::error!(service = service.name, %reason, "service failed");
                first_error.get_or_insert(Error::Service {
                    service: service.name,
                    reason,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Decodes PNG (or any image) bytes to RGB, naming `what` on failure.
pub fn decode_png(bytes: &[u8], what: &str) -> Result<RgbImage> {
    image::load_from_memory(bytes)
        .map(|image| image.to_rgb8())
        .map_err(|e| Error::Image {
            what: what.to_string(),
            reason: e.to_string(),
        })
}
