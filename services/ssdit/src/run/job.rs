//! The whole job on a running [`Pipeline`]: ingest a folder, wait for the
//! encoders, train, then generate one image per training caption over gRPC
//! and measure it against the photo's codec reconstruction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use image::RgbImage;
use ssdit_dataset::{Bucket, DatasetStatus};
use ssdit_ingest::IngestReport;
use ssdit_inspect::metrics::{RgbF32, psnr};
use ssdit_proto::v1::{GenerateRequest, Sampler};
use ssdit_train::{Resume, RunRequest, TrainEvent};

use super::error::{Error, Result};
use super::pipeline::{Pipeline, Reference, Trained, decode_png};

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub dataset: String,
    /// The image folder (captions in `.txt` sidecars).
    pub images: PathBuf,
    /// The training run's id (its folder `runs/<run>/` in the store).
    pub run_id: String,
    /// Optimizer steps to train, at least (rounded up to whole epochs);
    /// `None` trains `train.epochs`.
    pub steps: Option<u64>,
    /// Stop training after this long (with a checkpoint) even if not done.
    pub time_limit: Option<Duration>,
    /// How long the encoders may take.
    pub encode_timeout: Duration,
    /// Noise seed of every generated image.
    pub seed: u64,
}

/// What the job reports as it goes (the command line draws it).
pub trait Observer {
    /// The folder was ingested.
    fn ingested(&mut self, _report: &IngestReport) {}
    /// The encoders' counts changed.
    fn encoding(&mut self, _status: &DatasetStatus) {}
    /// Training is about to start for `epochs` epochs of `steps_per_epoch` steps.
    fn training_planned(&mut self, _epochs: usize, _steps_per_epoch: u64) {}
    /// A training event.
    fn training(&mut self, _event: &TrainEvent) {}
    /// Image `index` of `total` was generated.
    fn generated(&mut self, _index: usize, _total: usize, _result: &SampleResult) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// One training caption's outcome.
#[derive(Debug, Clone)]
pub struct SampleResult {
    pub reference: Reference,
    /// The image `Generate` returned for the caption, at the photo's bucket size.
    pub generated: RgbImage,
    /// Its PNG bytes, as they came over gRPC.
    pub png: Vec<u8>,
    /// PSNR of the codec reconstruction against the stored image (dB).
    pub codec_psnr: f64,
    /// PSNR of the generated image against the codec reconstruction (dB).
    pub generated_psnr: f64,
}

/// Everything the job did.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub ingest: IngestReport,
    /// The dataset's counts once encoded.
    pub status: DatasetStatus,
    pub trained: Trained,
    pub results: Vec<SampleResult>,
}

/// Runs the whole job on `pipeline`; afterwards the sampler keeps serving
/// until the pipeline is shut down.
pub async fn run_job(
    pipeline: &mut Pipeline,
    spec: &JobSpec,
    observer: &mut dyn Observer,
) -> Result<JobOutcome> {
    let ingest = pipeline.ingest(&spec.dataset, &spec.images).await?;
    observer.ingested(&ingest);
    if ingest.accepted() + ingest.already_present() == 0 {
        return Err(Error::NothingIngested {
            folder: spec.images.clone(),
            rejected: ingest.rejected(),
        });
    }
    let status = pipeline
        .wait_encoded(&spec.dataset, spec.encode_timeout, |s| observer.encoding(s))
        .await?;
    let request = run_request(pipeline, spec).await?;
    observer.training_planned(
        request.train.epochs,
        steps_per_epoch(pipeline, &request).await?,
    );
    let trained = pipeline
        .train(request, spec.time_limit, |event| observer.training(event))
        .await?;
    pipeline
        .start_sampler(&spec.run_id, &trained.checkpoint)
        .await?;
    let references = pipeline.references(&spec.dataset).await?;
    let total = references.len();
    let mut results = Vec::with_capacity(total);
    for (index, reference) in references.into_iter().enumerate() {
        let result = generate_for(pipeline, reference, spec.seed).await?;
        observer.generated(index, total, &result);
        results.push(result);
    }
    Ok(JobOutcome {
        ingest,
        status,
        trained,
        results,
    })
}

/// The training request: the configuration's settings, a fresh run, and
/// enough epochs for `spec.steps` when given.
async fn run_request(pipeline: &Pipeline, spec: &JobSpec) -> Result<RunRequest> {
    let mut request = RunRequest::from_config(&spec.run_id, &spec.dataset, pipeline.config());
    request.resume = Resume::Fresh;
    if let Some(steps) = spec.steps {
        let per_epoch = steps_per_epoch(pipeline, &request).await?;
        request.train.epochs = usize::try_from(steps.div_ceil(per_epoch))
            .unwrap_or(usize::MAX)
            .max(1);
    }
    Ok(request)
}

/// Optimizer steps per epoch of the dataset's ready samples, as the trainer
/// counts them (full single-bucket batches, then gradient accumulation).
async fn steps_per_epoch(pipeline: &Pipeline, request: &RunRequest) -> Result<u64> {
    let dataset = pipeline.dataset(&request.dataset)?;
    let manifest = dataset.training_manifest(&pipeline.encodings()).await?;
    let buckets: BTreeMap<Bucket, Vec<usize>> = manifest
        .by_bucket()
        .into_iter()
        .map(|(bucket, samples)| (bucket, (0..samples.len()).collect()))
        .collect();
    let batches = ssdit_train::data::batches_per_epoch(&buckets, request.train.batch_size);
    let steps = (batches / request.train.accum_steps) as u64;
    if steps == 0 {
        return Err(Error::Training(format!(
            "dataset {}: no full batch of {} × {} samples in any bucket ({} samples ready)",
            request.dataset,
            request.train.batch_size,
            request.train.accum_steps,
            manifest.ready.len()
        )));
    }
    Ok(steps)
}

/// Generates the image of `reference`'s caption at its size and measures it.
async fn generate_for(
    pipeline: &Pipeline,
    reference: Reference,
    seed: u64,
) -> Result<SampleResult> {
    let bucket = reference.record.bucket;
    let generated = pipeline
        .generate(generate_request(pipeline, &reference.caption, bucket, seed))
        .await?;
    let image = decode_png(
        &generated.png,
        &format!("generated image of {:?}", reference.caption),
    )?;
    let codec_psnr = measure(&reference.reconstruction, &reference.original)?;
    let generated_psnr = measure(&image, &reference.reconstruction)?;
    Ok(SampleResult {
        reference,
        generated: image,
        png: generated.png.to_vec(),
        codec_psnr,
        generated_psnr,
    })
}

/// A `Generate` request for `prompt` at `bucket`'s size with the
/// configured sampler settings.
pub fn generate_request(
    pipeline: &Pipeline,
    prompt: &str,
    bucket: Bucket,
    seed: u64,
) -> GenerateRequest {
    let sampler = &pipeline.config().sampler;
    GenerateRequest {
        prompt: prompt.to_string(),
        width: Some(bucket.width),
        height: Some(bucket.height),
        steps: u32::try_from(sampler.steps).ok(),
        cfg: Some(sampler.cfg as f32),
        sampler: match sampler.sampler {
            ssdit_core::config::SamplerKind::Euler => Sampler::Euler,
            ssdit_core::config::SamplerKind::Rk4 => Sampler::Rk4,
        } as i32,
        seed: Some(seed),
        shift: Some(sampler.shift as f32),
        ..GenerateRequest::default()
    }
}

/// PSNR of `image` against `reference` in dB.
pub fn measure(image: &RgbImage, reference: &RgbImage) -> Result<f64> {
    psnr(&RgbF32::from_image(image), &RgbF32::from_image(reference)).map_err(|reason| {
        Error::Image {
            what: "psnr".into(),
            reason,
        }
    })
}
