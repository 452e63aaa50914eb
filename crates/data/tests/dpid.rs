//! DPID's properties: detail kept where a box filter averages it away, flat
//! stays flat, the output stays within the input's range; and a side-by-side
//! of Lanczos3 and DPID on a real photo to look at.

mod common;

use image::{Rgb, RgbImage, imageops};
use ssdit_data::resize::{DEFAULT_LAMBDA, dpid, lanczos3};
use ssdit_data::{BucketConfig, Buckets, DecodeConfig, ValidationConfig, decode, validate};

/// Mean of 3×3 neighbourhood contrast: the sum of squared differences
/// between horizontally and vertically adjacent samples, per sample.
fn gradient_energy(img: &RgbImage) -> f64 {
    let (w, h) = img.dimensions();
    let mut sum = 0.0;
    let mut n = 0usize;
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(x, y).0;
            for (dx, dy) in [(1, 0), (0, 1)] {
                if x + dx < w && y + dy < h {
                    let q = img.get_pixel(x + dx, y + dy).0;
                    sum += p
                        .iter()
                        .zip(q)
                        .map(|(a, b)| (f64::from(*a) - f64::from(b)).powi(2))
                        .sum::<f64>();
                    n += 3;
                }
            }
        }
    }
    sum / n as f64
}

/// Variance of all samples.
fn variance(img: &RgbImage) -> f64 {
    let samples: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v)).collect();
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / samples.len() as f64
}

/// Plain box filter for an integer factor, written independently of the crate.
fn box_filter(src: &RgbImage, factor: u32) -> RgbImage {
    let (w, h) = (src.width() / factor, src.height() / factor);
    RgbImage::from_fn(w, h, |ox, oy| {
        let mut sum = [0u32; 3];
        for y in oy * factor..(oy + 1) * factor {
            for x in ox * factor..(ox + 1) * factor {
                for (s, v) in sum.iter_mut().zip(src.get_pixel(x, y).0) {
                    *s += u32::from(v);
                }
            }
        }
        let n = factor * factor;
        Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
    })
}

/// A deterministic pseudo-random generator (xorshift32).
fn noise(seed: u32) -> impl FnMut() -> u32 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    }
}

#[test]
fn thin_lines_keep_more_contrast_than_the_box_filter() {
    // One-pixel dark lines every 4 pixels on a light background, reduced 3×:
    // the box filter averages each line into a faint band.
    let src = RgbImage::from_fn(240, 240, |x, y| {
        if x % 4 == 0 || y % 7 == 0 {
            Rgb([20, 30, 40])
        } else {
            Rgb([230, 220, 210])
        }
    });
    let boxed = box_filter(&src, 3);
    let detail = dpid(&src, 80, 80, DEFAULT_LAMBDA).unwrap();
    let (e_box, e_dpid) = (gradient_energy(&boxed), gradient_energy(&detail));
    println!("line pattern: gradient energy box {e_box:.0}, dpid {e_dpid:.0}");
    assert!(e_dpid > 1.2 * e_box, "dpid {e_dpid} vs box {e_box}");
    // λ = 0 is the box filter itself.
    let lambda0 = dpid(&src, 80, 80, 0.0).unwrap();
    assert!(
        lambda0
            .as_raw()
            .iter()
            .zip(boxed.as_raw())
            .all(|(a, b)| a.abs_diff(*b) <= 1)
    );
}

#[test]
fn fine_texture_keeps_more_local_contrast_than_the_box_filter() {
    // Sparse one-pixel highlights (about 1 in 25) on a fine dark texture,
    // like dew drops or pollen: the box filter dilutes each into its 16-pixel cell.
    let mut rand = noise(0x9e37_79b9);
    let src = RgbImage::from_fn(300, 200, |_, _| {
        let r = rand();
        if r.is_multiple_of(25) {
            Rgb([250, 240, 200])
        } else {
            let v = 30 + (r >> 8) as u8 % 20;
            Rgb([v, v + 10, v / 2])
        }
    });
    let boxed = box_filter(&src, 4);
    let detail = dpid(&src, 75, 50, DEFAULT_LAMBDA).unwrap();
    let (v_box, v_dpid) = (variance(&boxed), variance(&detail));
    let (e_box, e_dpid) = (gradient_energy(&boxed), gradient_energy(&detail));
    println!(
        "highlights: variance box {v_box:.0}, dpid {v_dpid:.0}; gradient energy box {e_box:.0}, dpid {e_dpid:.0}"
    );
    assert!(
        v_dpid > 1.5 * v_box,
        "variance: dpid {v_dpid} vs box {v_box}"
    );
    assert!(
        e_dpid > 1.5 * e_box,
        "gradient energy: dpid {e_dpid} vs box {e_box}"
    );
    // A larger λ keeps still more.
    let stronger = dpid(&src, 75, 50, 1.0).unwrap();
    assert!(variance(&stronger) > v_dpid);
}

#[test]
fn flat_stays_flat_at_any_scale() {
    let src = RgbImage::from_pixel(301, 203, Rgb([123, 45, 67]));
    for (w, h) in [(100, 67), (97, 61), (301, 1), (1, 1)] {
        let out = dpid(&src, w, h, DEFAULT_LAMBDA).unwrap();
        assert!(out.pixels().all(|p| p.0 == [123, 45, 67]), "{w}x{h}");
    }
}

#[test]
fn output_stays_within_the_input_range() {
    let mut rand = noise(12345);
    let src = RgbImage::from_fn(257, 190, |_, _| {
        Rgb([
            40 + (rand() % 161) as u8,
            90 + (rand() % 11) as u8,
            200 + (rand() % 56) as u8,
        ])
    });
    for lambda in [0.0, 0.5, 1.0, 3.0] {
        let out = dpid(&src, 61, 47, lambda).unwrap();
        for p in out.pixels() {
            assert!(
                (40..=200).contains(&p.0[0]) && (90..=100).contains(&p.0[1]) && p.0[2] >= 200,
                "λ {lambda}: {p:?}"
            );
        }
    }
}

#[test]
fn side_by_side_of_lanczos_and_dpid_on_a_photo() {
    let path = common::data_root().join("photos/flower.jpg");
    let bytes = std::fs::read(&path).unwrap();
    let validation = ValidationConfig::default();
    let header = validate(&bytes, &validation).unwrap();
    let photo = decode(&bytes, &header, &validation, &DecodeConfig::default()).unwrap();
    let bucket = Buckets::generate(&BucketConfig::default())
        .unwrap()
        .best_for(photo.width(), photo.height());
    let (w, h) = (bucket.width, bucket.height);
    let lanczos = lanczos3(&photo, w, h);
    let detail = dpid(&photo, w, h, DEFAULT_LAMBDA).unwrap();

    // Row 1: the two bucket-size images. Row 2: their centres enlarged 3×
    // (nearest). Row 3: the centre of a stronger 4× reduction, enlarged 6×.
    let enlarge = |img: &RgbImage, k: u32| {
        imageops::resize(
            img,
            img.width() * k,
            img.height() * k,
            imageops::FilterType::Nearest,
        )
    };
    let centre = |img: &RgbImage, cw: u32, ch: u32| {
        imageops::crop_imm(img, (img.width() - cw) / 2, (img.height() - ch) / 2, cw, ch).to_image()
    };
    let (cw, ch) = (w / 4, h / 4);
    let zoom = |img: &RgbImage| enlarge(&centre(img, cw, ch), 3);
    let (sw, sh) = (photo.width() / 4, photo.height() / 4);
    let small_lanczos = enlarge(&centre(&lanczos3(&photo, sw, sh), 64, 64), 6);
    let small_dpid = enlarge(
        &centre(&dpid(&photo, sw, sh, DEFAULT_LAMBDA).unwrap(), 64, 64),
        6,
    );
    let gap = 8;
    let col = (w.max(3 * sw) + gap) as i64;
    let rows = [0, i64::from(h + gap), i64::from(h + gap + 3 * ch + gap)];
    let mut sheet = RgbImage::from_pixel(
        col as u32 * 2,
        rows[2] as u32 + 3 * sh,
        Rgb([255, 255, 255]),
    );
    for (x, images) in [
        (0, [&lanczos, &zoom(&lanczos), &small_lanczos]),
        (col, [&detail, &zoom(&detail), &small_dpid]),
    ] {
        for (y, img) in rows.iter().zip(images) {
            imageops::replace(&mut sheet, img, x, *y);
        }
    }
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("flower_lanczos_vs_dpid.png");
    sheet.save(&out).unwrap();
    println!(
        "side-by-side (left Lanczos3, right DPID λ={DEFAULT_LAMBDA}): {}",
        out.display()
    );
    println!(
        "gradient energy at {w}x{h}: lanczos {:.0}, dpid {:.0}",
        gradient_energy(&lanczos),
        gradient_energy(&detail)
    );

    // Both are the same picture: mean colours agree within two levels.
    let mean = |img: &RgbImage| {
        let mut sum = [0f64; 3];
        for p in img.pixels() {
            for (s, v) in sum.iter_mut().zip(p.0) {
                *s += f64::from(v);
            }
        }
        sum.map(|s| s / f64::from(img.width() * img.height()))
    };
    let (a, b) = (mean(&lanczos), mean(&detail));
    assert!(
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2.0),
        "{a:?} vs {b:?}"
    );
}
