//! DPID's properties: detail kept where a box filter averages it away (more
//! high-frequency energy), flat stays flat, the output stays within the
//! input's range; and Lanczos3 against DPID on a real photo.

use image::{Rgb, RgbImage};
use ssdit_data::resize::{DEFAULT_LAMBDA, dpid, lanczos3};
use ssdit_data::{BucketConfig, Buckets, DecodeConfig, ValidationConfig, decode, validate};
use ssdit_testkit::shared_data;

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

/// Energy of the spectrum above a quarter cycle per pixel (on either axis)
/// of the first channel, mean removed, per pixel²: a 2-D DFT done as row
/// then column transforms (the images here are small).
fn high_frequency_energy(img: &RgbImage) -> f64 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let values: Vec<f64> = img.pixels().map(|p| f64::from(p.0[0])).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let dft = |n: usize, k: usize, i: usize| {
        let angle = -2.0 * std::f64::consts::PI * (k * i % n) as f64 / n as f64;
        (angle.cos(), angle.sin())
    };
    // Along rows: rows[y * w + kx].
    let mut rows = vec![(0.0, 0.0); w * h];
    for y in 0..h {
        for kx in 0..w {
            let (mut re, mut im) = (0.0, 0.0);
            for x in 0..w {
                let (c, s) = dft(w, kx, x);
                let v = values[y * w + x] - mean;
                re += v * c;
                im += v * s;
            }
            rows[y * w + kx] = (re, im);
        }
    }
    let frequency = |k: usize, n: usize| k.min(n - k) as f64 / n as f64;
    let mut energy = 0.0;
    for kx in 0..w {
        for ky in 0..h {
            if frequency(kx, w).max(frequency(ky, h)) < 0.25 {
                continue;
            }
            let (mut re, mut im) = (0.0, 0.0);
            for y in 0..h {
                let (c, s) = dft(h, ky, y);
                let (a, b) = rows[y * w + kx];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            energy += re * re + im * im;
        }
    }
    energy / ((w * h) as f64).powi(2)
}

/// A checkerboard lattice of one-pixel highlights (one every `period` pixels
/// on both axes) on a dark ground, `side` pixels square.
fn highlight_lattice(side: u32, period: u32) -> RgbImage {
    RgbImage::from_fn(side, side, |x, y| {
        if x % period == 0 && y % period == 0 {
            Rgb([230, 230, 230])
        } else {
            Rgb([20, 20, 20])
        }
    })
}

/// The property DPID is built on: a pixel unlike its surroundings weighs more
/// than its area. A lattice of one-pixel highlights reduced by a factor that
/// does not divide its period leaves some footprints with a highlight and
/// some without; the box filter dilutes each highlight into its footprint
/// (a faint, low-contrast pattern), DPID keeps it bright, so far more energy
/// stays at high spatial frequencies.
///
/// (A balanced black-and-white checkerboard is not such a case: there every
/// pixel is as far from the guidance as any other, and DPID keeps no more
/// than the box filter — slightly less in mixed footprints.)
#[test]
fn highlight_lattice_keeps_more_high_frequency_energy_than_the_box_filter() {
    for (period, out, factor) in [(4, 80, Some(3)), (5, 80, Some(3)), (5, 96, None)] {
        let src = highlight_lattice(240, period);
        // The independent box filter where the factor is an integer; λ = 0
        // (the coverage-weighted box filter) for the 2.5× reduction.
        let boxed = match factor {
            Some(factor) => box_filter(&src, factor),
            None => dpid(&src, out, out, 0.0).unwrap(),
        };
        let detail = dpid(&src, out, out, DEFAULT_LAMBDA).unwrap();
        let (e_box, e_dpid) = (
            high_frequency_energy(&boxed),
            high_frequency_energy(&detail),
        );
        println!(
            "highlights every {period} px, 240 -> {out}: high-frequency energy box {e_box:.1}, dpid {e_dpid:.1}"
        );
        assert!(e_box > 10.0, "the box output is not flat: {e_box}");
        assert!(
            e_dpid > 3.0 * e_box,
            "period {period}, {out}: dpid {e_dpid} vs box {e_box}"
        );
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

/// Lanczos3 and DPID on a real photo are the same picture (mean colours
/// agree). The side-by-side to look at is
/// the `dpid_vs_lanczos` example (docs/images/dpid_vs_lanczos.png).
#[test]
fn lanczos_and_dpid_agree_on_a_photo() {
    let path = shared_data("photos").join("flower.jpg");
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
    // Lanczos3 sharpens (its negative lobes overshoot edges), so it scores
    // higher here than DPID: printed for the record, not a property.
    let (e_lanczos, e_dpid) = (gradient_energy(&lanczos), gradient_energy(&detail));
    println!("gradient energy at {w}x{h}: lanczos {e_lanczos:.0}, dpid {e_dpid:.0}");

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
