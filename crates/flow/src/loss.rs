//! Velocity losses: the element-wise mean of MSE, L1 or Huber, exactly as
//! PyTorch's `mse_loss`, `l1_loss` and `huber_loss` (reduction `mean`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The threshold of the seed's Huber loss (`F.huber_loss(…, delta=0.1)`).
pub const DEFAULT_HUBER_DELTA: f64 = 0.1;

/// Which loss compares predicted and target velocities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Mean squared error (the seed's default).
    #[default]
    Mse,
    /// Mean absolute error.
    L1,
    /// `½d²` where `|d| < delta`, else `delta·(|d| − ½delta)`.
    Huber { delta: f64 },
}

impl Loss {
    /// Huber with the seed's threshold.
    pub fn huber() -> Self {
        Self::Huber {
            delta: DEFAULT_HUBER_DELTA,
        }
    }

    /// The mean loss over every element.
    ///
    /// # Shapes
    /// - `prediction`, `target`: the same shape `[…]` → `[1]`
    pub fn compute<B: Backend, const D: usize>(
        &self,
        prediction: Tensor<B, D>,
        target: Tensor<B, D>,
    ) -> Tensor<B, 1> {
        let diff = prediction - target;
        match *self {
            Self::Mse => diff.square().mean(),
            Self::L1 => diff.abs().mean(),
            Self::Huber { delta } => huber(diff, delta).mean(),
        }
    }
}

/// PyTorch's element-wise Huber: `where(|d| < δ, ½d², δ·(|d| − ½δ))`.
fn huber<B: Backend, const D: usize>(diff: Tensor<B, D>, delta: f64) -> Tensor<B, D> {
    let magnitude = diff.clone().abs();
    let inside = magnitude.clone().lower_elem(delta);
    let linear = magnitude.sub_scalar(0.5 * delta).mul_scalar(delta);
    let quadratic = diff.square().mul_scalar(0.5);
    linear.mask_where(inside, quadratic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn loss(kind: Loss, pred: [f32; 4], target: [f32; 4]) -> f32 {
        let device = Default::default();
        kind.compute(
            Tensor::<B, 1>::from_floats(pred, &device),
            Tensor::<B, 1>::from_floats(target, &device),
        )
        .into_scalar()
    }

    #[test]
    fn losses_match_their_definitions() {
        let pred = [0.0, 0.05, 1.0, -2.0];
        let target = [0.0, 0.0, 0.0, 0.0];
        let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-6;
        assert!(close(
            loss(Loss::Mse, pred, target),
            (0.0025 + 1.0 + 4.0) / 4.0
        ));
        assert!(close(
            loss(Loss::L1, pred, target),
            (0.05 + 1.0 + 2.0) / 4.0
        ));
        // Huber δ=0.1: 0, ½·0.05², 0.1·(1 − 0.05), 0.1·(2 − 0.05).
        let huber = (0.5 * 0.0025 + 0.1 * 0.95 + 0.1 * 1.95) / 4.0;
        assert!(close(loss(Loss::huber(), pred, target), huber));
    }

    #[test]
    fn loss_names_read_like_the_seed_config() {
        let mse: Loss = serde_json::from_str("\"mse\"").unwrap();
        assert_eq!(mse, Loss::Mse);
        let huber: Loss = serde_json::from_str(r#"{"huber":{"delta":0.1}}"#).unwrap();
        assert_eq!(huber, Loss::huber());
    }
}
