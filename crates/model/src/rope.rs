//! The seed's 2-D rotary position embedding of the image tokens
//! (`create_2d_rope_grid` + the rotate-half `apply_rope` of `model.py`).
//!
//! For head size `d`, the `d/4` frequencies `1 / base^(4i/d)` rotate the
//! first half of each head by the token's row and column angles
//! `[row·f, col·f]` (`d/2` angles) against the second half:
//! `[x₁·cos − x₂·sin, x₁·sin + x₂·cos]`. Text tokens are not rotated.
//!
//! The tables are stored widened to the full head, `cos2 = [cos, cos]` and
//! `sin2 = [−sin, sin]`, so that `rope(x) = x·cos2 + swap_halves(x)·sin2`,
//! which is the seed's formula term for term (`a − b = a + (−b)` exactly).

use burn::prelude::*;

/// RoPE rotations of `tokens` positions, widened to the head size.
///
/// # Shapes
/// - `cos`, `sin`: `[tokens, head_dim]`
#[derive(Debug, Clone)]
pub(crate) struct RopeTable<B: Backend> {
    pub cos: Tensor<B, 2>,
    pub sin: Tensor<B, 2>,
}

/// The seed's RoPE angles for an `h × w` grid in row-major token order,
/// computed in f32 exactly as `create_2d_rope_grid` does:
/// `[h·w][head_dim/2]`, row angles then column angles.
pub(crate) fn angles(h: usize, w: usize, head_dim: usize, base: f64) -> Vec<f32> {
    let inv_freq: Vec<f32> = (0..head_dim)
        .step_by(4)
        .map(|i| 1.0 / (base as f32).powf(i as f32 / head_dim as f32))
        .collect();
    let mut out = Vec::with_capacity(h * w * 2 * inv_freq.len());
    for row in 0..h {
        for col in 0..w {
            out.extend(inv_freq.iter().map(|f| row as f32 * f));
            out.extend(inv_freq.iter().map(|f| col as f32 * f));
        }
    }
    out
}

impl<B: Backend> RopeTable<B> {
    /// The rotations of an `h × w` image-token grid.
    pub fn grid(h: usize, w: usize, head_dim: usize, base: f64, device: &Device<B>) -> Self {
        let half = head_dim / 2;
        let angles = angles(h, w, head_dim, base);
        let mut cos = Vec::with_capacity(h * w * head_dim);
        let mut sin = Vec::with_capacity(h * w * head_dim);
        for token in angles.chunks_exact(half) {
            let c: Vec<f32> = token.iter().map(|a| a.cos()).collect();
            let s: Vec<f32> = token.iter().map(|a| a.sin()).collect();
            cos.extend_from_slice(&c);
            cos.extend_from_slice(&c);
            sin.extend(s.iter().map(|v| -v));
            sin.extend_from_slice(&s);
        }
        let shape = [h * w, head_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }

    /// This table preceded by `text` unrotated positions (cos 1, sin 0), for
    /// a joint `[text, image]` sequence.
    pub fn with_text_prefix(&self, text: usize) -> Self {
        if text == 0 {
            return self.clone();
        }
        let [_, head_dim] = self.cos.dims();
        let prefix = (&self.cos.device(), self.cos.dtype());
        Self {
            cos: Tensor::cat(
                vec![Tensor::ones([text, head_dim], prefix), self.cos.clone()],
                0,
            ),
            sin: Tensor::cat(
                vec![Tensor::zeros([text, head_dim], prefix), self.sin.clone()],
                0,
            ),
        }
    }

    /// Rotates queries or keys, in their dtype.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, heads, head_dim]`
    /// - output: `[batch, tokens, heads, head_dim]`
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let dtype = x.dtype();
        ssdit_kernels::rope(
            x,
            self.cos.clone().cast(dtype),
            self.sin.clone().cast(dtype),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    /// The seed's `apply_rope`, written out per element.
    fn direct_rope(x: &[f32], angles: &[f32], head_dim: usize) -> Vec<f32> {
        let half = head_dim / 2;
        let mut out = vec![0.0; x.len()];
        for (token, (xs, ang)) in x
            .chunks_exact(head_dim)
            .zip(angles.chunks_exact(half))
            .enumerate()
        {
            for i in 0..half {
                let (x1, x2) = (xs[i], xs[i + half]);
                let (c, s) = (ang[i].cos(), ang[i].sin());
                out[token * head_dim + i] = x1 * c - x2 * s;
                out[token * head_dim + i + half] = x1 * s + x2 * c;
            }
        }
        out
    }

    #[test]
    fn angles_follow_rows_then_columns_on_a_non_square_grid() {
        let (h, w, d, base) = (3, 5, 8, 10_000.0);
        let angles = angles(h, w, d, base);
        assert_eq!(angles.len(), h * w * d / 2);
        let f1 = 1.0 / 10_000f32.powf(0.5);
        for row in 0..h {
            for col in 0..w {
                let token = &angles[(row * w + col) * 4..][..4];
                assert_eq!(token[0], row as f32, "the first frequency is 1");
                assert_eq!(token[1], row as f32 * f1);
                assert_eq!(token[2], col as f32);
                assert_eq!(token[3], col as f32 * f1);
            }
        }
    }

    #[test]
    fn rotation_matches_the_direct_formula_and_leaves_text_alone() {
        let device = Default::default();
        let (h, w, d, text) = (3, 5, 8, 2);
        let tokens = text + h * w;
        let values: Vec<f32> = (0..tokens * d)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let x =
            Tensor::<B, 4>::from_data(TensorData::new(values.clone(), [1, tokens, 1, d]), &device);
        let table = RopeTable::<B>::grid(h, w, d, 10_000.0, &device).with_text_prefix(text);
        let got = table.apply(x).into_data().to_vec::<f32>().unwrap();

        let (text_part, image_part) = values.split_at(text * d);
        assert_eq!(&got[..text * d], text_part, "text tokens are not rotated");
        let want = direct_rope(image_part, &angles(h, w, d, 10_000.0), d);
        for (i, (g, e)) in got[text * d..].iter().zip(&want).enumerate() {
            assert!((g - e).abs() <= 1e-6, "element {i}: {g} vs {e}");
        }
    }
}
