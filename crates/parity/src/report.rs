use std::fmt;

use burn::tensor::TensorData;
use serde::Deserialize;

/// The largest differences a comparison may show.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
pub struct Tolerance {
    /// Largest allowed |got − want|.
    pub max_abs: Option<f64>,
    /// Largest allowed ‖got − want‖₂ / ‖want‖₂.
    pub max_rel_l2: Option<f64>,
}

/// One compared tensor: how far ours is from the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub name: String,
    pub max_abs: f64,
    pub rel_l2: f64,
    pub tolerance: Tolerance,
}

impl Comparison {
    /// Compares `got` with `want` element by element (same element count).
    ///
    /// # Panics
    /// When the element counts differ: a shape bug in the check itself.
    pub fn new(
        name: impl Into<String>,
        got: &TensorData,
        want: &TensorData,
        tolerance: Tolerance,
    ) -> Self {
        let name = name.into();
        let got = as_f64(got);
        let want = as_f64(want);
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: comparing {} values with {}",
            got.len(),
            want.len()
        );
        let (mut max_abs, mut diff2, mut want2) = (0f64, 0f64, 0f64);
        for (g, w) in got.iter().zip(&want) {
            let d = g - w;
            max_abs = max_abs.max(if d.is_nan() { f64::INFINITY } else { d.abs() });
            diff2 += d * d;
            want2 += w * w;
        }
        let rel_l2 = if want2 > 0.0 {
            (diff2 / want2).sqrt()
        } else {
            diff2.sqrt()
        };
        Self {
            name,
            max_abs,
            rel_l2: if rel_l2.is_nan() {
                f64::INFINITY
            } else {
                rel_l2
            },
            tolerance,
        }
    }

    /// Whether both measures are within tolerance.
    pub fn passed(&self) -> bool {
        self.tolerance.max_abs.is_none_or(|t| self.max_abs <= t)
            && self.tolerance.max_rel_l2.is_none_or(|t| self.rel_l2 <= t)
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.1e}"));
        write!(
            f,
            "{:<6} {:<48} max_abs={:.3e} (≤ {})  rel_l2={:.3e} (≤ {})",
            if self.passed() { "ok" } else { "FAIL" },
            self.name,
            self.max_abs,
            limit(self.tolerance.max_abs),
            self.rel_l2,
            limit(self.tolerance.max_rel_l2),
        )
    }
}

/// The comparisons of one parity check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub title: String,
    pub comparisons: Vec<Comparison>,
}

impl Report {
    /// An empty report for the check named `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            comparisons: Vec::new(),
        }
    }

    /// Adds a comparison.
    pub fn push(&mut self, comparison: Comparison) {
        self.comparisons.push(comparison);
    }

    /// Whether every comparison passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.comparisons.is_empty() && self.comparisons.iter().all(Comparison::passed)
    }

    /// The comparisons that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Comparison> {
        self.comparisons.iter().filter(|c| !c.passed())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "parity {}", self.title)?;
        for comparison in &self.comparisons {
            writeln!(f, "  {comparison}")?;
        }
        let failed = self.failures().count();
        write!(
            f,
            "  {} of {} comparisons within tolerance{}",
            self.comparisons.len() - failed,
            self.comparisons.len(),
            if self.passed() { "" } else { " — FAILED" }
        )
    }
}

fn as_f64(data: &TensorData) -> Vec<f64> {
    data.clone()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("converted to f64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(values: &[f32]) -> TensorData {
        TensorData::new(values.to_vec(), [values.len()])
    }

    #[test]
    fn measures_and_judges() {
        let tol = Tolerance {
            max_abs: Some(1e-3),
            max_rel_l2: Some(1e-3),
        };
        let close = Comparison::new("close", &data(&[1.0, 2.0005]), &data(&[1.0, 2.0]), tol);
        assert!(close.passed(), "{close}");
        assert!((close.max_abs - 5e-4).abs() < 1e-6);
        let far = Comparison::new("far", &data(&[1.0, 2.1]), &data(&[1.0, 2.0]), tol);
        assert!(!far.passed(), "{far}");
        let nan = Comparison::new("nan", &data(&[f32::NAN]), &data(&[1.0]), tol);
        assert!(!nan.passed(), "{nan}");
    }

    #[test]
    fn empty_report_does_not_pass() {
        assert!(!Report::new("nothing").passed());
    }
}
