//! Integration tests of the event bus: the behaviour suite on the in-process bus and on NATS JetStream.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod memory;
mod nats;
