//! `ssdit run`: the whole job in one process — every service on the
//! in-process bus and a local store: ingest a folder of captioned images,
//! wait for the latents and caption embeddings, train a small DiT on the CPU
//! for a bounded time, start the sampler on the trained checkpoint and
//! `Generate` one image per training caption over (loopback) gRPC, then draw
//! a contact sheet — original, codec reconstruction, generated — with the
//! PSNRs that show whether the model learned the photos.
//!
//! - [`pipeline`]: the services, running ([`Pipeline`]);
//! - [`job`]: the steps of the job on a pipeline ([`run_job`]);
//! - [`models`]: which models run, and the plain words about stand-ins;
//! - [`settings`]: the demo's settings when no configuration file is given;
//! - [`sheet`]: the contact sheet;
//! - [`cli`]: the command's flags and output.

pub mod cli;
mod error;
pub mod job;
pub mod models;
pub mod pipeline;
pub mod settings;
pub mod sheet;

pub use cli::{RunArgs, execute};
pub use error::{Error, Result};
pub use job::{JobOutcome, JobSpec, Observer, Quiet, SampleResult, run_job};
pub use pipeline::{Pipeline, Reference, Trained, TrainingStop};
