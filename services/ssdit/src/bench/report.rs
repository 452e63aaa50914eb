//! What one side of `bench dit` measured, and the table comparing the sides.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The timings and memory of one side (ours or the twin), as its worker
/// process prints them (one JSON object, the last line of its stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// `ssdit` or `pytorch`.
    pub side: String,
    /// Framework, backend and threads, in words.
    pub runtime: String,
    /// Where it ran (`cpu`, or the GPU's name).
    pub device: String,
    /// Forward passes (no gradients), milliseconds each.
    pub forward_ms: Vec<f64>,
    /// Training steps (forward, MSE, backward, clip, AdamW), milliseconds each.
    pub train_ms: Vec<f64>,
    /// Whole 50-step Euler+CFG samples of one image, milliseconds each.
    pub sample_ms: Vec<f64>,
    /// Peak resident memory of the worker process (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// The GPU's memory in use (the driver's total − free), highest after
    /// any timed run; read the same way on both sides. `None` on the CPU.
    #[serde(default)]
    pub gpu_peak_bytes: Option<u64>,
}

/// Minimum and median of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
}

impl Summary {
    /// `None` for an empty set (a phase that was skipped).
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            min: sorted[0],
            median,
        })
    }
}

/// The row labels of one benchmark configuration.
#[derive(Debug, Clone)]
pub struct RowLabel {
    pub config: String,
    pub batch: usize,
    /// `image + text` tokens per sample.
    pub tokens: String,
}

/// Formats milliseconds as `min / median`.
fn cell(values: &[f64]) -> String {
    match Summary::of(values) {
        Some(s) => format!("{:.0} / {:.0}", s.min, s.median),
        None => "—".into(),
    }
}

/// `ours / theirs` of the medians.
fn ratio(ours: &[f64], theirs: &[f64]) -> String {
    match (Summary::of(ours), Summary::of(theirs)) {
        (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}×", a.median / b.median),
        _ => "—".into(),
    }
}

fn memory(m: &Measurement) -> String {
    let mib = m.peak_rss_kib as f64 / 1024.0;
    match m.gpu_peak_bytes {
        Some(bytes) => format!("{mib:.0} (GPU {:.0})", bytes as f64 / (1 << 20) as f64),
        None => format!("{mib:.0}"),
    }
}

/// `ours / theirs` of the GPU memory where both read it, else of the peak
/// resident sets.
fn memory_ratio(ours: &Measurement, theirs: &Measurement) -> String {
    match (ours.gpu_peak_bytes, theirs.gpu_peak_bytes) {
        (Some(a), Some(b)) if b > 0 => format!("GPU {:.2}×", a as f64 / b as f64),
        _ if theirs.peak_rss_kib > 0 => format!(
            "{:.2}×",
            ours.peak_rss_kib as f64 / theirs.peak_rss_kib as f64
        ),
        _ => "—".into(),
    }
}

/// The Markdown table: one row per side, then the ratio row when both ran.
pub fn table(label: &RowLabel, sides: &[Measurement]) -> String {
    let mut out = String::new();
    out.push_str(
        "| config | side | batch | tokens | forward ms (min / median) | train step ms (min / median) | 50-step Euler+CFG sample ms (min / median) | peak RSS MiB (GPU in use) |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for m in sides {
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
            label.config,
            m.side,
            m.runtime,
            label.batch,
            label.tokens,
            cell(&m.forward_ms),
            cell(&m.train_ms),
            cell(&m.sample_ms),
            memory(m)
        );
    }
    if let [ours, theirs] = sides {
        let _ = writeln!(
            out,
            "| {} | **{} / {}** (medians) | {} | {} | **{}** | **{}** | **{}** | {} |",
            label.config,
            ours.side,
            theirs.side,
            label.batch,
            label.tokens,
            ratio(&ours.forward_ms, &theirs.forward_ms),
            ratio(&ours.train_ms, &theirs.train_ms),
            ratio(&ours.sample_ms, &theirs.sample_ms),
            memory_ratio(ours, theirs)
        );
    }
    out
}

/// The peak resident memory of this process (`VmHWM`), KiB; 0 where
/// `/proc` does not tell.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(name: &str, forward: &[f64], kib: u64) -> Measurement {
        Measurement {
            side: name.into(),
            runtime: "test".into(),
            device: "cpu".into(),
            forward_ms: forward.to_vec(),
            train_ms: vec![],
            sample_ms: vec![10.0],
            peak_rss_kib: kib,
            gpu_peak_bytes: None,
        }
    }

    #[test]
    fn summary_is_min_and_median() {
        assert_eq!(Summary::of(&[]), None);
        let odd = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((odd.min, odd.median), (1.0, 3.0));
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((even.min, even.median), (1.0, 2.5));
    }

    #[test]
    fn table_has_a_row_per_side_and_the_ratio_of_medians() {
        let label = RowLabel {
            config: "small".into(),
            batch: 4,
            tokens: "256+64".into(),
        };
        let rows = table(
            &label,
            &[
                side("ssdit", &[30.0, 20.0, 10.0], 2048),
                side("pytorch", &[10.0, 12.0], 1024),
            ],
        );
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.len(), 5, "{rows}");
        assert!(lines[2].contains("| 10 / 20 |"), "{}", lines[2]);
        assert!(lines[3].contains("| 10 / 11 |"), "{}", lines[3]);
        // 20 / 11 = 1.82; train skipped on both sides; samples equal; memory 2×.
        assert!(lines[4].contains("**1.82×**"), "{}", lines[4]);
        assert!(lines[4].contains("**—**"), "{}", lines[4]);
        assert!(lines[4].contains("**1.00×**"), "{}", lines[4]);
        assert!(lines[4].ends_with("| 2.00× |"), "{}", lines[4]);
    }

    #[test]
    fn on_a_gpu_the_memory_ratio_is_the_gpus() {
        let label = RowLabel {
            config: "seed".into(),
            batch: 16,
            tokens: "784+128".into(),
        };
        let gpu = |name, mib: u64| Measurement {
            device: "cuda".into(),
            gpu_peak_bytes: Some(mib << 20),
            ..side(name, &[1.0], 4096)
        };
        let rows = table(&label, &[gpu("ssdit", 6000), gpu("pytorch", 8000)]);
        let lines: Vec<&str> = rows.lines().collect();
        assert!(lines[2].ends_with("| 4 (GPU 6000) |"), "{}", lines[2]);
        assert!(lines[4].ends_with("| GPU 0.75× |"), "{}", lines[4]);
    }

    #[test]
    fn measurements_read_the_workers_json() {
        let json = r#"{"side": "pytorch", "runtime": "torch", "device": "cpu", "forward_ms": [1.5],
            "train_ms": [], "sample_ms": [], "peak_rss_kib": 7}"#;
        let m: Measurement = serde_json::from_str(json).unwrap();
        assert_eq!(
            (m.forward_ms, m.peak_rss_kib, m.gpu_peak_bytes),
            (vec![1.5], 7, None)
        );
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        assert!(peak_rss_kib() > 0);
    }
}
