//! The dispatcher: takes batches off the queue, runs each on the compute
//! thread, streams progress and delivers the images.
//!
//! Progress goes through each request's own bounded channel, sized for every
//! message the request will get, with `try_send` from the compute thread: a
//! slow or vanished client never blocks the batch. When every client of a
//! batch has gone, the batch stops at the next step. Every accepted request
//! gets an answer — its image, the error, or UNAVAILABLE at shutdown.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;
use ssdit_model::SingleStreamDiTConfig;
use ssdit_proto::v1::generate_progress::Event;
use ssdit_proto::v1::{GenerateProgress, GeneratedImage, ImageMetadata, SamplingStep};
use ssdit_server::{ComputeWorker, ServiceContext};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::checkpoint::{self, CheckpointId, ModelSource};
use crate::engine::Engine;
use crate::queue::{Pending, Queue, Reply};
use crate::{Error, Result};

/// Everything the dispatcher works with.
#[derive(Clone)]
pub struct Dispatcher {
    pub ctx: ServiceContext,
    pub engine: ComputeWorker<Engine>,
    pub queue: Arc<Queue>,
    /// The architecture of checkpoints without their own `config.json`.
    pub fallback: SingleStreamDiTConfig,
}

impl Dispatcher {
    /// Runs batches until `shutdown` is cancelled; the batch in progress is
    /// finished, the requests still waiting are answered UNAVAILABLE.
    pub async fn run(&self, shutdown: CancellationToken) {
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = self.queue.next_batch() => batch,
            };
            let Some(batch) = batch else { break };
            self.run_batch(batch).await;
        }
        let waiting = self.queue.close();
        if !waiting.is_empty() {
            tracing::info!(
                requests = waiting.len(),
                "answering waiting requests: shutting down"
            );
        }
        for pending in waiting {
            let _ = pending
                .reply
                .try_send(Err(Status::from(Error::ShuttingDown)));
        }
    }

    async fn run_batch(&self, batch: Vec<Pending>) {
        let started = Instant::now();
        let first = &batch[0].params;
        let (size, steps, width, height) = (batch.len(), first.steps, first.width, first.height);
        match self.generate(&batch).await {
            Ok((id, images)) => {
                tracing::info!(batch = size, steps, width, height, checkpoint = %id, ms = started.elapsed().as_millis() as u64, "generated");
                deliver(batch, &id, images).await;
            }
            Err(error) => {
                tracing::warn!(batch = size, %error, "generation failed");
                fail(&batch, error);
            }
        }
    }

    /// Generates `batch` with the model it names. A named checkpoint the
    /// compute thread does not hold is read, then built and used in one job,
    /// so a hot reload in between cannot take it away; a request naming the
    /// served checkpoint is answered by the served model.
    async fn generate(&self, batch: &[Pending]) -> Result<(CheckpointId, Vec<RgbImage>)> {
        match self.compute(batch, None).await {
            Err(Error::NotLoaded(id)) => {
                let source = checkpoint::fetch(&self.ctx.store, id, &self.fallback).await?;
                tracing::info!(checkpoint = %source.id, "loading a requested checkpoint");
                self.compute(batch, Some(source)).await
            }
            generated => generated,
        }
    }

    /// One job on the compute thread: keep `load` for named requests (when
    /// given), then generate `batch`.
    async fn compute(
        &self,
        batch: &[Pending],
        load: Option<ModelSource>,
    ) -> Result<(CheckpointId, Vec<RgbImage>)> {
        let target = batch[0].params.checkpoint.clone();
        let params: Vec<_> = batch.iter().map(|p| p.params.clone()).collect();
        let replies: Vec<Reply> = batch.iter().map(|p| p.reply.clone()).collect();
        self.engine
            .run(move |engine| {
                if let Some(source) = load {
                    engine.install_named(source)?;
                }
                engine.generate(&params, target.as_ref(), progress(replies))
            })
            .await?
    }
}

/// The progress callback of a batch: one step message per request; stop when
/// every client has gone.
fn progress(replies: Vec<Reply>) -> impl FnMut(&ssdit_flow::SampleProgress) -> ControlFlow<()> {
    move |p| {
        let step = SamplingStep {
            step: p.step as u32,
            total_steps: p.steps as u32,
            // The wire's convention is 1 = noise, 0 = image; the flow runs the other way.
            t: (1.0 - p.t) as f32,
        };
        for reply in &replies {
            let _ = reply.try_send(Ok(GenerateProgress {
                event: Some(Event::Step(step)),
            }));
        }
        if replies.iter().all(Reply::is_closed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Encodes the images as PNG and sends each request its own.
async fn deliver(batch: Vec<Pending>, id: &CheckpointId, images: Vec<RgbImage>) {
    let encoded = tokio::task::spawn_blocking(move || {
        images
            .iter()
            .map(ssdit_render::encode_png)
            .collect::<Vec<_>>()
    })
    .await;
    let encoded = match encoded {
        Ok(encoded) => encoded,
        Err(error) => {
            fail(
                &batch,
                Error::Compute(format!("png encoding task: {error}")),
            );
            return;
        }
    };
    for (pending, png) in batch.into_iter().zip(encoded) {
        let message = png.map_err(Error::from).map(|png| {
            let p = &pending.params;
            GenerateProgress {
                event: Some(Event::Image(GeneratedImage {
                    png: png.into(),
                    metadata: Some(ImageMetadata {
                        prompt: p.prompt.clone(),
                        negative_prompt: p.negative_prompt.clone(),
                        width: p.width,
                        height: p.height,
                        steps: p.steps as u32,
                        cfg: p.cfg as f32,
                        sampler: p.proto_sampler() as i32,
                        seed: p.seed,
                        shift: p.shift as f32,
                        checkpoint: id.to_string(),
                        elapsed_ms: pending.accepted.elapsed().as_millis() as u64,
                    }),
                })),
            }
        });
        let _ = pending.reply.try_send(message.map_err(Status::from));
    }
}

/// Answers every request of a batch with `error`.
fn fail(batch: &[Pending], error: Error) {
    let status = Status::from(error);
    for pending in batch {
        let _ = pending.reply.try_send(Err(status.clone()));
    }
}
