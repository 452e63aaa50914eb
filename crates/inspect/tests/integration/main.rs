//! Integration tests of the inspection tools: dataset tools and training metrics.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod dataset_tools;
mod metrics;
