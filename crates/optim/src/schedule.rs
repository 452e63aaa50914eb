//! The learning-rate schedule of the seed: linear warmup then half a cosine
//! down to zero, identical to transformers' `get_cosine_schedule_with_warmup`
//! under `LambdaLR` (the factor at optimizer step `k`, counted from 0, is
//! `λ(k)`; the first step of a warmed-up run uses learning rate 0).

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// Linear warmup over `warmup_steps`, then a cosine over the remaining steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineWithWarmup {
    /// Learning rate the schedule scales.
    pub base_lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: u64,
    /// Total optimizer steps of the run.
    pub total_steps: u64,
    /// Cosine periods over the decay (0.5: one half-wave down to zero).
    pub cycles: f64,
}

/// The seed's warmup fraction (`Config.optimizer_warmup`).
pub const SEED_WARMUP_FRACTION: f64 = 0.05;

impl CosineWithWarmup {
    /// A half-cosine schedule with `warmup_steps` of warmup.
    pub fn new(base_lr: f64, warmup_steps: u64, total_steps: u64) -> Result<Self> {
        if !(base_lr.is_finite() && base_lr >= 0.0) {
            return Err(invalid(
                "base_lr",
                format!("{base_lr} is not a non-negative number"),
            ));
        }
        Ok(Self {
            base_lr,
            warmup_steps,
            total_steps,
            cycles: 0.5,
        })
    }

    /// Warmup over `int(total_steps · fraction)` steps, as the seed computes it.
    pub fn with_warmup_fraction(base_lr: f64, total_steps: u64, fraction: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(invalid(
                "warmup fraction",
                format!("{fraction} is outside [0, 1]"),
            ));
        }
        let warmup = (total_steps as f64 * fraction).floor() as u64;
        Self::new(base_lr, warmup, total_steps)
    }

    /// The multiplier `λ(step)` of the base learning rate.
    pub fn factor(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps.max(1) as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = (step - self.warmup_steps) as f64 / decay_steps as f64;
        let wave = (std::f64::consts::PI * self.cycles * 2.0 * progress).cos();
        (0.5 * (1.0 + wave)).max(0.0)
    }

    /// The learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_along_a_half_cosine() {
        let s = CosineWithWarmup::new(2e-4, 10, 110).unwrap();
        assert_eq!(s.lr(0), 0.0);
        assert!((s.factor(5) - 0.5).abs() < 1e-15);
        assert_eq!(s.factor(10), 1.0);
        // Halfway through the decay: cos(π/2) = 0 → 0.5.
        assert!((s.factor(60) - 0.5).abs() < 1e-12);
        assert!(s.factor(110).abs() < 1e-15);
        let pi = std::f64::consts::PI;
        assert!((s.factor(85) - 0.5 * (1.0 + (pi * 0.75).cos())).abs() < 1e-15);
        // Past the end the cosine climbs again, exactly as transformers' lambda does.
        assert!((s.factor(135) - 0.5 * (1.0 + (pi * 1.25).cos())).abs() < 1e-15);
        let lrs: Vec<f64> = (10..=110).map(|k| s.lr(k)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn warmup_fraction_truncates_like_python_int() {
        let s = CosineWithWarmup::with_warmup_fraction(1.0, 1234, SEED_WARMUP_FRACTION).unwrap();
        assert_eq!(s.warmup_steps, 61);
        let none = CosineWithWarmup::with_warmup_fraction(1.0, 19, 0.05).unwrap();
        assert_eq!(none.warmup_steps, 0);
        assert_eq!(none.factor(0), 1.0);
        assert!(CosineWithWarmup::with_warmup_fraction(1.0, 10, 1.5).is_err());
        assert!(CosineWithWarmup::new(f64::NAN, 1, 10).is_err());
    }
}
