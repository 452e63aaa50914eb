//! The kernels themselves, on f32 ndarray arrays: forward and backward of
//! each operation, parallel over independent work items (rayon), each item
//! one cache-sized pass. Results do not depend on the number of threads.

pub(crate) mod attention;
pub(crate) mod depthwise;
mod exp;
mod gemm;
mod reduce;
pub(crate) mod rms_norm;
pub(crate) mod rope;
pub(crate) mod swiglu;
