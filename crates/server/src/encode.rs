//! The bus worker of an encoding stage (the vae-encoder's latents, the
//! text-encoder's embeddings), written once: `SampleIngested` → a tensor
//! file at its deterministic cache key → the stage's event, then ack.
//!
//! [`EncodeWorker`] fetches batches from the stage's durable consumer and
//! decodes them; the stage ([`EncodeStage`]) checks each sample, then reads,
//! encodes and writes a batch in one forward pass; [`Replies`] answers every
//! sample (publish and ack, reject, or nak for a retry) and counts each
//! outcome ([`StatsSnapshot`]). A result is written before its event is
//! published and the message acked, so a crash between write and publish
//! never loses it.

mod replies;
mod stats;
mod worker;

pub use replies::{Replies, Sample};
pub use stats::StatsSnapshot;
pub use worker::{EncodeStage, EncodeWorker};
