//! The velocity model seen by the samplers, and classifier-free guidance.

use burn::prelude::*;

use crate::error::{Result, invalid};
use crate::path::same_shape;

/// Anything that predicts a velocity `v(x, t, text)`: the DiT, an EMA copy
/// of it, or a closure in tests. Keeps this crate free of the model crate.
///
/// # Shapes
/// - `x`: `[B, C, H, W]`, `t`: `[B]`, `text`: `[B, L, D]` → `[B, C, H, W]`
pub trait VelocityModel<B: Backend> {
    /// One forward pass over a batch.
    fn velocity(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, text: Tensor<B, 3>) -> Tensor<B, 4>;
}

impl<B, F> VelocityModel<B> for F
where
    B: Backend,
    F: Fn(Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) -> Tensor<B, 4>,
{
    fn velocity(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, text: Tensor<B, 3>) -> Tensor<B, 4> {
        self(x, t, text)
    }
}

/// Text conditioning with classifier-free guidance `v = v_u + scale·(v_c − v_u)`.
///
/// Holds the text batch the model sees: `[uncond; cond]` (`2B` rows) so the
/// unconditional and conditional velocities come from one forward pass, as
/// the seed's `cfg_velocity` does; or `cond` alone when `scale == 1`, where
/// guidance is the conditional velocity and the unconditional half is skipped.
#[derive(Debug, Clone)]
pub struct Guidance<B: Backend> {
    text: Tensor<B, 3>,
    scale: f64,
    batch: usize,
}

impl<B: Backend> Guidance<B> {
    /// Guidance against the all-zero ("null") embedding, as the seed trains
    /// with text dropout and samples.
    ///
    /// # Shapes
    /// - `cond`: `[B, L, D]`
    pub fn new(cond: Tensor<B, 3>, scale: f64) -> Result<Self> {
        let uncond = cond.zeros_like();
        Self::with_uncond(cond, uncond, scale)
    }

    /// Guidance against a given unconditional embedding (e.g. a negative
    /// prompt's).
    ///
    /// # Shapes
    /// - `cond`, `uncond`: `[B, L, D]`
    pub fn with_uncond(cond: Tensor<B, 3>, uncond: Tensor<B, 3>, scale: f64) -> Result<Self> {
        if !scale.is_finite() {
            return Err(invalid("cfg", format!("scale {scale} is not finite")));
        }
        same_shape("unconditional text embedding", &cond, &uncond)?;
        let [batch, _, _] = cond.dims();
        let text = if scale == 1.0 {
            cond
        } else {
            Tensor::cat(vec![uncond, cond], 0) // [2B, L, D]
        };
        Ok(Self { text, scale, batch })
    }

    /// The guidance scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Number of samples this conditioning is for.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The guided velocity at `x`, time `t` (one per sample): one forward pass.
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`, `t`: `[B]` → `[B, C, H, W]`
    pub fn velocity<M: VelocityModel<B>>(
        &self,
        model: &M,
        x: Tensor<B, 4>,
        t: Tensor<B, 1>,
    ) -> Tensor<B, 4> {
        if self.scale == 1.0 {
            return model.velocity(x, t, self.text.clone());
        }
        let x_in = Tensor::cat(vec![x.clone(), x], 0); // [2B, C, H, W]
        let t_in = Tensor::cat(vec![t.clone(), t], 0); // [2B]
        let v = model.velocity(x_in, t_in, self.text.clone()); // [2B, C, H, W]
        let b = self.batch;
        let v_uncond = v.clone().slice(0..b); // [B, C, H, W]
        let v_cond = v.slice(b..2 * b); // [B, C, H, W]
        v_uncond.clone() + (v_cond - v_uncond).mul_scalar(self.scale)
    }

    /// The sample predicted at `t = 1` by one Euler jump: `x + (1 − t)·v`
    /// (the seed's `cfg_guided_position`).
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`, `t`: `[B]` → `[B, C, H, W]`
    pub fn position_at_one<M: VelocityModel<B>>(
        &self,
        model: &M,
        x: Tensor<B, 4>,
        t: Tensor<B, 1>,
    ) -> Tensor<B, 4> {
        let v = self.velocity(model, x.clone(), t.clone());
        euler_to_one(x, t, v)
    }
}

/// `x + (1 − t)·v`: where a straight path from `x` at time `t` with
/// velocity `v` lands at `t = 1`.
///
/// # Shapes
/// - `x`, `v`: `[B, C, H, W]`, `t`: `[B]` → `[B, C, H, W]`
pub fn euler_to_one<B: Backend>(x: Tensor<B, 4>, t: Tensor<B, 1>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch] = t.dims();
    let remaining = t.reshape([batch, 1, 1, 1]).neg().add_scalar(1.0); // [B, 1, 1, 1]
    x + remaining * v
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use std::cell::RefCell;

    type B = NdArray<f32>;

    /// v = x·(1 + mean(text)) + t: text-dependent, and records batch sizes.
    struct Probe {
        batches: RefCell<Vec<usize>>,
    }

    impl VelocityModel<B> for Probe {
        fn velocity(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, text: Tensor<B, 3>) -> Tensor<B, 4> {
            let [b, _, _, _] = x.dims();
            self.batches.borrow_mut().push(b);
            let gain = text
                .mean_dim(2)
                .mean_dim(1)
                .reshape([b, 1, 1, 1])
                .add_scalar(1.0);
            x * gain + t.reshape([b, 1, 1, 1])
        }
    }

    fn probe() -> Probe {
        Probe {
            batches: RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn guidance_extrapolates_from_uncond_to_cond_in_one_pass() {
        let device = Default::default();
        let x = Tensor::<B, 4>::ones([2, 1, 2, 2], &device);
        let t = Tensor::<B, 1>::from_floats([0.25, 0.5], &device);
        let cond = Tensor::<B, 3>::full([2, 3, 4], 2.0, &device);
        let model = probe();
        let guided = Guidance::new(cond, 3.0).unwrap();
        let v = guided
            .velocity(&model, x, t)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        // v_u = 1 + t, v_c = 3 + t, v = v_u + 3·(v_c − v_u) = 7 + t.
        assert_eq!(&v[..4], &[7.25; 4]);
        assert_eq!(&v[4..], &[7.5; 4]);
        assert_eq!(*model.batches.borrow(), vec![4]);
    }

    #[test]
    fn scale_one_skips_the_unconditional_half() {
        let device = Default::default();
        let x = Tensor::<B, 4>::ones([2, 1, 2, 2], &device);
        let t = Tensor::<B, 1>::zeros([2], &device);
        let cond = Tensor::<B, 3>::full([2, 3, 4], 2.0, &device);
        let model = probe();
        let guided = Guidance::new(cond, 1.0).unwrap();
        let v = guided
            .velocity(&model, x, t)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(v.iter().all(|&v| v == 3.0));
        assert_eq!(*model.batches.borrow(), vec![2]);
    }

    #[test]
    fn rejects_mismatched_uncond_and_bad_scale() {
        let device = Default::default();
        let cond = Tensor::<B, 3>::zeros([2, 3, 4], &device);
        let uncond = Tensor::<B, 3>::zeros([2, 5, 4], &device);
        assert!(Guidance::with_uncond(cond.clone(), uncond, 2.0).is_err());
        assert!(Guidance::new(cond, f64::INFINITY).is_err());
    }

    #[test]
    fn euler_to_one_jumps_the_remaining_time() {
        let device = Default::default();
        let x = Tensor::<B, 4>::zeros([2, 1, 1, 1], &device);
        let v = Tensor::<B, 4>::full([2, 1, 1, 1], 2.0, &device);
        let t = Tensor::<B, 1>::from_floats([0.25, 1.0], &device);
        let out = euler_to_one(x, t, v).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out, vec![1.5, 0.0]);
    }
}
