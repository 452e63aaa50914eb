//! `ssdit.v1.SamplerService.Generate`: validated, queued (or refused at once
//! when the queue is full), then streamed — one `SamplingStep` per step, then
//! the PNG with the parameters actually used.

use std::sync::Arc;
use std::time::Instant;

use ssdit_core::Config;
use ssdit_proto::v1::sampler_service_server::{SamplerService, SamplerServiceServer};
use ssdit_proto::v1::{GenerateProgress, GenerateRequest};
use ssdit_store::Store;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::checkpoint;
use crate::queue::{Pending, Queue};
use crate::request::GenerateParams;
use crate::{Error, Result};

/// The gRPC service: validation and admission; the dispatcher does the rest.
#[derive(Clone)]
pub struct SamplerGrpc {
    config: Arc<Config>,
    store: Store,
    queue: Arc<Queue>,
}

impl SamplerGrpc {
    /// The service admitting requests into `queue`.
    pub(crate) fn new(config: Arc<Config>, store: Store, queue: Arc<Queue>) -> Self {
        Self {
            config,
            store,
            queue,
        }
    }

    /// The tonic server, with room for the largest PNG it may send.
    pub fn into_server(self) -> SamplerServiceServer<Self> {
        let side = self.config.sampler.max_side as usize;
        let reply_bytes = side
            .saturating_mul(side)
            .saturating_mul(4)
            .saturating_add(1 << 20);
        SamplerServiceServer::new(self).max_encoding_message_size(reply_bytes)
    }

    /// Validates a request and queues it; returns its stream of progress.
    pub async fn admit(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<std::result::Result<GenerateProgress, Status>>> {
        let params = GenerateParams::from_request(request, &self.config.sampler, rand::random())?;
        if let Some(id) = &params.checkpoint
            && !checkpoint::exists(&self.store, id).await?
        {
            return Err(Error::NotFound(format!("checkpoint {id} not found")));
        }
        let (reply, receiver) = mpsc::channel(params.steps + 2);
        self.queue.push(Pending {
            key: params.batch_key(),
            params,
            reply,
            accepted: Instant::now(),
        })?;
        Ok(receiver)
    }
}

#[tonic::async_trait]
impl SamplerService for SamplerGrpc {
    type GenerateStream = ReceiverStream<std::result::Result<GenerateProgress, Status>>;

    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> std::result::Result<Response<Self::GenerateStream>, Status> {
        let receiver = self
            .admit(request.into_inner())
            .await
            .inspect_err(|error| {
                tracing::debug!(%error, "generate refused");
            })?;
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
