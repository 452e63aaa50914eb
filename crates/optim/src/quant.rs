//! Block-wise 8-bit storage of optimizer moments with a dynamic (log-scale)
//! code, after Dettmers et al., "8-bit Optimizers via Block-wise
//! Quantization" (ICLR 2022) and bitsandbytes' `create_dynamic_map`.
//!
//! A moment tensor is cut into blocks; each block keeps its absolute maximum
//! (f32) and one byte per element: the index of the nearest of 256 code
//! values in `[-1, 1]` (signed, first moment) or `[0, 1]` (unsigned, second
//! moment) after dividing by that maximum.
//!
//! Why a dynamic code rather than a linear one: Adam's second moment spans
//! many orders of magnitude inside one block (it is a mean of squared
//! gradients). A linear 8-bit code rounds everything below `absmax/255` to
//! zero, and a zero second moment turns the update `m/(√v + ε)` into `m/ε`.
//! The dynamic code spends its bits per decade instead: seven decades
//! (`1e-7 … 1` of the block maximum), finer towards 1 — the k-th decade from
//! the bottom holds 2ᵏ evenly spaced codes (signed map, per sign) or 2ᵏ⁺¹
//! (unsigned map, which needs no sign bit). Values within a decade of the
//! block maximum keep better than 1 % accuracy (of the maximum), and small
//! ones stay non-zero down to ~1e-7 of it, coarser the smaller they are.

use burn::prelude::*;
use burn::tensor::IntDType;

/// Number of decades the dynamic code spans below 1.
const DECADES: i32 = 7;

/// Which of the two dynamic codes a moment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signedness {
    /// Values in `[-1, 1]` (Adam's first moment).
    Signed,
    /// Values in `[0, 1]` (Adam's second moment).
    Unsigned,
}

/// The 256 code values of a dynamic map, ascending.
pub fn dynamic_code(signedness: Signedness) -> Vec<f32> {
    let mut code = vec![0.0f64, 1.0];
    for decade in 0..DECADES {
        let cells = match signedness {
            Signedness::Signed => 1usize << decade,
            Signedness::Unsigned => 1usize << (decade + 1),
        };
        let scale = 10f64.powi(decade - (DECADES - 1));
        // Midpoints of `cells` equal cells splitting [0.1, 1] of this decade.
        let width = 0.9 / cells as f64;
        for cell in 0..cells {
            let value = scale * (0.1 + width * (cell as f64 + 0.5));
            code.push(value);
            if signedness == Signedness::Signed {
                code.push(-value);
            }
        }
    }
    debug_assert_eq!(code.len(), 256);
    let mut code: Vec<f32> = code.into_iter().map(|v| v as f32).collect();
    code.sort_by(f32::total_cmp);
    code
}

/// Decision thresholds of a code: `t[k]` is the midpoint between codes
/// `k−1` and `k` (`t[0] = −∞`), so a value's nearest code is the largest `k`
/// with `t[k] ≤ value`.
fn thresholds(code: &[f32]) -> Vec<f32> {
    std::iter::once(f32::NEG_INFINITY)
        .chain(code.windows(2).map(|w| 0.5 * (w[0] + w[1])))
        .collect()
}

/// A flat tensor stored as one byte per element plus one f32 per block.
#[derive(Debug, Clone)]
pub struct QuantizedBlocks<B: Backend> {
    /// Code indices, `u8`, padded to whole blocks: `[blocks · block_size]`.
    pub codes: Tensor<B, 1, Int>,
    /// Per-block absolute maximum: `[blocks]`.
    pub absmax: Tensor<B, 1>,
    /// Elements before padding.
    pub len: usize,
    /// Elements per block.
    pub block_size: usize,
    /// Which code the indices refer to.
    pub signedness: Signedness,
}

impl<B: Backend> QuantizedBlocks<B> {
    /// Quantizes a flat tensor.
    ///
    /// # Shapes
    /// - `values`: `[N]`
    pub fn quantize(values: Tensor<B, 1>, block_size: usize, signedness: Signedness) -> Self {
        let [len] = values.dims();
        let device = values.device();
        let blocks = len.div_ceil(block_size).max(1);
        let padded = blocks * block_size;
        let values = if padded > len {
            Tensor::cat(vec![values, Tensor::zeros([padded - len], &device)], 0)
        } else {
            values
        };
        let values = values.reshape([blocks, block_size]); // [N] -> [blocks, block]
        let absmax = values.clone().abs().max_dim(1); // [blocks, 1]
        let empty = absmax.clone().equal_elem(0.0);
        let scale = absmax.clone().mask_fill(empty, 1.0);
        let normalized = (values / scale).reshape([padded]); // [padded]
        let code = dynamic_code(signedness);
        let bounds = Tensor::<B, 1>::from_floats(thresholds(&code).as_slice(), &device);
        let codes = nearest_code(normalized, bounds).cast(IntDType::U8);
        Self {
            codes,
            absmax: absmax.reshape([blocks]),
            len,
            block_size,
            signedness,
        }
    }

    /// Zeros of length `len` (as a fresh moment starts).
    pub fn zeros(
        len: usize,
        block_size: usize,
        signedness: Signedness,
        device: &Device<B>,
    ) -> Self {
        Self::quantize(Tensor::zeros([len], device), block_size, signedness)
    }

    /// The values the bytes stand for.
    ///
    /// # Shapes
    /// - returns `[len]`
    pub fn dequantize(&self) -> Tensor<B, 1> {
        let device = self.absmax.device();
        let [blocks] = self.absmax.dims();
        let code = Tensor::<B, 1>::from_floats(dynamic_code(self.signedness).as_slice(), &device);
        let index_dtype = IntDType::from(<B::IntElem as burn::tensor::Element>::dtype());
        let values = code.select(0, self.codes.clone().cast(index_dtype)); // [padded]
        let values =
            values.reshape([blocks, self.block_size]) * self.absmax.clone().reshape([blocks, 1]);
        values
            .reshape([blocks * self.block_size])
            .slice(0..self.len) // [len]
    }

    /// Bytes held on the device: one per (padded) element, four per block.
    pub fn bytes(&self) -> usize {
        let [blocks] = self.absmax.dims();
        blocks * self.block_size + 4 * blocks
    }
}

/// Index of the nearest code for each value in `[-1, 1]`, by an eight-step
/// binary search over the 256 thresholds (gathers only: runs on any device).
fn nearest_code<B: Backend>(values: Tensor<B, 1>, bounds: Tensor<B, 1>) -> Tensor<B, 1, Int> {
    let [n] = values.dims();
    let device = values.device();
    let mut index = Tensor::<B, 1, Int>::zeros([n], &device);
    for bit in (0..8).rev() {
        let candidate = index.clone().add_scalar(1 << bit);
        let bound = bounds.clone().select(0, candidate.clone());
        let above = values.clone().greater_equal(bound);
        index = index.mask_where(above, candidate);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    type B = NdArray<f32>;

    #[test]
    fn codes_are_256_distinct_values_in_range() {
        for (signedness, low) in [(Signedness::Signed, -1.0), (Signedness::Unsigned, 0.0)] {
            let code = dynamic_code(signedness);
            assert_eq!(code.len(), 256);
            assert!(
                code.windows(2).all(|w| w[0] < w[1]),
                "{signedness:?} not strictly ascending"
            );
            assert!(code[0] >= low && code[255] == 1.0);
            assert!(code.contains(&0.0));
            // Seven decades: the smallest positive code lies in [1e-7, 1e-6].
            let smallest = code
                .iter()
                .copied()
                .filter(|v| *v > 0.0)
                .fold(1.0, f32::min);
            assert!((1e-7..1e-6).contains(&smallest), "{smallest}");
        }
    }

    #[test]
    fn round_trip_keeps_small_values_non_zero_and_large_ones_accurate() {
        let device = Default::default();
        // Second-moment-like values spanning six decades in each block.
        let values: Vec<f32> = (0..512)
            .map(|i| 10f32.powf(-6.0 * (i % 97) as f32 / 96.0))
            .collect();
        let q = QuantizedBlocks::<B>::quantize(
            Tensor::from_floats(values.as_slice(), &device),
            256,
            Signedness::Unsigned,
        );
        let back = q.dequantize().into_data().to_vec::<f32>().unwrap();
        for (v, b) in values.iter().zip(&back) {
            // Within half a code cell: the k-th decade below 1 has 2^(7-k) cells.
            let decade = (-v.log10()).floor().clamp(0.0, 6.0) as i32;
            let cell = 0.9 * 10f32.powi(-decade) / 2f32.powi(7 - decade);
            assert!((v - b).abs() <= 0.5 * cell * 1.001, "{v} came back as {b}");
            assert!(*b > 0.0, "{v} came back as zero");
        }
    }

    #[test]
    fn quantization_picks_the_nearest_code_and_keeps_block_maxima() {
        let device = Default::default();
        let values = Tensor::<B, 1>::random([1000], Distribution::Normal(0.0, 1.0), &device);
        let q = QuantizedBlocks::quantize(values.clone(), 256, Signedness::Signed);
        assert_eq!(q.codes.dims(), [1024]);
        assert_eq!(q.bytes(), 1024 + 16);
        let codes: Vec<u8> = q.codes.clone().into_data().to_vec().unwrap();
        let absmax: Vec<f32> = q.absmax.clone().into_data().to_vec().unwrap();
        let original: Vec<f32> = values.into_data().to_vec().unwrap();
        let code = dynamic_code(Signedness::Signed);
        for (i, v) in original.iter().enumerate() {
            let x = v / absmax[i / 256];
            let best = code
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()))
                .unwrap()
                .0;
            let got = codes[i] as usize;
            assert!(
                (code[got] - x).abs() <= (code[best] - x).abs() + 1e-7,
                "element {i}: {x}"
            );
        }
        let back = q.dequantize().into_data().to_vec::<f32>().unwrap();
        assert_eq!(back.len(), 1000);
        for (block, max) in absmax.iter().enumerate() {
            let end = ((block + 1) * 256).min(1000);
            let got = back[block * 256..end]
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                (got - max).abs() <= 0.01 * max,
                "block {block}: {got} vs {max}"
            );
        }
    }

    #[test]
    fn zero_blocks_stay_zero() {
        let device = Default::default();
        let q = QuantizedBlocks::<B>::zeros(300, 256, Signedness::Unsigned, &device);
        let back = q.dequantize().into_data().to_vec::<f32>().unwrap();
        assert_eq!(back, vec![0.0; 300]);
    }
}
