//! Per-step metrics: the CSV log (the seed's columns first, so its
//! `generate_graph.py` reads ours) and Prometheus gauges and counters.

use std::fmt::Write as _;
use std::sync::Mutex;

use crate::trainer::StepReport;

/// The CSV header: the seed's `Epoch,Global_Step,Loss,LR,Fourier_Gate_Avg`,
/// then ours (the held-out losses only on the rows of validated steps).
pub const CSV_HEADER: &str = "Epoch,Global_Step,Loss,LR,Fourier_Gate_Avg,Grad_Norm,Samples_Per_Sec,Memory_MB,Self_Eval,Elapsed_S,Holdout_Loss_Raw,Holdout_Loss_EMA";

/// The validation loss on the held-out samples (`train.validation_holdout`)
/// with the raw and the EMA weights, at one validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldoutLoss {
    pub raw: f64,
    pub ema: f64,
}

/// One row of the CSV: one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsRow {
    pub epoch: u64,
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub gate: f64,
    pub grad_norm: f64,
    pub samples_per_second: f64,
    /// Memory the run holds, MiB: the GPU's memory in use on a GPU, the
    /// process's resident set on the CPU ([`ssdit_core::memory_in_use`];
    /// 0 where unknown).
    pub memory_mb: f64,
    pub self_eval: bool,
    /// Seconds since the run (or its resumption) started.
    pub elapsed_s: f64,
    /// Set on the row of a step after which the run was validated with
    /// held-out samples.
    pub holdout_loss: Option<HoldoutLoss>,
}

impl MetricsRow {
    /// The row of a step report, with the memory in use after the step.
    pub fn of(
        report: &StepReport,
        samples_per_second: f64,
        elapsed_s: f64,
        memory_bytes: Option<u64>,
    ) -> Self {
        Self {
            epoch: report.epoch,
            step: report.step,
            loss: report.loss,
            lr: report.lr,
            gate: report.gate,
            grad_norm: report.grad_norm,
            samples_per_second,
            memory_mb: memory_bytes.unwrap_or(0) as f64 / (1 << 20) as f64,
            self_eval: report.self_eval,
            elapsed_s,
            holdout_loss: None,
        }
    }

    fn to_csv(self) -> String {
        let (holdout_raw, holdout_ema) = self
            .holdout_loss
            .map_or((String::new(), String::new()), |h| {
                (h.raw.to_string(), h.ema.to_string())
            });
        format!(
            "{},{},{},{},{},{},{:.3},{:.1},{},{:.3},{holdout_raw},{holdout_ema}",
            self.epoch,
            self.step,
            self.loss,
            self.lr,
            self.gate,
            self.grad_norm,
            self.samples_per_second,
            self.memory_mb,
            u8::from(self.self_eval),
            self.elapsed_s
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.trim().split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        Some(Self {
            epoch: f.first()?.parse().ok()?,
            step: f.get(1)?.parse().ok()?,
            loss: num(2)?,
            lr: num(3)?,
            gate: num(4)?,
            grad_norm: num(5).unwrap_or(0.0),
            samples_per_second: num(6).unwrap_or(0.0),
            memory_mb: num(7).unwrap_or(0.0),
            self_eval: num(8).is_some_and(|v| v != 0.0),
            elapsed_s: num(9).unwrap_or(0.0),
            holdout_loss: num(10)
                .zip(num(11))
                .map(|(raw, ema)| HoldoutLoss { raw, ema }),
        })
    }
}

/// The rows of a run, rewritten whole to the store (objects cannot be appended to).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsLog {
    rows: Vec<MetricsRow>,
}

impl MetricsLog {
    /// Reads a CSV written by [`to_csv`](Self::to_csv) (or the seed), keeping
    /// the rows up to `through_step`: a resumed run continues the curve from
    /// its checkpoint, without the steps it will redo.
    pub fn parse(csv: &str, through_step: u64) -> Self {
        let rows = csv
            .lines()
            .skip(1)
            .filter_map(MetricsRow::parse)
            .filter(|row| row.step <= through_step)
            .collect();
        Self { rows }
    }

    /// Appends a row.
    pub fn push(&mut self, row: MetricsRow) {
        self.rows.push(row);
    }

    /// Records the held-out loss of a validation after `step` on that
    /// step's row (none when the step has no row).
    pub fn record_holdout(&mut self, step: u64, loss: HoldoutLoss) {
        if let Some(row) = self.rows.iter_mut().rev().find(|row| row.step == step) {
            row.holdout_loss = Some(loss);
        }
    }

    /// The rows.
    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }

    /// The whole CSV, header included.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.rows.len() + 1));
        out.push_str(CSV_HEADER);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&row.to_csv());
            out.push('\n');
        }
        out
    }
}

/// The live values of one run, for Prometheus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricValues {
    pub step: u64,
    pub epoch: u64,
    pub total_steps: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub gate: f64,
    pub samples_per_second: f64,
    pub memory_bytes: u64,
    pub samples_total: u64,
    pub checkpoints_total: u64,
    pub validations_total: u64,
    /// The last validation's held-out loss (none without held-out samples).
    pub holdout_loss: Option<HoldoutLoss>,
    pub running: bool,
}

/// A run's metrics, updated by the training thread and read by scrapers.
#[derive(Debug, Default)]
pub struct RunMetrics {
    values: Mutex<MetricValues>,
}

impl RunMetrics {
    /// A copy of the current values.
    pub fn snapshot(&self) -> MetricValues {
        self.values.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Applies `change` to the values.
    pub fn update(&self, change: impl FnOnce(&mut MetricValues)) {
        if let Ok(mut values) = self.values.lock() {
            change(&mut values);
        }
    }

    /// Records one optimizer step.
    pub fn record_step(&self, row: &MetricsRow, samples: usize) {
        self.update(|v| {
            v.step = row.step;
            v.epoch = row.epoch;
            v.loss = row.loss;
            v.lr = row.lr;
            v.grad_norm = row.grad_norm;
            v.gate = row.gate;
            v.samples_per_second = row.samples_per_second;
            v.memory_bytes = (row.memory_mb * (1 << 20) as f64) as u64;
            v.samples_total += samples as u64;
        });
    }
}

/// A Prometheus metric family: name, type, help, and how it reads from the values.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&MetricValues) -> f64,
);

/// The Prometheus metrics and how each reads from [`MetricValues`].
const FAMILIES: &[Family] = &[
    ("ssdit_train_step", "gauge", "Optimizer steps taken.", |v| {
        v.step as f64
    }),
    (
        "ssdit_train_epoch",
        "gauge",
        "Epoch in progress (0-based).",
        |v| v.epoch as f64,
    ),
    (
        "ssdit_train_total_steps",
        "gauge",
        "Optimizer steps planned.",
        |v| v.total_steps as f64,
    ),
    ("ssdit_train_loss", "gauge", "Loss of the last step.", |v| {
        v.loss
    }),
    (
        "ssdit_train_learning_rate",
        "gauge",
        "Learning rate of the last step.",
        |v| v.lr,
    ),
    (
        "ssdit_train_grad_norm",
        "gauge",
        "Global gradient norm of the last step, before clipping.",
        |v| v.grad_norm,
    ),
    (
        "ssdit_train_fourier_gate_avg",
        "gauge",
        "Mean raw Fourier filter gate.",
        |v| v.gate,
    ),
    (
        "ssdit_train_samples_per_second",
        "gauge",
        "Training throughput of the last step.",
        |v| v.samples_per_second,
    ),
    (
        "ssdit_train_memory_bytes",
        "gauge",
        "Memory the run holds: the GPU's memory in use on a GPU, the trainer's resident set on the CPU.",
        |v| v.memory_bytes as f64,
    ),
    (
        "ssdit_train_holdout_loss_raw",
        "gauge",
        "Validation loss on the held-out samples with the raw weights, at the last validation (NaN before one).",
        |v| v.holdout_loss.map_or(f64::NAN, |h| h.raw),
    ),
    (
        "ssdit_train_holdout_loss_ema",
        "gauge",
        "Validation loss on the held-out samples with the EMA weights, at the last validation (NaN before one).",
        |v| v.holdout_loss.map_or(f64::NAN, |h| h.ema),
    ),
    (
        "ssdit_train_running",
        "gauge",
        "1 while the run trains.",
        |v| f64::from(u8::from(v.running)),
    ),
    (
        "ssdit_train_samples_total",
        "counter",
        "Samples trained on by this process.",
        |v| v.samples_total as f64,
    ),
    (
        "ssdit_train_checkpoints_total",
        "counter",
        "Checkpoints committed by this process.",
        |v| v.checkpoints_total as f64,
    ),
    (
        "ssdit_train_validations_total",
        "counter",
        "Validations run by this process.",
        |v| v.validations_total as f64,
    ),
];

/// The Prometheus text exposition (format 0.0.4) of every run's metrics,
/// labelled `run="<id>"`.
pub fn render_prometheus(runs: &[(String, MetricValues)]) -> String {
    let mut out = String::new();
    for (name, kind, help, read) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (run, values) in runs {
            let _ = writeln!(
                out,
                "{name}{{run=\"{}\"}} {}",
                escape_label(run),
                number(read(values))
            );
        }
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64) -> MetricsRow {
        MetricsRow {
            epoch: step / 10,
            step,
            loss: 1.0 / step as f64,
            lr: 2e-4,
            gate: 0.1,
            grad_norm: 0.5,
            samples_per_second: 12.5,
            memory_mb: 100.0,
            self_eval: step > 2,
            elapsed_s: step as f64,
            holdout_loss: None,
        }
    }

    #[test]
    fn csv_round_trips_and_truncates_at_the_resume_step() {
        let mut log = MetricsLog::default();
        for step in 1..=5 {
            log.push(row(step));
        }
        let holdout = HoldoutLoss {
            raw: 0.75,
            ema: 0.5,
        };
        log.record_holdout(2, holdout);
        let csv = log.to_csv();
        assert!(csv.starts_with("Epoch,Global_Step,Loss,LR,Fourier_Gate_Avg,"));
        let back = MetricsLog::parse(&csv, 3);
        assert_eq!(back.rows().len(), 3);
        assert_eq!(back.rows()[2].step, 3);
        assert!((back.rows()[1].loss - 0.5).abs() < 1e-12);
        assert!(back.rows()[2].self_eval);
        let holdouts: Vec<_> = back.rows().iter().map(|r| r.holdout_loss).collect();
        assert_eq!(holdouts, [None, Some(holdout), None]);
        // The seed's five-column CSV reads too.
        let seed =
            "Epoch,Global_Step,Loss,LR,Fourier_Gate_Avg\n0,0,0.9,0.0,0.1\n0,1,0.8,1e-05,0.1\n";
        assert_eq!(MetricsLog::parse(seed, u64::MAX).rows().len(), 2);
    }

    #[test]
    fn prometheus_exposition_has_help_type_and_labels() {
        let metrics = RunMetrics::default();
        metrics.record_step(&row(4), 8);
        metrics.update(|v| v.running = true);
        let text = render_prometheus(&[("run-\"a\"".into(), metrics.snapshot())]);
        assert!(text.contains("# TYPE ssdit_train_loss gauge"));
        assert!(
            text.contains("ssdit_train_loss{run=\"run-\\\"a\\\"\"} 0.25"),
            "{text}"
        );
        assert!(text.contains("ssdit_train_samples_total{run=\"run-\\\"a\\\"\"} 8"));
        assert!(text.contains("ssdit_train_running{run=\"run-\\\"a\\\"\"} 1"));
        assert!(text.contains("ssdit_train_holdout_loss_ema{run=\"run-\\\"a\\\"\"} NaN"));
        metrics.update(|v| {
            v.holdout_loss = Some(HoldoutLoss {
                raw: 0.5,
                ema: 0.25,
            });
        });
        let text = render_prometheus(&[("r".into(), metrics.snapshot())]);
        assert!(
            text.contains("ssdit_train_holdout_loss_raw{run=\"r\"} 0.5"),
            "{text}"
        );
        assert!(
            text.contains("ssdit_train_holdout_loss_ema{run=\"r\"} 0.25"),
            "{text}"
        );
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
