//! Downscaling speed on one core: DPID and Lanczos3 from a 4k photo-sized
//! image (3840×2560, textured like a photo) to the seed's 448-px buckets and
//! to a 1024-px bucket. Prints milliseconds per image; run with
//! `cargo bench -p ssdit-data --bench downscale`.

use std::time::Instant;

use ssdit_data::resize::{DEFAULT_LAMBDA, dpid, lanczos3};
use ssdit_data::{Bucket, BucketConfig, Buckets, RgbImage};

/// A deterministic photo-like test image: smooth gradients plus fine texture.
fn photo_like(width: u32, height: u32) -> RgbImage {
    let mut state = 0x2545_f491_u32;
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 48) as f32 - 24.0;
        let base = |v: f32| (v + noise).clamp(0.0, 255.0) as u8;
        image::Rgb([
            base(255.0 * x as f32 / width as f32),
            base(255.0 * y as f32 / height as f32),
            base(128.0 + 100.0 * ((x / 7 + y / 5) % 2) as f32),
        ])
    })
}

fn time<F: FnMut() -> RgbImage>(label: &str, runs: u32, mut f: F) {
    let out = f(); // warm-up, and the size check
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(runs);
    println!(
        "{label:<44} -> {}x{}: {ms:8.1} ms",
        out.width(),
        out.height()
    );
}

fn main() {
    let src = photo_like(3840, 2560);
    let seed = Buckets::generate(&BucketConfig::default()).expect("seed buckets");
    let big = Buckets::generate(&BucketConfig {
        target_resolution: 1024,
        stride: 32,
    })
    .expect("1024 buckets");
    let targets: [(&str, Bucket); 2] = [
        ("448", seed.best_for(src.width(), src.height())),
        ("1024", big.best_for(src.width(), src.height())),
    ];
    println!("source {}x{}, one thread", src.width(), src.height());
    for (name, bucket) in targets {
        let (w, h) = (bucket.width, bucket.height);
        time(
            &format!("dpid lambda={DEFAULT_LAMBDA} to {name} bucket"),
            5,
            || dpid(&src, w, h, DEFAULT_LAMBDA).expect("downscale"),
        );
        time(&format!("dpid lambda=0.8 to {name} bucket"), 5, || {
            dpid(&src, w, h, 0.8).expect("downscale")
        });
        time(&format!("lanczos3 to {name} bucket"), 5, || {
            lanczos3(&src, w, h)
        });
    }
}
