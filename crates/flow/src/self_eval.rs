//! Self-E: a consistency target from the model's own EMA teacher (the seed's
//! `USE_SELF_EVAL` branch of `train.py`).
//!
//! From the student's one-jump estimate `x̂₁ = x_t + (1−t)·v`, pick a later
//! time `s ~ U(t, 1)`, re-noise `x̂₁` to `x̂_s`, and let the EMA teacher jump
//! from there with guidance 1.5. The target mixes the data with the
//! teacher's correction, weighted by how far `s` is from `t` in noise-to-
//! signal terms, and is renormalised to the data's norm; the loss is the MSE
//! between `x̂₁` and that (gradient-free) target.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;

use crate::error::{Result, invalid};
use crate::guidance::{Guidance, VelocityModel, euler_to_one};
use crate::loss::Loss;
use crate::path::same_shape;

/// Constants of the Self-E target (the seed's values by default).
#[derive(Config, Debug)]
pub struct SelfEvalConfig {
    /// Guidance scale of the teacher's jump.
    #[config(default = 1.5)]
    pub teacher_cfg: f64,
    /// Upper clamp of the weight λ (its lower clamp is 0).
    #[config(default = 10.0)]
    pub max_weight: f64,
    /// Added to times in the noise-to-signal ratios `(1−t)/(t+ε)`.
    #[config(default = 1e-4)]
    pub ratio_epsilon: f64,
    /// Added to the target's norm before renormalising.
    #[config(default = 1e-6)]
    pub norm_epsilon: f64,
}

/// The random draws of one Self-E target, made explicit so a target can be
/// reproduced.
///
/// # Shapes
/// - `u`: `[B]` in `[0, 1)`, `noise`: `[B, C, H, W]`
#[derive(Debug, Clone)]
pub struct SelfEvalDraws<B: Backend> {
    /// Uniform draw placing `s = t + u·(1 − t)`.
    pub u: Tensor<B, 1>,
    /// Gaussian noise re-noising `x̂₁` to time `s`.
    pub noise: Tensor<B, 4>,
}

impl<B: Backend> SelfEvalDraws<B> {
    /// Fresh draws for a batch of latents of `shape`.
    pub fn sample(shape: [usize; 4], device: &Device<B>) -> Self {
        Self {
            u: Tensor::random([shape[0]], Distribution::Uniform(0.0, 1.0), device),
            noise: Tensor::random(shape, Distribution::Normal(0.0, 1.0), device),
        }
    }
}

/// The Self-E target for a (detached) student estimate `x̂₁`.
///
/// `teacher` is the EMA model, `text` the (possibly dropped-out) conditional
/// embedding, `data` the clean latent `x₁`.
///
/// # Shapes
/// - `x_hat_1`, `data`: `[B, C, H, W]`, `t`: `[B]`, `text`: `[B, L, D]` → `[B, C, H, W]`
pub fn self_eval_target<B: Backend, M: VelocityModel<B>>(
    teacher: &M,
    x_hat_1: Tensor<B, 4>,
    t: Tensor<B, 1>,
    data: Tensor<B, 4>,
    text: Tensor<B, 3>,
    draws: SelfEvalDraws<B>,
    config: &SelfEvalConfig,
) -> Result<Tensor<B, 4>> {
    same_shape("self-eval data", &x_hat_1, &data)?;
    same_shape("self-eval noise", &x_hat_1, &draws.noise)?;
    same_shape("self-eval uniform draw", &t, &draws.u)?;
    if config.max_weight.is_nan() || config.max_weight < 0.0 {
        return Err(invalid(
            "max_weight",
            format!("{} is not a non-negative number", config.max_weight),
        ));
    }
    let [batch, _, _, _] = x_hat_1.dims();
    let column = |v: Tensor<B, 1>| v.reshape([batch, 1, 1, 1]); // [B] -> [B, 1, 1, 1]

    let s = t.clone() + draws.u * t.clone().neg().add_scalar(1.0); // [B]
    let x_hat_s =
        column(s.clone().neg().add_scalar(1.0)) * draws.noise + column(s.clone()) * x_hat_1.clone();

    let guidance = Guidance::new(text, config.teacher_cfg)?;
    let teacher_jump = guidance.position_at_one(teacher, x_hat_s.clone(), s.clone());
    let x_self = x_hat_1 + (teacher_jump - x_hat_s);

    let ratio = |time: Tensor<B, 1>| {
        time.clone().neg().add_scalar(1.0) / time.add_scalar(config.ratio_epsilon)
    };
    let weight = column((ratio(t) - ratio(s)).clamp(0.0, config.max_weight));
    let raw = data.clone() + weight * x_self;

    let norm = |x: Tensor<B, 4>| x.reshape([batch as i32, -1]).square().sum_dim(1).sqrt(); // [B, 1]
    let factor = norm(data) / norm(raw.clone()).add_scalar(config.norm_epsilon);
    Ok(raw * factor.reshape([batch, 1, 1, 1]))
}

/// The Self-E loss `MSE(x̂₁, target)` with `x̂₁ = x_t + (1−t)·v_pred`.
///
/// Gradients flow into `v_pred` only: the target is computed on the inner
/// backend by the teacher and enters as a constant. The trainer adds
/// `λ_self · loss` (0.3 in the seed) to the velocity loss.
///
/// # Shapes
/// - `x_t`, `v_pred`, `data`: `[B, C, H, W]`, `t`: `[B]`, `text`: `[B, L, D]` → `[1]`
#[allow(clippy::too_many_arguments)]
pub fn self_eval_loss<AB, M>(
    teacher: &M,
    x_t: Tensor<AB, 4>,
    t: Tensor<AB, 1>,
    v_pred: Tensor<AB, 4>,
    data: Tensor<AB, 4>,
    text: Tensor<AB, 3>,
    draws: SelfEvalDraws<AB::InnerBackend>,
    config: &SelfEvalConfig,
) -> Result<Tensor<AB, 1>>
where
    AB: AutodiffBackend,
    M: VelocityModel<AB::InnerBackend>,
{
    same_shape("self-eval prediction", &x_t, &v_pred)?;
    let x_hat_1 = euler_to_one(x_t, t.clone(), v_pred);
    let target = self_eval_target(
        teacher,
        x_hat_1.clone().inner(),
        t.inner(),
        data.inner(),
        text.inner(),
        draws,
        config,
    )?;
    Ok(Loss::Mse.compute(x_hat_1, Tensor::from_inner(target)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    type B = NdArray<f32>;
    type AB = Autodiff<B>;

    /// A teacher whose velocity is `gain · mean(text)` everywhere.
    fn teacher<Bk: Backend>(
        gain: f64,
    ) -> impl Fn(Tensor<Bk, 4>, Tensor<Bk, 1>, Tensor<Bk, 3>) -> Tensor<Bk, 4> {
        move |x, _t, text| {
            let [b, c, h, w] = x.dims();
            let m = text.mean_dim(2).mean_dim(1).reshape([b, 1, 1, 1]);
            m.mul_scalar(gain).expand([b, c, h, w])
        }
    }

    fn values<const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
        let v: Vec<f32> = x.into_data().to_vec().unwrap();
        v.into_iter().map(f64::from).collect()
    }

    /// The seed's formula, written out in scalars for one sample.
    #[allow(clippy::too_many_arguments)]
    fn expected(
        x1h: &[f64],
        data: &[f64],
        noise: &[f64],
        t: f64,
        u: f64,
        v_c: f64,
        cfg: f64,
    ) -> Vec<f64> {
        let s = t + u * (1.0 - t);
        let x_s: Vec<f64> = noise
            .iter()
            .zip(x1h)
            .map(|(n, x)| (1.0 - s) * n + s * x)
            .collect();
        // Teacher: v_u = 0 (null text), v_c given; guided v = cfg·v_c.
        let jump: Vec<f64> = x_s.iter().map(|x| x + (1.0 - s) * cfg * v_c).collect();
        let x_self: Vec<f64> = x1h
            .iter()
            .zip(&jump)
            .zip(&x_s)
            .map(|((a, j), xs)| a + (j - xs))
            .collect();
        let ratio = |r: f64| (1.0 - r) / (r + 1e-4);
        let w = (ratio(t) - ratio(s)).clamp(0.0, 10.0);
        let raw: Vec<f64> = data.iter().zip(&x_self).map(|(d, x)| d + w * x).collect();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let factor = norm(data) / (norm(&raw) + 1e-6);
        raw.iter().map(|r| r * factor).collect()
    }

    #[test]
    fn target_follows_the_seed_formula() {
        let device = Default::default();
        let x1h = [0.3, -1.2, 0.7, 2.0];
        let data = [1.0, 0.5, -0.25, 0.1];
        let noise = [-0.4, 0.9, 1.1, -2.0];
        for (t, u) in [(0.2, 0.5), (0.6, 0.1), (0.001, 0.9)] {
            let draws = SelfEvalDraws {
                u: Tensor::<B, 1>::from_floats([u], &device),
                noise: Tensor::<B, 1>::from_floats(noise, &device).reshape([1, 1, 2, 2]),
            };
            let target = self_eval_target(
                &teacher::<B>(0.8),
                Tensor::<B, 1>::from_floats(x1h, &device).reshape([1, 1, 2, 2]),
                Tensor::from_floats([t], &device),
                Tensor::<B, 1>::from_floats(data, &device).reshape([1, 1, 2, 2]),
                Tensor::full([1, 3, 4], 2.0, &device),
                draws,
                &SelfEvalConfig::new(),
            )
            .unwrap();
            let want = expected(&x1h, &data, &noise, t, u, 0.8 * 2.0, 1.5);
            for (g, w) in values(target).iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-5 * w.abs().max(1.0),
                    "t={t} u={u}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn loss_gradient_reaches_the_prediction_but_not_the_target() {
        let device = Default::default();
        let shape = [2, 1, 2, 2];
        let x_t = Tensor::<AB, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let data = Tensor::<AB, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let v_pred =
            Tensor::<AB, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let t = Tensor::<AB, 1>::from_floats([0.3, 0.7], &device);
        let text = Tensor::<AB, 3>::ones([2, 3, 4], &device);
        let draws = SelfEvalDraws::<B>::sample(shape, &device);
        let config = SelfEvalConfig::new();
        let loss = self_eval_loss(
            &teacher::<B>(0.5),
            x_t.clone(),
            t.clone(),
            v_pred.clone(),
            data.clone(),
            text.clone(),
            draws.clone(),
            &config,
        )
        .unwrap();
        let grads = loss.backward();
        let grad = values(v_pred.grad(&grads).unwrap());

        let x_hat_1 = euler_to_one(x_t.inner(), t.clone().inner(), v_pred.inner());
        let target = self_eval_target(
            &teacher::<B>(0.5),
            x_hat_1.clone(),
            t.clone().inner(),
            data.inner(),
            text.inner(),
            draws,
            &config,
        )
        .unwrap();
        let [b, c, h, w] = shape;
        let n = (b * c * h * w) as f64;
        let remaining = t.inner().neg().add_scalar(1.0).reshape([b, 1, 1, 1]);
        let want = values((x_hat_1 - target) * remaining.mul_scalar(2.0 / n));
        for (g, w) in grad.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn rejects_mismatched_draws() {
        let device = Default::default();
        let draws = SelfEvalDraws::<B>::sample([1, 1, 2, 3], &device);
        let result = self_eval_target(
            &teacher::<B>(1.0),
            Tensor::zeros([1, 1, 2, 2], &device),
            Tensor::zeros([1], &device),
            Tensor::zeros([1, 1, 2, 2], &device),
            Tensor::zeros([1, 3, 4], &device),
            draws,
            &SelfEvalConfig::new(),
        );
        assert!(result.is_err());
    }
}
