//! Migration from the seed's PyTorch files into ssdit's store.
//!
//! - [`import_seed_cache`]: the seed's `cached_data/*.pt` samples (latents,
//!   caption embeddings, bucket size; bf16 or f32) into a dataset, under
//!   encodings named after their origin, so a run trains on them; unreadable
//!   files become rejects with their reason.
//! - [`import_seed_checkpoint`]: an `ema_weights_epoch_N.pt` or
//!   `full_state_epoch_N.pt` into a run checkpoint in the trainer's format
//!   (model and EMA weights, AdamW moments when the seed used
//!   `torch.optim.AdamW`, position and schedule), which the sampler serves
//!   and the trainer resumes.
//! - [`torch`]: the bounded, validating `torch.save` reader both are built on
//!   (a restricted pickle interpreter that executes nothing).

pub mod cache;
pub mod checkpoint;
mod error;
pub mod optimizer;
pub mod sample;
pub mod torch;

pub use cache::{ImportSummary, SeedCacheOptions, import_seed_cache, seed_encoder_fingerprint};
pub use checkpoint::{
    CheckpointSummary, OptimizerImport, SeedCheckpointKind, SeedCheckpointOptions,
    import_seed_checkpoint,
};
pub use error::{Error, Result};
pub use sample::SeedSample;
