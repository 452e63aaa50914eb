//! VAE encode/decode time and peak memory at the real FLUX sizes
//! (128/256/512/512 channels, 2 layers per block, 32 groups; random
//! weights) on the CPU backend, plus the preview codec for comparison.
//!
//! Each measured phase runs in its own child process, so the peak resident
//! memory (`VmHWM` from /proc/self/status) belongs to that phase alone.
//!
//! `cargo bench -p ssdit-vae --bench vae -- [--size 448] [--runs 2] [--tiled]`

use std::process::Command;
use std::time::Instant;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::Distribution;
use ssdit_vae::{AutoencoderKlConfig, PreviewCodec, Tiling, Vae};

type B = NdArray<f32>;

const PHASES: [&str; 3] = ["encode", "decode", "preview"];

struct Options {
    size: usize,
    runs: usize,
    tiled: bool,
    phase: Option<String>,
}

fn parse_options() -> Options {
    let mut options = Options {
        size: 448,
        runs: 2,
        tiled: false,
        phase: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size" => options.size = number(args.next(), "--size"),
            "--runs" => options.runs = number(args.next(), "--runs").max(1),
            "--tiled" => options.tiled = true,
            "--phase" => options.phase = args.next(),
            _ => {} // cargo passes --bench; filters do not apply here
        }
    }
    options
}

fn number(value: Option<String>, flag: &str) -> usize {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{flag} needs a positive integer"))
}

/// Peak resident memory of this process in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let options = parse_options();
    match options.phase.as_deref() {
        Some(phase) => run_phase(phase, &options),
        None => spawn_phases(&options),
    }
}

fn spawn_phases(options: &Options) {
    let exe = std::env::current_exe().expect("the bench binary's path");
    println!(
        "FLUX VAE (128/256/512/512, 2 layers, 32 groups, random weights), NdArray<f32> on {} CPU threads, {}×{} image, {} timed run(s) after one warm-up{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.size,
        options.size,
        options.runs,
        if options.tiled {
            ", tiled 512-px decode"
        } else {
            ""
        },
    );
    for phase in PHASES {
        let mut command = Command::new(&exe);
        command.args([
            "--phase",
            phase,
            "--size",
            &options.size.to_string(),
            "--runs",
            &options.runs.to_string(),
        ]);
        if options.tiled {
            command.arg("--tiled");
        }
        let status = command.status().expect("spawning a bench phase");
        assert!(status.success(), "bench phase {phase} failed: {status}");
    }
}

fn run_phase(phase: &str, options: &Options) {
    let device = Default::default();
    B::seed(&device, 0);
    let size = options.size;
    let image = Tensor::<B, 4>::random(
        [1, 3, size, size],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let latent = Tensor::<B, 4>::random(
        [1, 16, size / 8, size / 8],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let baseline = peak_rss_mib();
    let (seconds, setup) = match phase {
        "preview" => {
            let codec = PreviewCodec::<B>::new(&device);
            let setup = peak_rss_mib();
            let seconds = time(options.runs, || {
                let latents = codec.encode(image.clone()).expect("preview encode");
                let decoded = codec.decode(latents).expect("preview decode");
                decoded.into_data();
            });
            (seconds, setup)
        }
        "encode" | "decode" => {
            let config = AutoencoderKlConfig::flux_vae();
            let vae = Vae::new(config.init::<B>(&device), config, "random");
            let tiling = options.tiled.then(Tiling::default);
            let vae = vae.with_decode_tiling(tiling).expect("valid tiling");
            let setup = peak_rss_mib();
            let seconds = if phase == "encode" {
                time(options.runs, || {
                    vae.posterior(image.clone())
                        .expect("encode")
                        .mean
                        .into_data();
                })
            } else {
                time(options.runs, || {
                    vae.decode_unscaled(latent.clone())
                        .expect("decode")
                        .into_data();
                })
            };
            (seconds, setup)
        }
        other => panic!("unknown phase {other:?}; expected one of {PHASES:?}"),
    };
    let best = seconds.iter().cloned().fold(f64::INFINITY, f64::min);
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    println!(
        "{phase:<8} best {best:>8.3} s  mean {mean:>8.3} s  | VmHWM: inputs {baseline:>7.0} MiB, model {setup:>7.0} MiB, after {phase} {:>7.0} MiB",
        peak_rss_mib()
    );
}

/// One warm-up run, then `runs` timed ones (seconds each).
fn time(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    f();
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect()
}
