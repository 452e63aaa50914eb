//! `ssdit run` refuses a bad run length before it starts anything, naming
//! the option and the reason, and stops training on Ctrl-C without losing
//! the job.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command};
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
    let (stdout, stderr) = (dir.path().join("stdout.log"), dir.path().join("stderr.log"));
    let mut child = cli::command()
        .args(["run", "--steps", "100000", "--out"])
        .arg(&out)
        .env("SSDIT_STORE_URL", dir.path().join("store"))
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let runs = dir.path().join("store/runs");
    wait_for(
        &mut child,
        Duration::from_secs(120),
        "a training step",
        |_| {
            std::fs::read_dir(&runs).into_iter().flatten().any(|run| {
                let csv = run.unwrap().path().join("metrics.csv");
                std::fs::read_to_string(csv).is_ok_and(|rows| rows.lines().count() > 1)
            })
        },
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut status = None;
    wait_for(
        &mut child,
        Duration::from_secs(300),
        "the job's end",
        |child| {
            status = child.try_wait().unwrap();
            status.is_some()
        },
    );
    let (stdout, stderr) = (read(&stdout), read(&stderr));
    assert!(status.unwrap().success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let steps: u64 = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("trained ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no 'trained N steps' line:\n{stdout}"));
    assert!((1..100_000).contains(&steps), "{steps} steps\n{stdout}");
    assert!(out.join("sheet.png").is_file(), "{stdout}");
}

/// Polls `done` until it holds; kills `child` and fails, naming `what`, when
/// it does not within `limit`.
fn wait_for(
    child: &mut Child,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&mut Child) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(child) {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("no {what} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
