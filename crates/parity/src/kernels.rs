//! The DiT's hot operations at the seed's sizes against our CPU kernels.
//!
//! The fixtures' models are small (hidden 64, a few dozen tokens), so they
//! cannot show a kernel that goes wrong only at real sizes: a tile boundary
//! at 912 tokens, a reduction over 768 channels. This check runs attention,
//! RMSNorm, SwiGLU, RoPE, the local bias's depthwise 3×3 convolution and the
//! Fourier filter's SiLU and DFT basis product with their backward passes at
//! the seed's shapes (batch 2, 784 image + 128 text tokens on a 28×28 grid,
//! 12 heads of 64, width 768, SwiGLU width 2048, 28 × 15 frequencies) on
//! the backend under test, in f32 and in the build's half precision, and
//! compares outputs and input gradients with the same operations on
//! `Autodiff<NdArray<f32>>` in f32 — ssdit-kernels' CPU kernels, which the
//! fixtures check. No folder: the inputs are seeded.

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Distribution, TensorData};

use crate::{Comparison, Report, Tolerance};

/// The reference: our CPU kernels with their backward passes, in f32.
type Reference = Autodiff<NdArray<f32>>;

/// Batch × tokens of the seed's training step at 448² (28×28 patches + 128
/// text tokens), two samples.
const ROWS: [usize; 2] = [2, 28 * 28 + 128];
const HEADS: usize = 12;
const HEAD_DIM: usize = 64;
const WIDTH: usize = HEADS * HEAD_DIM;
const SWIGLU_WIDTH: usize = 2048;
const RMS_EPS: f64 = 1e-6;
/// The image tokens' grid at 448² (8× VAE, 2×2 patches).
const GRID: [usize; 2] = [28, 28];
/// Frequencies the real DFT keeps along the grid's width.
const HALF_SPECTRUM: usize = GRID[1] / 2 + 1;
/// The Fourier filter MLP's hidden width, `⌊1.5·WIDTH⌋`.
const FOURIER_HIDDEN: usize = WIDTH * 3 / 2;

/// Largest relative L2 distance from the f32 reference: float32 summation
/// order in f32; one rounding of each input, product and output to 8 bits
/// of mantissa in bf16.
fn tolerance(dtype: DType) -> Tolerance {
    Tolerance {
        max_abs: None,
        max_rel_l2: Some(if dtype == DType::F32 { 1e-4 } else { 2e-2 }),
    }
}

/// Compares attention, RMSNorm, SwiGLU, RoPE, the depthwise convolution,
/// SiLU and the DFT basis product on `B`, computing in each of `dtypes`,
/// with the f32 reference.
pub fn check_on<B: AutodiffBackend>(device: &Device<B>, dtypes: &[DType]) -> Report {
    let mut report = Report::new(format!(
        "kernels at the seed's sizes (batch {}, {} tokens, {HEADS} heads of {HEAD_DIM}, \
         width {WIDTH}, SwiGLU {SWIGLU_WIDTH}, {}×{} grid) against the CPU kernels in f32",
        ROWS[0], ROWS[1], GRID[0], GRID[1]
    ));
    let [batch, tokens] = ROWS;
    let heads = [batch, HEADS, tokens, HEAD_DIM];
    let rows = [batch, tokens, WIDTH];
    let hidden = [batch, tokens, SWIGLU_WIDTH];
    let gamma = seeded([WIDTH], 0);
    let [cos, sin] = [seeded([tokens, HEAD_DIM], 8), seeded([tokens, HEAD_DIM], 9)];
    let grid = [batch, GRID[0] * GRID[1], WIDTH];
    let [kernel, bias] = [seeded([WIDTH, 1, 3, 3], 10), seeded([WIDTH], 11)];
    let spectrum = [batch, GRID[0] * HALF_SPECTRUM, FOURIER_HIDDEN];
    // The DFT over the grid's height: `(re, im)` of each row against each.
    let basis = seeded([2 * GRID[0], 2 * GRID[0]], 14);
    let columns = [batch, 2 * GRID[0], HALF_SPECTRUM * WIDTH];
    let on = Target { device, dtypes };
    compare::<B, 4, 3>(
        &mut report,
        "attention",
        [seeded(heads, 1), seeded(heads, 2), seeded(heads, 3)],
        &on,
        |[q, k, v]| ssdit_kernels::attention(q, k, v),
        |[q, k, v]| ssdit_kernels::attention(q, k, v),
    );
    compare::<B, 3, 1>(
        &mut report,
        "rms_norm",
        [seeded(rows, 4)],
        &on,
        |[x]| rms_norm(x, &gamma),
        |[x]| rms_norm(x, &gamma),
    );
    compare::<B, 3, 2>(
        &mut report,
        "swiglu",
        [seeded(hidden, 5), seeded(hidden, 6)],
        &on,
        |[gate, up]| ssdit_kernels::swiglu(gate, up),
        |[gate, up]| ssdit_kernels::swiglu(gate, up),
    );
    compare::<B, 4, 1>(
        &mut report,
        "rope",
        [seeded([batch, tokens, HEADS, HEAD_DIM], 12)],
        &on,
        |[x]| rope(x, &cos, &sin),
        |[x]| rope(x, &cos, &sin),
    );
    compare::<B, 3, 1>(
        &mut report,
        "depthwise_conv3x3",
        [seeded(grid, 13)],
        &on,
        |[x]| depthwise_conv3x3(x, &kernel, &bias),
        |[x]| depthwise_conv3x3(x, &kernel, &bias),
    );
    compare::<B, 3, 1>(
        &mut report,
        "silu",
        [seeded(spectrum, 15)],
        &on,
        |[x]| ssdit_kernels::silu(x),
        |[x]| ssdit_kernels::silu(x),
    );
    compare::<B, 3, 1>(
        &mut report,
        "apply_basis",
        [seeded(columns, 16)],
        &on,
        |[x]| apply_basis(x, &basis),
        |[x]| apply_basis(x, &basis),
    );
    report
}

/// RMSNorm of `x` with the scale `gamma`, in `x`'s dtype.
fn rms_norm<B: Backend>(x: Tensor<B, 3>, gamma: &TensorData) -> Tensor<B, 3> {
    let gamma = Tensor::<B, 1>::from_data(gamma.clone(), &x.device()).cast(x.dtype());
    ssdit_kernels::rms_norm(x, gamma, RMS_EPS)
}

/// `x` rotated by the tables `cos` and `sin`, in `x`'s dtype.
fn rope<B: Backend>(x: Tensor<B, 4>, cos: &TensorData, sin: &TensorData) -> Tensor<B, 4> {
    let [cos, sin] = [cos, sin]
        .map(|table| Tensor::<B, 2>::from_data(table.clone(), &x.device()).cast(x.dtype()));
    ssdit_kernels::rope(x, cos, sin)
}

/// The depthwise 3×3 convolution of the token grid `x`, in `x`'s dtype.
fn depthwise_conv3x3<B: Backend>(
    x: Tensor<B, 3>,
    kernel: &TensorData,
    bias: &TensorData,
) -> Tensor<B, 3> {
    let kernel = Tensor::<B, 4>::from_data(kernel.clone(), &x.device()).cast(x.dtype());
    let bias = Tensor::<B, 1>::from_data(bias.clone(), &x.device()).cast(x.dtype());
    ssdit_kernels::depthwise_conv3x3(x, kernel, bias, GRID)
}

/// The constant `basis` applied to every matrix of `x`, in `x`'s dtype.
fn apply_basis<B: Backend>(x: Tensor<B, 3>, basis: &TensorData) -> Tensor<B, 3> {
    let basis = Tensor::<B, 2>::from_data(basis.clone(), &x.device()).cast(x.dtype());
    ssdit_kernels::apply_basis(basis, x)
}

/// The backend under test: its device and the dtypes it computes in.
struct Target<'a, B: Backend> {
    device: &'a Device<B>,
    dtypes: &'a [DType],
}

/// Runs `reference_op` on the reference once and `op` on the target in each
/// of its dtypes, and pushes the output's and each input gradient's
/// comparison per dtype.
fn compare<B: AutodiffBackend, const D: usize, const N: usize>(
    report: &mut Report,
    name: &str,
    inputs: [TensorData; N],
    on: &Target<'_, B>,
    op: impl Fn([Tensor<B, D>; N]) -> Tensor<B, D>,
    reference_op: impl Fn([Tensor<Reference, D>; N]) -> Tensor<Reference, D>,
) {
    let weights = seeded(inputs[0].shape.clone(), 7);
    let (want, want_grads) = pass(
        &inputs,
        &weights,
        DType::F32,
        &Default::default(),
        reference_op,
    );
    for &dtype in on.dtypes {
        let (got, got_grads) = pass(&inputs, &weights, dtype, on.device, &op);
        let tolerance = tolerance(dtype);
        let label = |what: &str| format!("{name} {what} ({dtype:?})");
        report.push(Comparison::new(label("output"), &got, &want, tolerance));
        for (i, (got, want)) in got_grads.iter().zip(&want_grads).enumerate() {
            report.push(Comparison::new(
                label(&format!("d input {i}")),
                got,
                want,
                tolerance,
            ));
        }
    }
}

/// `op`'s f32 output on `inputs` cast to `dtype`, and the gradients of
/// `sum(output · weights)` with respect to each f32 input.
fn pass<B: AutodiffBackend, const D: usize, const N: usize>(
    inputs: &[TensorData; N],
    weights: &TensorData,
    dtype: DType,
    device: &Device<B>,
    op: impl Fn([Tensor<B, D>; N]) -> Tensor<B, D>,
) -> (TensorData, Vec<TensorData>) {
    let leaves: [Tensor<B, D>; N] =
        std::array::from_fn(|i| Tensor::from_data(inputs[i].clone(), device).require_grad());
    let output = op(leaves.clone().map(|leaf| leaf.cast(dtype))).cast(DType::F32);
    let weights = Tensor::<B, D>::from_data(weights.clone(), device);
    let grads = (output.clone() * weights).sum().backward();
    // A missing gradient compares as NaN: the check fails, it does not stop.
    let input_grads = leaves
        .iter()
        .zip(inputs)
        .map(|(leaf, input)| match leaf.grad(&grads) {
            Some(grad) => grad.into_data(),
            None => TensorData::new(vec![f32::NAN; input.num_elements()], input.shape.clone()),
        })
        .collect();
    (output.into_data(), input_grads)
}

/// Standard normal values of `shape`, the same for the same `seed`.
fn seeded(shape: impl Into<Shape>, seed: u64) -> TensorData {
    let shape = shape.into();
    let device = Default::default();
    NdArray::<f32>::seed(&device, seed);
    let values = Tensor::<NdArray<f32>, 1>::random(
        [shape.num_elements()],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .into_data();
    TensorData::new(values.to_vec::<f32>().expect("f32 values"), shape)
}
