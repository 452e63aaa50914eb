//! Fused kernels for the operations that dominate the DiT on the CPU:
//! scaled dot-product attention, RMSNorm, rotary position embedding, SiLU,
//! the SwiGLU gate and the local spatial bias (a depthwise 3×3 convolution),
//! the adaLN modulation and gated residuals (`y ⊙ scale + offset`), each
//! forward and backward, the linear layers' products (backward without
//! transposed copies), the Fourier filters' DFT bases applied without
//! copies, batched transposes and reshapes without copies, and the dropout
//! mask and the AdamW update of the training step.
//!
//! burn's NdArray backend runs these as a chain of single-threaded
//! element-wise passes, one allocation each, and its autodiff records every
//! pass; for attention that chain streams the `tokens × tokens` score
//! matrices through memory a dozen times per step. Here each operation is
//! one pass over cache-sized blocks, on every core, with a hand-written
//! backward pass.
//!
//! Every function here is generic over the backend and computes the same
//! operation everywhere: on `NdArray` (f32 tensors) and `Autodiff<NdArray>`
//! it runs the CPU kernels of this crate; on any other backend or dtype
//! (CUDA, f64, bf16, the other autodiff strategies) it composes the
//! operation from burn's tensor ops, which those backends fuse themselves.
//! Three exceptions: on CUDA's autodiff (and Flex's, with the `flex` feature
//! the tests turn on) attention records a backward pass that recomputes its
//! probabilities instead of holding them ([`attention_recomputed`]), and
//! RMSNorm one that holds its input and inverse RMS instead of an f32 copy
//! and the normalised rows ([`rms_norm_recorded`]), and the SwiGLU gate one
//! that holds its two inputs only ([`swiglu_recorded`]).

mod adamw;
mod attention;
mod basis;
mod cpu;
mod depthwise;
mod dropout;
mod elementwise;
mod graph;
mod linear;
mod recomputed;
mod reshape;
mod rms_norm;
mod rope;
mod route;
mod scale_add;
mod silu;
mod swiglu;
mod transpose;

pub use adamw::{AdamWScalars, AdamWState, adamw_step};
pub use attention::attention;
pub use basis::apply_basis;
pub use cpu::gemm::MatrixProduct;
pub use depthwise::depthwise_conv3x3;
pub use dropout::dropout;
pub use linear::linear;
pub use recomputed::attention_recomputed;
pub use reshape::reshape;
pub use rms_norm::{rms_norm, rms_norm_recorded, widened};
pub use rope::rope;
pub use scale_add::scale_add;
pub use silu::silu;
pub use swiglu::{swiglu, swiglu_recorded};
pub use transpose::transpose_last;
