//! Plumbing every ssdit service shares, written once:
//!
//! - [`grpc::serve`]: one function that wires a service's routes with gRPC
//!   health, reflection, optional bearer-token auth and TLS, and serves until
//!   shutdown (quickwit's `grpc.rs` pattern), and [`grpc::serve_alongside`]
//!   serving them beside a service's background work, both stopped together;
//! - [`ComputeWorker`]: a dedicated OS thread that owns a model, so model
//!   compute never holds the async executor;
//! - [`encode::EncodeWorker`]: the bus worker of an encoding stage
//!   (`SampleIngested` → a cached tensor file → the stage's event, then ack),
//!   generic over the stage's own steps;
//! - [`consume::consume`]: the fetch loop over a durable consumer that the
//!   encoding workers and the sampler's checkpoint follower run;
//! - [`ServiceContext`]: the configuration, object store and event bus a
//!   service works with, opened once;
//! - [`Startup`]: what a service process does before serving (logging,
//!   configuration and its [`ServiceArgs`], port, gRPC settings, store and
//!   bus), for the service binaries and `ssdit serve`;
//! - [`telemetry`] and [`shutdown`]: tracing set-up and SIGINT/SIGTERM, for
//!   binaries only (libraries never install handlers or read the environment).

mod auth;
mod compute;
pub mod consume;
pub mod context;
pub mod encode;
mod error;
pub mod grpc;
pub mod shutdown;
pub mod startup;
pub mod telemetry;

pub use auth::BearerAuthLayer;
pub use compute::{ComputeWorker, WorkerGone};
pub use context::{ServiceContext, listen, open_store};
pub use error::{Error, Result};
pub use startup::{ServiceArgs, ServiceName, Startup};
