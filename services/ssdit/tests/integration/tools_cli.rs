//! The dataset tools end to end through the `ssdit` binary, on a store in a
//! temporary folder: the seed's cache and checkpoint imported (ssdit-import's
//! PyTorch-made fixtures), the dataset's status, statistics, preview and
//! export, and a VAE reconstruction with the fixture VAE.

use crate::cli;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli::ssdit;

/// `ssdit-import`'s fixtures (made with PyTorch in the seed's layout).
fn import_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/import/tests/data")
}

/// A configuration file whose store is `store`.
fn config(dir: &Path, store: &Path) -> PathBuf {
    let file = dir.join("ssdit.toml");
    std::fs::write(
        &file,
        format!("[store]\nurl = {:?}\n", store.display().to_string()),
    )
    .unwrap();
    file
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn import_then_status_stats_preview_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("store"));
    let cache = import_data().join("cache");
    let captions = import_data().join("captions");
    let imported = stdout(&ssdit(
        &config,
        &[
            "import",
            "seed-cache",
            cache.to_str().unwrap(),
            "--dataset",
            "flowers",
            "--captions",
            captions.to_str().unwrap(),
        ],
    ));
    assert!(
        imported.contains("9 .pt files, 3 imported (2 with captions)"),
        "{imported}"
    );
    assert!(
        imported.contains("rejected truncated.pt: truncated.pt: not a PyTorch zip archive"),
        "{imported}"
    );

    let status = stdout(&ssdit(
        &config,
        &["dataset", "status", "flowers", "--rejects"],
    ));
    for line in [
        "ingested    3",
        "captioned   2",
        "latents     3 (VAE seed-flux-vae)",
        "ready       3",
        "rejected    6",
    ] {
        assert!(status.contains(line), "{line}: {status}");
    }
    assert!(
        status.contains("nan.pt (import): nan.pt: latents hold a non-finite value"),
        "{status}"
    );

    let charts = dir.path().join("stats.png");
    let stats = stdout(&ssdit(
        &config,
        &[
            "dataset",
            "stats",
            "flowers",
            "--out",
            charts.to_str().unwrap(),
        ],
    ));
    assert!(
        stats.contains("3 samples with latents of VAE seed-flux-vae"),
        "{stats}"
    );
    assert_eq!(image::open(&charts).unwrap().width(), 800);

    let sheet = dir.path().join("preview.png");
    let preview = stdout(&ssdit(
        &config,
        &[
            "dataset",
            "preview",
            "flowers",
            "--vae",
            "preview",
            "--out",
            sheet.to_str().unwrap(),
        ],
    ));
    assert!(preview.contains("contact sheet of 3 samples"), "{preview}");
    assert!(image::open(&sheet).unwrap().width() > 3 * 256);

    let export = dir.path().join("export");
    let exported = stdout(&ssdit(
        &config,
        &["dataset", "export", "flowers", export.to_str().unwrap()],
    ));
    assert!(exported.contains("exported 3 samples"), "{exported}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("manifest.json")).unwrap()).unwrap();
    for sample in manifest["samples"].as_array().unwrap() {
        assert!(export.join(sample["file"].as_str().unwrap()).is_file());
    }

    let missing = ssdit(&config, &["dataset", "stats", "no-such-dataset"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("dataset no-such-dataset is empty or does not exist")
    );
}

#[test]
fn a_seed_checkpoint_becomes_a_run_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("store"));
    let checkpoints = import_data().join("checkpoints");
    let file = checkpoints.join("full_state_epoch_3.pt");
    let dit = checkpoints.join("config.json");
    let output = stdout(&ssdit(
        &config,
        &[
            "import",
            "seed-checkpoint",
            file.to_str().unwrap(),
            "--run",
            "seed",
            "--dit",
            dit.to_str().unwrap(),
        ],
    ));
    assert!(
        output.contains("written: runs/seed/checkpoints/step-0000000012 (run seed, step 12)"),
        "{output}"
    );
    assert!(
        output.contains("AdamW moments of 66 parameters imported"),
        "{output}"
    );
    let step = dir
        .path()
        .join("store/runs/seed/checkpoints/step-0000000012");
    for name in [
        "model.safetensors",
        "ema.safetensors",
        "optimizer.safetensors",
        "state.json",
        "commit.json",
    ] {
        assert!(step.join(name).is_file(), "{name}");
    }

    let bad = import_data().join("cache/not_a_zip.pt");
    let refused = ssdit(
        &config,
        &[
            "import",
            "seed-checkpoint",
            bad.to_str().unwrap(),
            "--dit",
            dit.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a PyTorch zip archive"));
}

#[test]
fn vae_reconstruct_reports_psnr_and_ssim_and_writes_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &dir.path().join("store"));
    let image = dir.path().join("gradient.png");
    image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([x as u8 * 6, y as u8 * 10, 128]))
        .save(&image)
        .unwrap();
    let out = dir.path().join("out");
    let vae = ssdit_parity::fixtures_root().join("vae");
    let output = stdout(&ssdit(
        &config,
        &[
            "vae",
            "reconstruct",
            image.to_str().unwrap(),
            "--vae",
            vae.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let row = output
        .lines()
        .find(|l| l.starts_with("gradient.png"))
        .expect(&output);
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(fields[1], "40x24");
    let psnr: f64 = fields[2].parse().unwrap();
    let ssim: f64 = fields[3].parse().unwrap();
    assert!(psnr.is_finite() && psnr > 0.0, "{row}");
    assert!((-1.0..=1.0).contains(&ssim), "{row}");
    let picture = image::open(out.join("gradient.reconstruction.png")).unwrap();
    assert!(picture.width() > 3 * 40);

    let missing = ssdit(
        &config,
        &[
            "vae",
            "reconstruct",
            "/no/such/image.png",
            "--vae",
            "preview",
        ],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/image.png"));
}
