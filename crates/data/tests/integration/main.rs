//! Integration tests of image preparation: decoding, DPID downscaling, the real photos and bad inputs.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod decode;
mod dpid;
mod real_data;
