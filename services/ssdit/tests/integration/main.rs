//! Integration tests of the `ssdit` binary: CLI, the demo, end-to-end runs embedded and distributed, fault tolerance, parity.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod cli;
mod config_cli;
mod demo;
mod distributed_e2e;
mod embedded;
mod embedded_e2e;
mod fault_tolerance;
mod generate_cli;
mod ingest_cli;
mod parity_cli;
mod run_cli;
mod tools_cli;
