//! SiLU `a·σ(a)`, element-wise in blocks, one block per task; its sigmoid
//! and derivative also serve the SwiGLU gate.

use rayon::prelude::*;

use super::exp::exp;

/// Elements per task.
pub(super) const BLOCK: usize = 16 * 1024;

pub(super) fn sigmoid(a: f32) -> f32 {
    (1.0 + exp(-a)).recip()
}

/// `silu'(a) = σ(a)·(1 + a·(1 − σ(a)))`, given `s = σ(a)`.
pub(super) fn derivative(a: f32, s: f32) -> f32 {
    s * (1.0 + a * (1.0 - s))
}

/// `a·σ(a)`.
pub(crate) fn forward(a: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; a.len()];
    out.par_chunks_mut(BLOCK)
        .zip(a.par_chunks(BLOCK))
        .for_each(|(out, a)| {
            for (out, &a) in out.iter_mut().zip(a) {
                *out = a * sigmoid(a);
            }
        });
    out
}

/// `da = g·silu'(a)`.
pub(crate) fn backward(grad: &[f32], a: &[f32]) -> Vec<f32> {
    let mut da = vec![0.0; a.len()];
    da.par_chunks_mut(BLOCK)
        .zip(grad.par_chunks(BLOCK).zip(a.par_chunks(BLOCK)))
        .for_each(|(da, (grad, a))| {
            for (da, (&g, &a)) in da.iter_mut().zip(grad.iter().zip(a)) {
                *da = g * derivative(a, sigmoid(a));
            }
        });
    da
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_follow_the_formulas_in_f64() {
        // Past ±87 the exponential saturates: σ is then exactly 0 or 1.
        let a: Vec<f32> = (0..241).map(|i| (i as f32 - 120.0) * 0.75).collect();
        let g: Vec<f32> = (0..241)
            .map(|i| ((i * 13) % 7) as f32 / 3.0 - 1.0)
            .collect();
        let out = forward(&a);
        let da = backward(&g, &a);
        for i in 0..a.len() {
            let (a, g) = (a[i] as f64, g[i] as f64);
            let silu = |a: f64| a / (1.0 + (-a).exp());
            assert!(
                (out[i] as f64 - silu(a)).abs() < 1e-5 * (1.0 + a.abs()),
                "out[{i}]"
            );
            let numeric = g * (silu(a + 1e-6) - silu(a - 1e-6)) / 2e-6;
            assert!((da[i] as f64 - numeric).abs() < 1e-4, "da[{i}]");
        }
    }
}
