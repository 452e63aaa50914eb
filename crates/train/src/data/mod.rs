//! Training data: the manifest check, latents and embeddings in RAM (or
//! streamed), the seed's bucket batch order, and batch assembly with its
//! augmentations.

mod batch;
mod load;
mod order;

pub use batch::{Batch, BatchOptions, assemble};
pub use load::{
    EMBEDDING_TENSORS, LATENT_TENSORS, SampleMeta, SampleTensors, TrainingSet, check_manifest,
};
pub use order::{batches_per_epoch, epoch_batches};
