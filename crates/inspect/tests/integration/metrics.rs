//! PSNR and SSIM against numpy's on the same two images
//! (`ssdit-import/tests/data/ssim.*`, written by `make_fixtures.py`).

use std::path::Path;

use ssdit_inspect::metrics::{RgbF32, psnr, ssim};

fn image(file: &safetensors::SafeTensors, name: &str) -> RgbF32 {
    let view = file.tensor(name).unwrap();
    let [height, width, 3] = view.shape()[..] else {
        panic!("{name}: shape {:?}", view.shape())
    };
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    RgbF32 {
        width,
        height,
        values,
    }
}

#[test]
fn psnr_and_ssim_match_numpy() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../import/tests/data");
    let bytes = std::fs::read(data.join("ssim.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (a, b) = (image(&file, "a"), image(&file, "b"));
    let numpy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("ssim.json")).unwrap()).unwrap();
    let psnr_numpy = numpy["psnr"].as_f64().unwrap();
    let ssim_numpy = numpy["ssim"].as_f64().unwrap();
    let got_psnr = psnr(&a, &b).unwrap();
    let got_ssim = ssim(&a, &b).unwrap();
    // The images are stored in f32; numpy computed on the f64 originals.
    assert!(
        (got_psnr - psnr_numpy).abs() < 1e-4,
        "{got_psnr} vs {psnr_numpy}"
    );
    assert!(
        (got_ssim - ssim_numpy).abs() < 1e-6,
        "{got_ssim} vs {ssim_numpy}"
    );
    assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
}
