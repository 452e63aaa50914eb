//! `ssdit run` refuses a bad run length before it starts anything, naming
//! the option and the reason, and stops training on Ctrl-C without losing
//! the job.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli;

#[test]
fn a_run_length_that_cannot_be_trained_is_refused() {
    for (args, expected) in [
        (["--minutes", "nan"], "--minutes"),
        (["--minutes", "0"], "above 0"),
        (["--minutes", "inf"], "at most"),
        (["--steps", "0"], "--steps"),
    ] {
        let output = cli::command()
            .arg("run")
            .args(args)
            .arg("--images")
            .arg("/no/such/folder")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Ctrl-C while the DiT trains: training stops at the next step with a
/// checkpoint, and the job goes on to generate from it and write the sheet.
#[test]
fn ctrl_c_while_training_stops_it_and_the_job_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let log = dir.path().join("stderr.log");
    let mut child = cli::command()
        .args(["run", "--steps", "100000", "--out"])
        .arg(&out)
        .env("SSDIT_STORE_URL", dir.path().join("store"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut before = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        before += &format!("{line}\n");
        if line.starts_with("training:") {
            break;
        }
    }
    assert!(before.contains("training:"), "{before}");
    let runs = dir.path().join("store/runs");
    let trained_a_step = || {
        std::fs::read_dir(&runs).into_iter().flatten().any(|run| {
            let csv = run.unwrap().path().join("metrics.csv");
            std::fs::read_to_string(csv).is_ok_and(|rows| rows.lines().count() > 1)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !trained_a_step() {
        assert!(
            Instant::now() < deadline,
            "no training step logged
{before}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let after: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    let after = after.join("\n");
    assert!(status.success(), "{status}\n{before}{after}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let steps: u64 = after
        .lines()
        .find_map(|line| {
            line.strip_prefix("trained ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no 'trained N steps' line:\n{after}"));
    assert!((1..100_000).contains(&steps), "{steps} steps\n{after}");
    assert!(out.join("sheet.png").is_file(), "{after}");
}
