//! The global Fourier filter of each fusion block, with the 2-D real DFT done
//! as matrix products against cached bases (see DESIGN.md, "Fourier filter").
//!
//! The seed computes `rfft2(x, norm="ortho")` over the `h × w` token grid,
//! runs an MLP over the interleaved `(re, im)` of every frequency, and goes
//! back with `irfft2(·, s=(h, w), norm="ortho")`. Latent grids are not powers
//! of two (28×28, 32×24, …), so instead of an FFT each axis is one real
//! matrix product with a basis holding cos/sin for that size: exact for any
//! size (odd, non-square), differentiable with ordinary ops, and fast at these
//! sizes. Complex values travel as a `(re, im)` axis next to the transformed
//! one, so no product needs a transpose:
//!
//! - forward, over `w`: `[2·wf, w] @ x[B·h, w, C]` → `[B·h, (re|im, wf), C]`,
//!   where `wf = w/2 + 1`;
//! - forward, over `h`: `[2h, 2h] @ [B, (h, re|im), wf·C]` → `[B, (h, re|im), wf·C]`;
//! - inverse, over `h`: the inverse complex DFT, same layout;
//! - inverse, over `w`: `[w, 2·wf] @ [B·h, (re|im, wf), C]` → `[B·h, w, C]`,
//!   the real part of `Σₖ cₖ·Zₖ·e^{+2πikm/w}` with `c₀ = 1`, `c_{w/2} = 1`
//!   for even `w` and `cₖ = 2` otherwise, and the imaginary parts of bins 0
//!   and `w/2` ignored — exactly `torch.fft.irfft2` on any spectrum, Hermitian
//!   or not.
//!
//! Each basis carries its axis' `1/√n`, so the pair is `norm="ortho"`.

use std::f64::consts::PI;

use burn::module::{Initializer, Param};
use burn::nn::Linear;
use burn::prelude::*;

use crate::layers::{linear, project, torch_default_bias, xavier_uniform};
use ssdit_kernels::{apply_basis, reshape, silu, transpose_last, widened};

/// The real 2-D DFT of an `h × w` grid and its `irfft2` inverse, as bases.
#[derive(Debug, Clone)]
pub(crate) struct DftBases<B: Backend> {
    h: usize,
    w: usize,
    /// `[2·wf, w]`, rows `(re|im, k)`.
    forward_w: Tensor<B, 2>,
    /// `[2h, 2h]`, rows `(k, re|im)`, columns `(m, re|im)`.
    forward_h: Tensor<B, 2>,
    /// `[2h, 2h]`, rows `(m, re|im)`, columns `(k, re|im)`.
    inverse_h: Tensor<B, 2>,
    /// `[w, 2·wf]`, columns `(re|im, k)`.
    inverse_w: Tensor<B, 2>,
}

/// `(cos, sin)` of `2π·k·n/size`, with the angle reduced exactly first.
fn twiddle(k: usize, n: usize, size: usize) -> (f64, f64) {
    let angle = 2.0 * PI * ((k * n) % size) as f64 / size as f64;
    (angle.cos(), angle.sin())
}

/// Number of non-negative frequencies `rfft` keeps along an axis of `size`.
pub(crate) fn half_spectrum(size: usize) -> usize {
    size / 2 + 1
}

/// `[2·wf, w]`: row `k` holds `cos(2πkn/w)/√w`, row `wf + k` `−sin(…)/√w`.
fn forward_w_basis(w: usize) -> Vec<f64> {
    let wf = half_spectrum(w);
    let scale = 1.0 / (w as f64).sqrt();
    let mut basis = vec![0.0; 2 * wf * w];
    for k in 0..wf {
        for n in 0..w {
            let (c, s) = twiddle(k, n, w);
            basis[k * w + n] = c * scale;
            basis[(wf + k) * w + n] = -s * scale;
        }
    }
    basis
}

/// `[2h, 2h]` complex DFT over `h` acting on interleaved `(re, im)` rows;
/// `sign` −1 for the forward transform, +1 for the inverse.
fn complex_h_basis(h: usize, sign: f64) -> Vec<f64> {
    let scale = 1.0 / (h as f64).sqrt();
    let n = 2 * h;
    let mut basis = vec![0.0; n * n];
    for k in 0..h {
        for m in 0..h {
            let (c, s) = twiddle(k, m, h);
            let (c, s) = (c * scale, sign * s * scale);
            // (c + i·s)(re + i·im) = (c·re − s·im) + i(s·re + c·im)
            basis[(2 * k) * n + 2 * m] = c;
            basis[(2 * k) * n + 2 * m + 1] = -s;
            basis[(2 * k + 1) * n + 2 * m] = s;
            basis[(2 * k + 1) * n + 2 * m + 1] = c;
        }
    }
    basis
}

/// `[w, 2·wf]`: column `k` holds `cₖ·cos(2πkn/w)/√w`, column `wf + k`
/// `−cₖ·sin(2πkn/w)/√w`, with the sine of bins 0 and `w/2` exactly zero.
fn inverse_w_basis(w: usize) -> Vec<f64> {
    let wf = half_spectrum(w);
    let scale = 1.0 / (w as f64).sqrt();
    let mut basis = vec![0.0; w * 2 * wf];
    for n in 0..w {
        for k in 0..wf {
            let self_conjugate = k == 0 || (w.is_multiple_of(2) && k == w / 2);
            let weight = if self_conjugate { 1.0 } else { 2.0 } * scale;
            let (c, s) = twiddle(k, n, w);
            basis[n * 2 * wf + k] = weight * c;
            basis[n * 2 * wf + wf + k] = if self_conjugate { 0.0 } else { -weight * s };
        }
    }
    basis
}

fn to_tensor<B: Backend>(values: Vec<f64>, shape: [usize; 2], device: &Device<B>) -> Tensor<B, 2> {
    let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl<B: Backend> DftBases<B> {
    /// The bases of an `h × w` grid.
    pub fn new(h: usize, w: usize, device: &Device<B>) -> Self {
        let wf = half_spectrum(w);
        Self {
            h,
            w,
            forward_w: to_tensor(forward_w_basis(w), [2 * wf, w], device),
            forward_h: to_tensor(complex_h_basis(h, -1.0), [2 * h, 2 * h], device),
            inverse_h: to_tensor(complex_h_basis(h, 1.0), [2 * h, 2 * h], device),
            inverse_w: to_tensor(inverse_w_basis(w), [w, 2 * wf], device),
        }
    }

    /// `rfft2(x, norm="ortho")` over the token grid.
    ///
    /// # Shapes
    /// - x: `[batch, h·w, C]` (row-major grid)
    /// - output: `[batch, h, 2, wf, C]` (`[.., 0, ..]` real, `[.., 1, ..]` imaginary)
    pub fn rfft2(&self, x: Tensor<B, 3>) -> Tensor<B, 5> {
        let [batch, _, channels] = x.dims();
        let (h, w, wf) = (self.h, self.w, half_spectrum(self.w));
        let dtype = x.dtype();
        let rows = apply_basis(
            self.forward_w.clone().cast(dtype),
            reshape(x, [batch * h, w, channels]),
        ); // [B·h, 2·wf, C]
        let rows = reshape(rows, [batch, 2 * h, wf * channels]); // rows (m, re|im)
        let spectrum = apply_basis(self.forward_h.clone().cast(dtype), rows); // [B, 2h, wf·C], rows (k, re|im)
        reshape(spectrum, [batch, h, 2, wf, channels])
    }

    /// `irfft2(z, s=(h, w), norm="ortho")`, treating any spectrum as torch does.
    ///
    /// # Shapes
    /// - z: `[batch, h, 2, wf, C]`
    /// - output: `[batch, h·w, C]`
    pub fn irfft2(&self, z: Tensor<B, 5>) -> Tensor<B, 3> {
        let [batch, h, _, wf, channels] = z.dims();
        let w = self.w;
        let dtype = z.dtype();
        let columns = apply_basis(
            self.inverse_h.clone().cast(dtype),
            reshape(z, [batch, 2 * h, wf * channels]),
        ); // [B, 2h, wf·C], rows (m, re|im)
        let columns = reshape(columns, [batch * h, 2 * wf, channels]); // rows (re|im, k)
        let grid = apply_basis(self.inverse_w.clone().cast(dtype), columns); // [B·h, w, C]
        reshape(grid, [batch, h * w, channels])
    }
}

/// The seed's `FourierFilter`: `rfft2` → interleaved `(re, im)` per channel →
/// `freq_mlp` (Linear 2C→⌊1.5C⌋, SiLU, Linear→2C) → complex → `irfft2` →
/// `× tanh(gate)`.
///
/// # Shapes
/// - input: `[batch, h·w, C]`
/// - output: `[batch, h·w, C]`
#[derive(Module, Debug)]
pub(crate) struct FourierFilter<B: Backend> {
    pub freq_mlp: FreqMlp<B>,
    pub gate: Param<Tensor<B, 1>>,
}

/// `nn.Sequential(Linear, SiLU, Linear)`: the seed's indices 0 and 2 are
/// `linear_in` and `linear_out` (see `loader::key_map`).
#[derive(Module, Debug)]
pub(crate) struct FreqMlp<B: Backend> {
    pub linear_in: Linear<B>,
    pub linear_out: Linear<B>,
}

/// The seed's initial Fourier gate, `tanh(0.1) ≈ 0.0997` of the filter passes.
const INITIAL_GATE: f64 = 0.1;

impl<B: Backend> FourierFilter<B> {
    /// The seed's initialisation: `freq_mlp.0` Xavier-uniform weight and
    /// PyTorch's default bias, `freq_mlp.2` zero, gate 0.1.
    pub fn new(dim: usize, device: &Device<B>) -> Self {
        let hidden = dim * 3 / 2; // int(dim · 1.5)
        Self {
            freq_mlp: FreqMlp {
                linear_in: linear(
                    2 * dim,
                    hidden,
                    xavier_uniform(),
                    Some(torch_default_bias(2 * dim)),
                    device,
                ),
                linear_out: linear(
                    hidden,
                    2 * dim,
                    Initializer::Zeros,
                    Some(Initializer::Zeros),
                    device,
                ),
            },
            gate: Initializer::Constant {
                value: INITIAL_GATE,
            }
            .init([1], device),
        }
    }

    /// The transforms run in at least f32 (see [`widened`]), the MLP in
    /// `x`'s dtype.
    pub fn forward(&self, x: Tensor<B, 3>, dft: &DftBases<B>) -> Tensor<B, 3> {
        let [batch, _, channels] = x.dims();
        let (h, wf) = (dft.h, half_spectrum(dft.w));
        let dtype = x.dtype();
        let spectrum = dft.rfft2(x.cast(widened(dtype))).cast(dtype); // [B, h, 2, wf, C]
        let spectrum = transpose_last(reshape(spectrum, [batch * h, 2, wf * channels])); // [B·h, (wf, C), 2]
        let spectrum = reshape(spectrum, [batch, h * wf, 2 * channels]); // (re, im) interleaved per channel
        let hidden = silu(project(&self.freq_mlp.linear_in, spectrum));
        let filtered = project(&self.freq_mlp.linear_out, hidden); // [B, h·wf, 2C]
        let filtered = transpose_last(reshape(filtered, [batch * h, wf * channels, 2]));
        let filtered = reshape(filtered, [batch, h, 2, wf, channels]);
        let gate = self.gate.val().tanh().reshape([1, 1, 1]);
        dft.irfft2(filtered.cast(widened(dtype))).cast(dtype) * gate
    }

    /// The raw gate value (before `tanh`), as the seed logs it.
    pub fn gate_value(&self) -> f32 {
        self.gate.val().into_scalar().elem()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct C64 {
        re: f64,
        im: f64,
    }

    impl C64 {
        fn mul(self, o: Self) -> Self {
            Self {
                re: self.re * o.re - self.im * o.im,
                im: self.re * o.im + self.im * o.re,
            }
        }
        fn add(self, o: Self) -> Self {
            Self {
                re: self.re + o.re,
                im: self.im + o.im,
            }
        }
        fn expi(angle: f64) -> Self {
            Self {
                re: angle.cos(),
                im: angle.sin(),
            }
        }
    }

    const ZERO: C64 = C64 { re: 0.0, im: 0.0 };

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `rfft2(x, norm="ortho")` by the defining double sum, for one channel.
    fn naive_rfft2(x: &[f64], h: usize, w: usize) -> Vec<C64> {
        let wf = half_spectrum(w);
        let mut out = vec![ZERO; h * wf];
        for k1 in 0..h {
            for k2 in 0..wf {
                let mut acc = ZERO;
                for m in 0..h {
                    for n in 0..w {
                        let angle = -2.0
                            * PI
                            * (k1 as f64 * m as f64 / h as f64 + k2 as f64 * n as f64 / w as f64);
                        acc = acc.add(C64::expi(angle).mul(C64 {
                            re: x[m * w + n],
                            im: 0.0,
                        }));
                    }
                }
                out[k1 * wf + k2] = C64 {
                    re: acc.re / ((h * w) as f64).sqrt(),
                    im: acc.im / ((h * w) as f64).sqrt(),
                };
            }
        }
        out
    }

    /// `torch.fft.irfft2(z, s=(h, w), norm="ortho")` as torch defines it: a
    /// full inverse complex DFT over `h`, then along `w` each row is extended
    /// to a Hermitian spectrum (bins 0 and `w/2` taken as real, the rest
    /// mirrored as conjugates) and inverted with a full complex DFT.
    fn naive_irfft2(z: &[C64], h: usize, w: usize) -> Vec<f64> {
        let wf = half_spectrum(w);
        let mut rows = vec![ZERO; h * wf];
        for m in 0..h {
            for k2 in 0..wf {
                let mut acc = ZERO;
                for k1 in 0..h {
                    let angle = 2.0 * PI * (k1 * m) as f64 / h as f64;
                    acc = acc.add(C64::expi(angle).mul(z[k1 * wf + k2]));
                }
                rows[m * wf + k2] = acc;
            }
        }
        let mut out = vec![0.0; h * w];
        for m in 0..h {
            let mut full = vec![ZERO; w];
            for (k, bin) in full.iter_mut().enumerate() {
                *bin = if k < wf {
                    rows[m * wf + k]
                } else {
                    let mirror = rows[m * wf + (w - k)];
                    C64 {
                        re: mirror.re,
                        im: -mirror.im,
                    }
                };
            }
            full[0].im = 0.0;
            if w.is_multiple_of(2) {
                full[w / 2].im = 0.0;
            }
            for n in 0..w {
                let mut acc = ZERO;
                for (k, bin) in full.iter().enumerate() {
                    acc = acc.add(C64::expi(2.0 * PI * (k * n) as f64 / w as f64).mul(*bin));
                }
                out[m * w + n] = acc.re / ((h * w) as f64).sqrt();
            }
        }
        out
    }

    const GRIDS: [(usize, usize); 4] = [(3, 5), (4, 6), (5, 7), (6, 4)];
    const CHANNELS: usize = 3;

    fn assert_close(got: f64, want: f64, what: &str) {
        assert!((got - want).abs() <= 2e-5, "{what}: got {got}, want {want}");
    }

    #[test]
    fn forward_matches_the_naive_dft_on_odd_and_non_square_grids() {
        let device = Default::default();
        for (h, w) in GRIDS {
            let wf = half_spectrum(w);
            let x = values(2 * h * w * CHANNELS, (h * 10 + w) as u64);
            let dft = DftBases::<B>::new(h, w, &device);
            let input = Tensor::<B, 3>::from_data(
                TensorData::new(x.clone(), [2, h * w, CHANNELS]),
                &device,
            );
            let got = dft.rfft2(input).into_data().to_vec::<f32>().unwrap(); // [2, h, 2, wf, C]
            for b in 0..2 {
                for c in 0..CHANNELS {
                    let channel: Vec<f64> = (0..h * w)
                        .map(|t| x[(b * h * w + t) * CHANNELS + c] as f64)
                        .collect();
                    let want = naive_rfft2(&channel, h, w);
                    for k1 in 0..h {
                        for k2 in 0..wf {
                            let at = |part: usize| {
                                got[(((b * h + k1) * 2 + part) * wf + k2) * CHANNELS + c] as f64
                            };
                            let what = format!("{h}x{w} batch {b} channel {c} bin ({k1},{k2})");
                            assert_close(at(0), want[k1 * wf + k2].re, &what);
                            assert_close(at(1), want[k1 * wf + k2].im, &what);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn inverse_treats_a_non_hermitian_spectrum_like_torch() {
        let device = Default::default();
        for (h, w) in GRIDS {
            let wf = half_spectrum(w);
            // An arbitrary spectrum: imaginary DC and Nyquist bins, no symmetry over h.
            let z = values(h * 2 * wf * CHANNELS, (h * 100 + w) as u64);
            let dft = DftBases::<B>::new(h, w, &device);
            let input = Tensor::<B, 5>::from_data(
                TensorData::new(z.clone(), [1, h, 2, wf, CHANNELS]),
                &device,
            );
            let got = dft.irfft2(input).into_data().to_vec::<f32>().unwrap(); // [1, h·w, C]
            for c in 0..CHANNELS {
                let spectrum: Vec<C64> = (0..h * wf)
                    .map(|i| {
                        let (k1, k2) = (i / wf, i % wf);
                        let at = |part: usize| z[((k1 * 2 + part) * wf + k2) * CHANNELS + c] as f64;
                        C64 {
                            re: at(0),
                            im: at(1),
                        }
                    })
                    .collect();
                let want = naive_irfft2(&spectrum, h, w);
                for (t, want) in want.iter().enumerate() {
                    assert_close(
                        got[t * CHANNELS + c] as f64,
                        *want,
                        &format!("{h}x{w} channel {c} token {t}"),
                    );
                }
            }
        }
    }

    #[test]
    fn inverse_undoes_forward() {
        let device = Default::default();
        for (h, w) in GRIDS {
            let x = values(h * w * CHANNELS, 7);
            let dft = DftBases::<B>::new(h, w, &device);
            let input = Tensor::<B, 3>::from_data(
                TensorData::new(x.clone(), [1, h * w, CHANNELS]),
                &device,
            );
            let back = dft
                .irfft2(dft.rfft2(input))
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            for (i, (g, e)) in back.iter().zip(&x).enumerate() {
                assert_close(*g as f64, *e as f64, &format!("{h}x{w} element {i}"));
            }
        }
    }

    #[test]
    fn filter_with_a_zero_output_layer_is_zero_and_gate_is_logged_raw() {
        let device = Default::default();
        let filter = FourierFilter::<B>::new(4, &device);
        let dft = DftBases::<B>::new(3, 5, &device);
        let x =
            Tensor::<B, 3>::from_data(TensorData::new(values(2 * 15 * 4, 3), [2, 15, 4]), &device);
        let out = filter.forward(x, &dft);
        assert_eq!(out.dims(), [2, 15, 4]);
        assert_eq!(out.abs().max().into_scalar(), 0.0);
        assert!((filter.gate_value() - 0.1).abs() < 1e-7);
    }
}
