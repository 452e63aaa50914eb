//! `ssdit parity KIND DIR` as a user runs it: exit 0 on the shared fixtures
//! for every kind, and a non-zero exit (with the failing line printed) on a
//! copy of the fixtures whose tolerance or expected values were tampered with.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use ssdit_parity::fixtures_root;

/// Runs `ssdit parity ARGS…`.
fn ssdit_parity<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssdit"))
        .arg("parity")
        .args(args)
        .output()
        .expect("running the ssdit binary")
}

/// Runs `ssdit parity <kind> <dir> [extra…]`.
fn parity_with(kind: &str, dir: &Path, extra: &[&str]) -> Output {
    let head = [OsStr::new(kind), dir.as_os_str()];
    ssdit_parity(head.into_iter().chain(extra.iter().map(OsStr::new)))
}

/// Runs `ssdit parity <kind> <dir>` on the build's default device.
fn parity(kind: &str, dir: &Path) -> Output {
    parity_with(kind, dir, &[])
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Checks that `kind` passes on the shared fixture folder `folder`.
fn passes(kind: &str, folder: &str) {
    let dir = fixtures_root().join(folder);
    assert!(dir.is_dir(), "fixture folder {} is missing", dir.display());
    let output = parity(kind, &dir);
    let text = text(&output);
    assert!(output.status.success(), "ssdit parity {kind}: {text}");
    assert!(text.contains("max_abs"), "one line per tensor: {text}");
}

#[test]
fn dit_passes_on_the_fixtures() {
    passes("dit", "dit");
}

#[test]
fn sampler_passes_on_the_fixtures() {
    passes("sampler", "sampler");
}

#[test]
fn train_step_passes_on_the_fixtures() {
    passes("train-step", "train_step");
}

#[test]
fn vae_passes_on_the_fixtures() {
    passes("vae", "vae");
}

#[test]
fn t5gemma2_passes_on_the_fixtures() {
    passes("t5gemma2", "t5gemma2");
}

#[test]
fn tokenizer_passes_on_the_fixtures() {
    passes("tokenizer", "tokenizer");
}

#[test]
#[cfg_attr(feature = "cuda", ignore = "a CUDA build computes on no CPU device")]
fn the_device_is_named_and_checked() {
    let dir = fixtures_root().join("dit");
    let cpu = parity_with("dit", &dir, &["--device", "cpu"]);
    assert!(cpu.status.success(), "--device cpu: {}", text(&cpu));
    assert!(
        text(&cpu).contains("on ndarray"),
        "the backend is named: {}",
        text(&cpu)
    );

    let cuda = parity_with("dit", &dir, &["--device", "cuda"]);
    assert!(!cuda.status.success(), "a CPU build has no CUDA device");
    assert!(
        text(&cuda).contains("rebuild with --features cuda"),
        "the error says why: {}",
        text(&cuda)
    );

    let bad = parity_with("vae", &fixtures_root().join("vae"), &["--device", "tpu"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("tpu"),
        "the error names the input: {}",
        text(&bad)
    );
}

#[test]
fn kernels_need_no_folder_and_the_others_do() {
    let output = ssdit_parity(["kernels"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("attention output (F32)"),
        "{}",
        text(&output)
    );

    let output = ssdit_parity(["dit"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("fixture folder"),
        "{}",
        text(&output)
    );

    let empty = tempfile::tempdir().unwrap();
    let output = parity_with("dit", empty.path(), &[]);
    assert!(!output.status.success());
    assert_eq!(
        text(&output).matches("No such file or directory").count(),
        1,
        "the cause is said once: {}",
        text(&output)
    );
}

/// Copies the fixture folders (the sampler needs `../dit/` beside it).
fn copy_fixtures(to: &Path) {
    for folder in ["dit", "sampler", "tokenizer"] {
        let from = fixtures_root().join(folder);
        let dest = to.join(folder);
        std::fs::create_dir_all(&dest).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dest.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Rewrites `dir/cases.json` through `edit`.
fn edit_cases(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path: PathBuf = dir.join("cases.json");
    let mut cases: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut cases);
    std::fs::write(&path, serde_json::to_string_pretty(&cases).unwrap()).unwrap();
}

/// Sets every tolerance in `cases` to one far below float precision.
fn tighten(cases: &mut Value) {
    let tolerance = cases["tolerance"].as_object_mut().unwrap();
    for value in tolerance.values_mut() {
        *value = Value::from(1e-15);
    }
}

#[test]
fn tampered_fixtures_fail_with_a_non_zero_exit() {
    let root = tempfile::tempdir().unwrap();
    copy_fixtures(root.path());

    let copy = |folder: &str| root.path().join(folder);
    let dit = parity("dit", &copy("dit"));
    assert!(
        dit.status.success(),
        "the untouched copy passes: {}",
        text(&dit)
    );

    edit_cases(&copy("dit"), tighten);
    let dit = parity("dit", &copy("dit"));
    assert!(!dit.status.success(), "tightened dit: {}", text(&dit));
    assert!(text(&dit).contains("max_abs"), "{}", text(&dit));

    edit_cases(&copy("sampler"), tighten);
    let sampler = parity("sampler", &copy("sampler"));
    assert!(
        !sampler.status.success(),
        "tightened sampler: {}",
        text(&sampler)
    );

    edit_cases(&copy("tokenizer"), |cases| {
        let id = &mut cases["cases"][0]["input_ids"][1];
        *id = Value::from(id.as_i64().unwrap() + 1);
    });
    let tokenizer = parity("tokenizer", &copy("tokenizer"));
    assert!(
        !tokenizer.status.success(),
        "tampered tokenizer ids: {}",
        text(&tokenizer)
    );

    let missing = parity("vae", &root.path().join("nowhere"));
    assert!(!missing.status.success());
    assert!(text(&missing).contains("nowhere"), "{}", text(&missing));
}
