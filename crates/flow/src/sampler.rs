//! Flow-matching ODE samplers: Euler and classic fourth-order Runge–Kutta,
//! integrating `dx/dt = v(x, t)` from noise at `t = 0` to data at `t = 1`.
//!
//! The grid is `t_i = shift(i / steps)`, `dt_i = t_{i+1} − t_i` (with no
//! shift: `t_i = i/steps`, `dt = 1/steps`). RK4 evaluates `k2`, `k3` at
//! `t + dt/2` and `k4` at `t + dt` — the classic method, as pinned by the
//! `sampler/` fixture (the seed's `rk4_step` passed the midpoint time to `k4`
//! too; that was a bug, not a method).

use std::ops::ControlFlow;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};
use crate::guidance::{Guidance, VelocityModel};
use crate::time::{schedule, validate_shift};

/// The integration method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SamplerMethod {
    /// One guided model evaluation per step.
    #[default]
    Euler,
    /// Classic RK4: four guided evaluations per step.
    Rk4,
}

impl SamplerMethod {
    /// Guided model evaluations (forward passes) per step.
    pub fn evaluations_per_step(self) -> usize {
        match self {
            Self::Euler => 1,
            Self::Rk4 => 4,
        }
    }
}

/// How to sample: method, number of steps, guidance scale and time shift.
#[derive(Config, Debug)]
pub struct SamplerConfig {
    /// Integration method.
    #[config(default = "SamplerMethod::Euler")]
    pub method: SamplerMethod,
    /// Number of integration steps (the seed's inference default: 50).
    #[config(default = 50)]
    pub steps: usize,
    /// Classifier-free guidance scale (the seed's validation default: 3.0).
    #[config(default = 3.0)]
    pub cfg: f64,
    /// Time shift applied to the grid (1.0: uniform, as the seed samples).
    #[config(default = 1.0)]
    pub shift: f64,
}

impl SamplerConfig {
    /// Checks every field's domain.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(invalid("steps", "at least one sampling step is needed"));
        }
        if !self.cfg.is_finite() {
            return Err(invalid("cfg", format!("scale {} is not finite", self.cfg)));
        }
        validate_shift(self.shift)
    }
}

/// Where a running sampler is, reported after every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleProgress {
    /// Steps completed (1-based).
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// The time the latent has reached.
    pub t: f64,
}

/// Samples latents from noise with a velocity model.
#[derive(Debug, Clone)]
pub struct Sampler {
    method: SamplerMethod,
    times: Vec<f64>,
    cfg: f64,
}

impl Sampler {
    /// A sampler for a validated configuration.
    pub fn new(config: &SamplerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            method: config.method,
            times: schedule(config.steps, config.shift),
            cfg: config.cfg,
        })
    }

    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.times.len() - 1
    }

    /// The guidance scale the sampler expects its [`Guidance`] to carry.
    pub fn cfg(&self) -> f64 {
        self.cfg
    }

    /// Guidance for `cond` against the null embedding at this sampler's scale.
    pub fn guidance<B: Backend>(&self, cond: Tensor<B, 3>) -> Result<Guidance<B>> {
        Guidance::new(cond, self.cfg)
    }

    /// Integrates from the noise `x0` to `t = 1` and returns the latent.
    ///
    /// `progress` runs after every step; returning `ControlFlow::Break`
    /// stops sampling with [`Error::Cancelled`].
    ///
    /// # Shapes
    /// - `x0`: `[B, C, H, W]` with `B = guidance.batch()` → `[B, C, H, W]`
    pub fn sample<B, M, F>(
        &self,
        model: &M,
        x0: Tensor<B, 4>,
        guidance: &Guidance<B>,
        mut progress: F,
    ) -> Result<Tensor<B, 4>>
    where
        B: Backend,
        M: VelocityModel<B>,
        F: FnMut(&SampleProgress) -> ControlFlow<()>,
    {
        let [batch, _, _, _] = x0.dims();
        if batch != guidance.batch() {
            return Err(Error::ShapeMismatch {
                what: "noise batch vs text batch",
                expected: vec![guidance.batch()],
                found: vec![batch],
            });
        }
        let device = x0.device();
        let steps = self.steps();
        let mut x = x0;
        for (i, window) in self.times.windows(2).enumerate() {
            let (t, dt) = (window[0], window[1] - window[0]);
            let v = |x: Tensor<B, 4>, at: f64| {
                guidance.velocity(model, x, Tensor::full([batch], at, &device))
            };
            x = match self.method {
                SamplerMethod::Euler => euler_step(x, t, dt, v),
                SamplerMethod::Rk4 => rk4_step(x, t, dt, v),
            };
            let report = SampleProgress {
                step: i + 1,
                steps,
                t: window[1],
            };
            tracing::trace!(step = report.step, steps, t = report.t, "sampler step");
            if progress(&report).is_break() {
                return Err(Error::Cancelled {
                    completed: i + 1,
                    steps,
                });
            }
        }
        Ok(x)
    }
}

/// `x + v(x, t)·dt`.
fn euler_step<B: Backend>(
    x: Tensor<B, 4>,
    t: f64,
    dt: f64,
    v: impl Fn(Tensor<B, 4>, f64) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    let k1 = v(x.clone(), t);
    x + k1.mul_scalar(dt)
}

/// `x + dt/6·(k1 + 2k2 + 2k3 + k4)` with k2, k3 at `t + dt/2` and k4 at `t + dt`.
fn rk4_step<B: Backend>(
    x: Tensor<B, 4>,
    t: f64,
    dt: f64,
    v: impl Fn(Tensor<B, 4>, f64) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    let mid = t + 0.5 * dt;
    let k1 = v(x.clone(), t);
    let k2 = v(x.clone() + k1.clone().mul_scalar(0.5 * dt), mid);
    let k3 = v(x.clone() + k2.clone().mul_scalar(0.5 * dt), mid);
    let k4 = v(x.clone() + k3.clone().mul_scalar(dt), t + dt);
    let sum = k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4;
    x + sum.mul_scalar(dt / 6.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    /// v = a·x + b·t^p, independent of the text (so guidance is a no-op).
    fn field(
        a: f64,
        b: f64,
        p: i32,
    ) -> impl Fn(Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) -> Tensor<B, 4> {
        move |x, t, _text| {
            let [n] = t.dims();
            x.mul_scalar(a) + t.powi_scalar(p).mul_scalar(b).reshape([n, 1, 1, 1])
        }
    }

    fn run(method: SamplerMethod, steps: usize, shift: f64, model: impl VelocityModel<B>) -> f64 {
        let device = Default::default();
        let config = SamplerConfig::new()
            .with_method(method)
            .with_steps(steps)
            .with_cfg(3.0)
            .with_shift(shift);
        let sampler = Sampler::new(&config).unwrap();
        let guidance = sampler
            .guidance(Tensor::<B, 3>::ones([1, 2, 3], &device))
            .unwrap();
        let x0 = Tensor::<B, 4>::ones([1, 1, 1, 1], &device);
        let x = sampler
            .sample(&model, x0, &guidance, |_| ControlFlow::Continue(()))
            .unwrap();
        x.into_scalar() as f64
    }

    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
    }

    #[test]
    fn euler_is_the_left_riemann_sum() {
        // dx/dt = t from x = 1: 1 + Σ t_i·dt = 1 + (0 + 1/4 + 1/2 + 3/4)/4.
        assert_close(run(SamplerMethod::Euler, 4, 1.0, field(0.0, 1.0, 1)), 1.375);
        // dx/dt = x: (1 + 1/n)^n.
        assert_close(
            run(SamplerMethod::Euler, 4, 1.0, field(1.0, 0.0, 0)),
            1.25f64.powi(4),
        );
    }

    #[test]
    fn rk4_is_classic_with_k4_at_the_step_end() {
        // Simpson's rule integrates t³ exactly (1 + 1/4); k4 at the midpoint would not.
        assert_close(run(SamplerMethod::Rk4, 3, 1.0, field(0.0, 1.0, 3)), 1.25);
        // dx/dt = x: one classic RK4 step gives 1 + h + h²/2 + h³/6 + h⁴/24.
        let taylor = 1.0 + 1.0 + 0.5 + 1.0 / 6.0 + 1.0 / 24.0;
        assert_close(run(SamplerMethod::Rk4, 1, 1.0, field(1.0, 0.0, 0)), taylor);
        assert_close(
            run(SamplerMethod::Rk4, 20, 1.0, field(1.0, 0.0, 0)),
            std::f64::consts::E,
        );
    }

    #[test]
    fn shifted_grids_still_integrate_to_one() {
        // RK4 integrates a field linear in t exactly on any grid: 1 + 1/2.
        assert_close(run(SamplerMethod::Rk4, 8, 3.0, field(0.0, 1.0, 1)), 1.5);
        // Euler on a shifted grid is the left Riemann sum over that grid.
        let grid = schedule(4, 3.0);
        let left_sum: f64 = grid.windows(2).map(|w| w[0] * (w[1] - w[0])).sum();
        assert_close(
            run(SamplerMethod::Euler, 4, 3.0, field(0.0, 1.0, 1)),
            1.0 + left_sum,
        );
    }

    #[test]
    fn progress_reports_each_step_and_can_cancel() {
        let device = Default::default();
        let sampler = Sampler::new(&SamplerConfig::new().with_steps(5)).unwrap();
        let guidance = sampler
            .guidance(Tensor::<B, 3>::ones([2, 2, 3], &device))
            .unwrap();
        let x0 = Tensor::<B, 4>::ones([2, 1, 2, 2], &device);
        let mut seen = Vec::new();
        let model = field(0.0, 1.0, 1);
        sampler
            .sample(&model, x0.clone(), &guidance, |p| {
                seen.push((p.step, p.steps, p.t));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], (1, 5, 0.2));
        assert_eq!(seen[4].2, 1.0);
        let stopped = sampler.sample(&model, x0, &guidance, |p| {
            if p.step == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(matches!(
            stopped,
            Err(Error::Cancelled {
                completed: 2,
                steps: 5
            })
        ));
    }

    #[test]
    fn rejects_bad_configs_and_batches() {
        let device = Default::default();
        assert!(Sampler::new(&SamplerConfig::new().with_steps(0)).is_err());
        assert!(Sampler::new(&SamplerConfig::new().with_shift(-1.0)).is_err());
        assert!(Sampler::new(&SamplerConfig::new().with_cfg(f64::NAN)).is_err());
        let sampler = Sampler::new(&SamplerConfig::new().with_steps(2)).unwrap();
        let guidance = sampler
            .guidance(Tensor::<B, 3>::ones([2, 2, 3], &device))
            .unwrap();
        let x0 = Tensor::<B, 4>::ones([3, 1, 2, 2], &device);
        let result = sampler.sample(&field(0.0, 1.0, 1), x0, &guidance, |_| {
            ControlFlow::Continue(())
        });
        assert!(matches!(result, Err(Error::ShapeMismatch { .. })));
    }
}
