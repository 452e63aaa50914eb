//! `ssdit.v1.TextEncoderService.Encode`: prompts → embeddings, mask and
//! fingerprints, validated before any compute.
//!
//! - no prompts, an empty (or all-whitespace) prompt, a prompt over
//!   `encode.max_prompt_bytes` bytes, or a `max_length` outside
//!   `1..=`[`max_length_limit`] → INVALID_ARGUMENT;
//! - more than `encode.max_request_items` prompts → RESOURCE_EXHAUSTED.
//!
//! An overlong prompt is INVALID_ARGUMENT rather than RESOURCE_EXHAUSTED: it
//! is a property of the input alone, fixed by a documented limit, and
//! retrying never helps (the tokenizer would cut it at `max_length` tokens
//! anyway). RESOURCE_EXHAUSTED is kept for requests that exceed the server's
//! per-call capacity (too many prompts), as gRPC does for oversized messages.

use ssdit_core::Config;
use ssdit_proto::v1::text_encoder_service_server::{TextEncoderService, TextEncoderServiceServer};
use ssdit_proto::v1::{EncodeTextReply, EncodeTextRequest, Tensor};
use tonic::{Request, Response, Status};

use crate::model::TextWorker;
use crate::{Error, Result};

/// The longest `max_length` a request may ask for, given the configured one.
pub fn max_length_limit(config: &Config) -> usize {
    config.encode.max_text_length.max(1024)
}

/// The gRPC service over a text worker.
#[derive(Clone)]
pub struct TextGrpc {
    model: TextWorker,
    max_prompts: usize,
    max_prompt_bytes: usize,
    max_length: usize,
}

impl TextGrpc {
    /// The service for `model`, with the request limits of `config`.
    pub fn new(model: TextWorker, config: &Config) -> Self {
        Self {
            model,
            max_prompts: config.encode.max_request_items,
            max_prompt_bytes: config.encode.max_prompt_bytes,
            max_length: max_length_limit(config),
        }
    }

    /// The tonic server, with message size limits fitting the reply.
    pub fn into_server(self) -> TextEncoderServiceServer<Self> {
        let reply_bytes = self
            .max_prompts
            .saturating_mul(self.max_length)
            .saturating_mul(self.model.info().dim * 4 + 1)
            .saturating_add(1 << 20);
        let request_bytes = self
            .max_prompts
            .saturating_mul(self.max_prompt_bytes + 16)
            .saturating_add(1 << 20);
        TextEncoderServiceServer::new(self)
            .max_decoding_message_size(request_bytes)
            .max_encoding_message_size(reply_bytes)
    }

    /// Validates and runs an `Encode` request.
    pub async fn encode_request(&self, request: EncodeTextRequest) -> Result<EncodeTextReply> {
        let length = self.check(&request)?;
        let embeddings = self.model.encode(request.prompts, length).await?;
        if embeddings.values.iter().any(|v| !v.is_finite()) {
            return Err(Error::Internal(
                "the text encoder produced non-finite embeddings".into(),
            ));
        }
        let shape = [embeddings.n, embeddings.len, embeddings.dim];
        let info = self.model.info();
        Ok(EncodeTextReply {
            embeddings: Some(
                Tensor::from_f32(&embeddings.values, &shape)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            ),
            mask: Some(
                Tensor::from_u8(embeddings.mask, &shape[..2])
                    .map_err(|e| Error::Internal(e.to_string()))?,
            ),
            encoder_fingerprint: info.fingerprint.clone(),
            tokenizer_fingerprint: info.tokenizer_fingerprint.clone(),
        })
    }

    /// The token length to encode at, once the request is known to be valid.
    fn check(&self, request: &EncodeTextRequest) -> Result<usize> {
        let count = request.prompts.len();
        if count == 0 {
            return Err(Error::InvalidArgument("no prompts in the request".into()));
        }
        if count > self.max_prompts {
            return Err(Error::TooLarge(format!(
                "{count} prompts in one request, more than the limit of {}",
                self.max_prompts
            )));
        }
        for (index, prompt) in request.prompts.iter().enumerate() {
            if prompt.trim().is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "prompt {index} is empty (the unconditional embedding is all zeros; \
                     it needs no encoding)"
                )));
            }
            if prompt.len() > self.max_prompt_bytes {
                return Err(Error::InvalidArgument(format!(
                    "prompt {index} is {} bytes, more than the limit of {}",
                    prompt.len(),
                    self.max_prompt_bytes
                )));
            }
        }
        let length = request
            .max_length
            .map_or(self.model.info().max_length, |l| l as usize);
        if !(1..=self.max_length).contains(&length) {
            return Err(Error::InvalidArgument(format!(
                "max_length {length} is outside 1..={}",
                self.max_length
            )));
        }
        Ok(length)
    }
}

#[tonic::async_trait]
impl TextEncoderService for TextGrpc {
    async fn encode(
        &self,
        request: Request<EncodeTextRequest>,
    ) -> std::result::Result<Response<EncodeTextReply>, Status> {
        let request = request.into_inner();
        let started = std::time::Instant::now();
        let count = request.prompts.len();
        let reply = self.encode_request(request).await?;
        tracing::info!(
            prompts = count,
            ms = started.elapsed().as_millis() as u64,
            "text encode"
        );
        Ok(Response::new(reply))
    }
}
