//! RMSNorm over the last axis, `y = x · rsqrt(mean(x²) + eps) · w`, on
//! row-major rows, a fixed block of rows per task.

use rayon::prelude::*;

use super::reduce;

/// Rows per task: enough work to amortise a task, small enough to spread
/// a `[batch, heads, tokens, head_dim]` tensor over every core.
const ROWS_PER_TASK: usize = 64;

/// The normalised rows and each row's `rsqrt(mean(x²) + eps)`.
pub(crate) struct Forward {
    pub output: Vec<f32>,
    pub inv_rms: Vec<f32>,
}

/// The gradients of the input and of the weight.
pub(crate) struct Gradients {
    pub x: Vec<f32>,
    pub weight: Vec<f32>,
}

/// Normalises each `weight.len()`-long row of `x`.
pub(crate) fn forward(x: &[f32], weight: &[f32], eps: f32) -> Forward {
    let dim = weight.len();
    let mut output = vec![0.0; x.len()];
    let mut inv_rms = vec![0.0; x.len() / dim];
    output
        .par_chunks_mut(ROWS_PER_TASK * dim)
        .zip(inv_rms.par_chunks_mut(ROWS_PER_TASK))
        .zip(x.par_chunks(ROWS_PER_TASK * dim))
        .for_each(|((out, inv), x)| {
            for ((out, inv), x) in out.chunks_exact_mut(dim).zip(inv).zip(x.chunks_exact(dim)) {
                *inv = (reduce::dot(x, x) / dim as f32 + eps).sqrt().recip();
                for ((out, x), w) in out.iter_mut().zip(x).zip(weight) {
                    *out = x * *inv * w;
                }
            }
        });
    Forward { output, inv_rms }
}

/// With `x̂ = x·inv` and `g·w` the gradient reaching `x̂`:
/// `dx = inv·(g·w − x̂·mean(g·w·x̂))` per row, `dw = Σ_rows g·x̂`.
pub(crate) fn backward(grad: &[f32], x: &[f32], weight: &[f32], inv_rms: &[f32]) -> Gradients {
    let dim = weight.len();
    let mut dx = vec![0.0; x.len()];
    let partial_dw: Vec<Vec<f32>> = dx
        .par_chunks_mut(ROWS_PER_TASK * dim)
        .zip(grad.par_chunks(ROWS_PER_TASK * dim))
        .zip(x.par_chunks(ROWS_PER_TASK * dim))
        .zip(inv_rms.par_chunks(ROWS_PER_TASK))
        .map(|(((dx, grad), x), inv)| {
            let mut dw = vec![0.0; dim];
            let mut scaled = vec![0.0; dim]; // g·w
            let mut normed = vec![0.0; dim]; // x̂
            let rows = dx
                .chunks_exact_mut(dim)
                .zip(grad.chunks_exact(dim))
                .zip(x.chunks_exact(dim));
            for (((dx, grad), x), &inv) in rows.zip(inv) {
                for i in 0..dim {
                    normed[i] = x[i] * inv;
                    scaled[i] = grad[i] * weight[i];
                    dw[i] += grad[i] * normed[i];
                }
                let mean = reduce::dot(&scaled, &normed) / dim as f32;
                for i in 0..dim {
                    dx[i] = inv * (scaled[i] - normed[i] * mean);
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0.0; dim];
    for partial in &partial_dw {
        dw.iter_mut().zip(partial).for_each(|(sum, p)| *sum += p);
    }
    Gradients { x: dx, weight: dw }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values as values;

    #[test]
    fn normalises_rows_and_differentiates_like_finite_differences() {
        let (rows, dim, eps) = (3, 5, 1e-6);
        let x = values(rows * dim, 1);
        let w = values(dim, 2);
        let g = values(rows * dim, 3);
        let out = forward(&x, &w, eps);
        for (row, x_row) in out.output.chunks(dim).zip(x.chunks(dim)) {
            let rms = (x_row.iter().map(|v| v * v).sum::<f32>() / dim as f32 + eps).sqrt();
            for ((y, x), w) in row.iter().zip(x_row).zip(&w) {
                assert!((y - x / rms * w).abs() < 1e-6);
            }
        }
        // loss = Σ g·y; its derivative by central differences in f64.
        let loss = |x: &[f64], w: &[f64]| -> f64 {
            x.chunks(dim)
                .zip(g.chunks(dim))
                .map(|(x, g)| {
                    let rms =
                        (x.iter().map(|v| v * v).sum::<f64>() / dim as f64 + eps as f64).sqrt();
                    x.iter()
                        .zip(w)
                        .zip(g)
                        .map(|((x, w), g)| x / rms * w * *g as f64)
                        .sum::<f64>()
                })
                .sum()
        };
        let (x64, w64): (Vec<f64>, Vec<f64>) = (
            x.iter().map(|&v| v as f64).collect(),
            w.iter().map(|&v| v as f64).collect(),
        );
        let grads = backward(&g, &x, &w, &out.inv_rms);
        let h = 1e-6;
        for i in 0..x.len() {
            let (mut up, mut down) = (x64.clone(), x64.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up, &w64) - loss(&down, &w64)) / (2.0 * h);
            assert!(
                (grads.x[i] as f64 - numeric).abs() < 1e-4,
                "dx[{i}]: {} vs {numeric}",
                grads.x[i]
            );
        }
        for i in 0..dim {
            let (mut up, mut down) = (w64.clone(), w64.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&x64, &up) - loss(&x64, &down)) / (2.0 * h);
            assert!((grads.weight[i] as f64 - numeric).abs() < 1e-4, "dw[{i}]");
        }
    }
}
