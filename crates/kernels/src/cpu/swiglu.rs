//! The SwiGLU gate `silu(a) ⊙ b`, element-wise in blocks, one block per task.

use rayon::prelude::*;

use super::silu::{BLOCK, derivative, sigmoid};

/// The gradients of both inputs.
pub(crate) struct Gradients {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
}

/// `a·σ(a)·b`.
pub(crate) fn forward(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; a.len()];
    out.par_chunks_mut(BLOCK)
        .zip(a.par_chunks(BLOCK).zip(b.par_chunks(BLOCK)))
        .for_each(|(out, (a, b))| {
            for ((out, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *out = a * sigmoid(a) * b;
            }
        });
    out
}

/// `da = g·b·σ(a)·(1 + a·(1 − σ(a)))`, `db = g·a·σ(a)`.
pub(crate) fn backward(grad: &[f32], a: &[f32], b: &[f32]) -> Gradients {
    let mut da = vec![0.0; a.len()];
    let mut db = vec![0.0; a.len()];
    da.par_chunks_mut(BLOCK)
        .zip(db.par_chunks_mut(BLOCK))
        .zip(
            grad.par_chunks(BLOCK)
                .zip(a.par_chunks(BLOCK).zip(b.par_chunks(BLOCK))),
        )
        .for_each(|((da, db), (grad, (a, b)))| {
            for ((da, db), ((&g, &a), &b)) in da.iter_mut().zip(db).zip(grad.iter().zip(a).zip(b)) {
                let s = sigmoid(a);
                *da = g * b * derivative(a, s);
                *db = g * a * s;
            }
        });
    Gradients { a: da, b: db }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_follow_the_formulas_in_f64() {
        let a: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) / 6.0).collect();
        let b: Vec<f32> = (0..100)
            .map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0)
            .collect();
        let g: Vec<f32> = (0..100)
            .map(|i| ((i * 13) % 7) as f32 / 3.0 - 1.0)
            .collect();
        let out = forward(&a, &b);
        let grads = backward(&g, &a, &b);
        for i in 0..a.len() {
            let (a, b, g) = (a[i] as f64, b[i] as f64, g[i] as f64);
            let s = 1.0 / (1.0 + (-a).exp());
            assert!((out[i] as f64 - a * s * b).abs() < 1e-5);
            // Central differences of g·silu(a)·b.
            let f = |a: f64| g * a / (1.0 + (-a).exp()) * b;
            let numeric = (f(a + 1e-6) - f(a - 1e-6)) / 2e-6;
            assert!((grads.a[i] as f64 - numeric).abs() < 1e-4, "da[{i}]");
            assert!((grads.b[i] as f64 - g * a * s).abs() < 1e-5, "db[{i}]");
        }
    }
}
