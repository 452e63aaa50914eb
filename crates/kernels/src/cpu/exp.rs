//! `eˣ` in f32 as straight-line arithmetic, so that loops over it vectorise
//! (libm's `expf` is a call per element). Its integer steps wrap rather than
//! being overflow-checked: a checked add is a branch to a panic, which kept
//! the loops scalar in the dev and test profiles (overflow checks on); the
//! clamped input keeps the exponent in `[−126, 127]`, so nothing wraps.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two (Cody–Waite), so `x − n·ln 2` is exact to f32 rounding.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding `1.5·2²³` rounds an f32 of magnitude below 2²² to an integer.
const ROUNDING: f32 = 12_582_912.0;
/// Inputs are clamped here: below, `eˣ` underflows f32's normal range.
const MIN_INPUT: f32 = -87.0;
const MAX_INPUT: f32 = 88.0;

/// `eˣ` within 2 ulp of the exact value for `x ∈ [−87, 88]` (Cephes'
/// `expf` polynomial); inputs outside are clamped to that range.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(MIN_INPUT, MAX_INPUT);
    let shifted = x * LOG2_E + ROUNDING; // no `mul_add`: without FMA it is a libm call
    let n = shifted - ROUNDING; // round(x / ln 2)
    let exponent = shifted.to_bits().wrapping_sub(ROUNDING.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO; // |r| ≤ ln 2 / 2
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let poly = p * r * r + r + 1.0;
    poly * f32::from_bits((exponent.wrapping_add(127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::exp;

    #[test]
    fn matches_the_exact_exponential_to_a_few_ulp() {
        let mut worst = 0.0_f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let exact = (x as f64).exp();
            let relative = ((exp(x) as f64 - exact) / exact).abs();
            worst = worst.max(relative);
        }
        assert!(
            worst < 3.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
    }

    #[test]
    fn saturates_outside_the_normal_range() {
        assert!(exp(-1e4) > 0.0 && exp(-1e4) < 1e-37);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(1e4).is_finite() && exp(1e4) > 1e38);
        assert_eq!(exp(0.0), 1.0);
    }
}
