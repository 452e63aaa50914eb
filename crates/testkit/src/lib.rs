//! Real servers for integration tests, never mocks: [`NatsServer`] (a
//! private `nats-server -js`), [`S3Server`] (moto's S3-compatible server)
//! and [`ServiceProcess`] (an `ssdit serve …` or service binary), each on a
//! free loopback port, killed on drop. For fault tests: [`TcpProxy`] (a link
//! that can be cut and restored), [`BusProbe`] (counts read from the broker)
//! and [`Cluster`] (all of it wired into one configuration).
//!
//! For tests of one service in this process: [`memory_context`] and
//! [`Served`] (the service on a free port until stopped), [`store_sample`]
//! (a sample as ingest leaves it), and [`publish`], [`observer`],
//! [`collect`], [`assert_quiet`] and [`assert_all_acked`] on the event bus.
//! Inputs: [`shared_data`] (the sample photos, captions and bad inputs;
//! [`PHOTOS`] describes the photos) and [`ChatEndpoint`] (a scripted
//! OpenAI-compatible endpoint standing in for a vision-language model).
//!
//! The servers come from `.ci/install-test-deps.sh`; a missing one fails the
//! test with the install hint rather than skipping it.

mod chat_endpoint;
pub mod cluster;
mod events;
mod in_process;
mod jetstream;
mod nats;
mod net;
mod process;
mod proxy;
mod s3;
mod samples;
mod shared_data;

pub use chat_endpoint::{ChatEndpoint, ChatReply, ChatRequest};
pub use cluster::{Cluster, ClusterOptions};
pub use events::{assert_all_acked, assert_quiet, collect, observer, publish};
pub use in_process::{Served, StopSignal, memory_context};
pub use jetstream::{BusProbe, ConsumerCounts};
pub use nats::NatsServer;
pub use net::{free_port, wait_for_port};
pub use process::ServiceProcess;
pub use proxy::{ProxyCounts, TcpProxy};
pub use s3::S3Server;
pub use samples::{sample_id, store_sample};
pub use shared_data::{PHOTOS, SamplePhoto, shared_data};

/// What to run when a server binary is missing.
pub const INSTALL_HINT: &str = "run .ci/install-test-deps.sh";
