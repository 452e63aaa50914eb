//! One AdamW update of a flattened parameter, in place, in blocks, one block
//! per task.

use rayon::prelude::*;

use crate::adamw::AdamWScalars;

/// Elements per task.
const BLOCK: usize = 16 * 1024;

/// The update's scalars in f32, as burn's scalar ops round them.
#[derive(Clone, Copy)]
struct Scalars {
    decay: Option<f32>,
    first_rate: f32,
    beta_2: f32,
    second_rate: f32,
    bias_correction_2_sqrt: f32,
    epsilon: f32,
    neg_step_size: f32,
}

impl From<&AdamWScalars> for Scalars {
    fn from(s: &AdamWScalars) -> Self {
        Self {
            decay: s.decay.map(|d| d as f32),
            first_rate: s.first_rate as f32,
            beta_2: s.beta_2 as f32,
            second_rate: s.second_rate as f32,
            bias_correction_2_sqrt: s.bias_correction_2_sqrt as f32,
            epsilon: s.epsilon as f32,
            neg_step_size: -s.step_size as f32,
        }
    }
}

/// Updates `param`, `exp_avg` and `exp_avg_sq` with `grad`, element by
/// element in the order of [`crate::adamw`]'s composite (so bit for bit the
/// same f32 results).
///
/// # Panics
/// When the four slices differ in length.
pub(crate) fn step(
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    scalars: &AdamWScalars,
) {
    let len = param.len();
    assert!(
        grad.len() == len && exp_avg.len() == len && exp_avg_sq.len() == len,
        "adamw: parameter, gradient and moments differ in length"
    );
    let s = Scalars::from(scalars);
    param
        .par_chunks_mut(BLOCK)
        .zip(grad.par_chunks(BLOCK))
        .zip(exp_avg.par_chunks_mut(BLOCK))
        .zip(exp_avg_sq.par_chunks_mut(BLOCK))
        .for_each(|(((param, grad), m), v)| {
            for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m).zip(v) {
                update(p, g, m, v, s);
            }
        });
}

fn update(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, s: Scalars) {
    if let Some(decay) = s.decay {
        *p *= decay;
    }
    *m += (g - *m) * s.first_rate;
    *v = *v * s.beta_2 + g * s.second_rate * g;
    let denom = v.sqrt() / s.bias_correction_2_sqrt + s.epsilon;
    *p += *m * s.neg_step_size / denom;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values as values;

    #[test]
    fn the_update_follows_adamw_in_f64() {
        let n = 3 * BLOCK + 17; // several tasks and a ragged last block
        let (p0, g) = (values(n, 1), values(n, 2));
        let m0 = values(n, 3);
        let v0: Vec<f32> = values(n, 4).iter().map(|x| x * x).collect();
        let scalars = AdamWScalars {
            decay: Some(1.0 - 1e-3 * 0.05),
            first_rate: 0.1,
            beta_2: 0.999,
            second_rate: 0.001,
            bias_correction_2_sqrt: (1.0f64 - 0.999f64.powi(3)).sqrt(),
            epsilon: 1e-8,
            step_size: 1e-3 / (1.0 - 0.9f64.powi(3)),
        };
        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
        step(&mut p, &g, &mut m, &mut v, &scalars);
        for i in 0..n {
            let (p0, g, m0, v0) = (p0[i] as f64, g[i] as f64, m0[i] as f64, v0[i] as f64);
            let m_want = 0.9 * m0 + 0.1 * g;
            let v_want = 0.999 * v0 + 0.001 * g * g;
            let denom = v_want.sqrt() / scalars.bias_correction_2_sqrt + 1e-8;
            let change = scalars.step_size * m_want / denom;
            let p_want = p0 * scalars.decay.unwrap() - change;
            assert!((m[i] as f64 - m_want).abs() < 1e-6, "m[{i}]");
            assert!((v[i] as f64 - v_want).abs() < 1e-6, "v[{i}]");
            let tolerance = 1e-5 * (1.0 + change.abs());
            assert!(
                (p[i] as f64 - p_want).abs() < tolerance,
                "p[{i}]: {} vs {p_want}",
                p[i]
            );
        }
    }
}
