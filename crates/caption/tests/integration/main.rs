//! Integration tests of captioning: the flower captions and the vision-language model client.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod flowers;
mod vlm;
