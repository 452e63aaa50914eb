//! Real servers for integration tests, never mocks: [`NatsServer`] (a
//! private `nats-server -js`), [`S3Server`] (moto's S3-compatible server)
//! and [`ServiceProcess`] (an `ssdit serve …` or service binary), each on a
//! free loopback port, killed on drop. For fault tests: [`TcpProxy`] (a link
//! that can be cut and restored), [`BusProbe`] (counts read from the broker)
//! and [`Cluster`] (all of it wired into one configuration).
//!
//! The servers come from `.ci/install-test-deps.sh`; a missing one fails the
//! test with the install hint rather than skipping it.

pub mod cluster;
mod jetstream;
mod nats;
mod net;
mod process;
mod proxy;
mod s3;

pub use cluster::{Cluster, ClusterOptions};
pub use jetstream::{BusProbe, ConsumerCounts};
pub use nats::NatsServer;
pub use net::{free_port, wait_for_port};
pub use process::ServiceProcess;
pub use proxy::{ProxyCounts, TcpProxy};
pub use s3::S3Server;

/// What to run when a server binary is missing.
pub const INSTALL_HINT: &str = "run .ci/install-test-deps.sh";
