//! A side-by-side of Lanczos3 (left column) and DPID (right column) on one
//! photo, to look at:
//!
//! ```text
//! cargo run -p ssdit-data --example dpid_vs_lanczos -- PHOTO OUT.png [LAMBDA]
//! ```
//!
//! Row 1: the photo resized to its 448-px bucket. Row 2: the centre quarter
//! of row 1 enlarged 3× (nearest neighbour, so the pixels show). Row 3: the
//! centre 64×64 of a 4× reduction, enlarged 6×, where the methods differ most.

use std::error::Error;
use std::path::PathBuf;

use image::{Rgb, RgbImage, imageops};
use ssdit_data::resize::{DEFAULT_LAMBDA, dpid, lanczos3};
use ssdit_data::{BucketConfig, Buckets, DecodeConfig, ValidationConfig, decode, validate};

/// Space between the panels, in pixels.
const GAP: u32 = 8;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: dpid_vs_lanczos PHOTO OUT.png [LAMBDA]";
    let photo_path = PathBuf::from(args.next().ok_or(usage)?);
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let lambda: f32 = match args.next() {
        Some(text) => text.parse()?,
        None => DEFAULT_LAMBDA,
    };

    let bytes = std::fs::read(&photo_path)?;
    let validation = ValidationConfig::default();
    let header = validate(&bytes, &validation)?;
    let photo = decode(&bytes, &header, &validation, &DecodeConfig::default())?;
    let bucket =
        Buckets::generate(&BucketConfig::default())?.best_for(photo.width(), photo.height());
    let (w, h) = (bucket.width, bucket.height);
    let (sw, sh) = (photo.width() / 4, photo.height() / 4);

    let lanczos = lanczos3(&photo, w, h);
    let detail = dpid(&photo, w, h, lambda)?;
    let small_lanczos = lanczos3(&photo, sw, sh);
    let small_detail = dpid(&photo, sw, sh, lambda)?;

    let (cw, ch) = (w / 4, h / 4);
    let column = |bucket: &RgbImage, small: &RgbImage| {
        [
            bucket.clone(),
            enlarge(&centre(bucket, cw, ch), 3),
            enlarge(&centre(small, 64, 64), 6),
        ]
    };
    let columns = [
        column(&lanczos, &small_lanczos),
        column(&detail, &small_detail),
    ];
    let column_width = columns[0].iter().map(RgbImage::width).max().unwrap_or(0) + GAP;
    let height = columns[0].iter().map(|i| i.height() + GAP).sum::<u32>() - GAP;
    let mut sheet = RgbImage::from_pixel(2 * column_width - GAP, height, Rgb([255, 255, 255]));
    for (c, images) in columns.iter().enumerate() {
        let mut y = 0;
        for image in images {
            imageops::replace(
                &mut sheet,
                image,
                i64::from(c as u32 * column_width),
                i64::from(y),
            );
            y += image.height() + GAP;
        }
    }
    sheet.save(&out)?;
    println!(
        "{}: left Lanczos3, right DPID (λ = {lambda}); rows: {w}x{h} bucket, its centre 3×, centre of {sw}x{sh} 6×",
        out.display()
    );
    Ok(())
}

/// The `cw`×`ch` centre of `img`.
fn centre(img: &RgbImage, cw: u32, ch: u32) -> RgbImage {
    imageops::crop_imm(img, (img.width() - cw) / 2, (img.height() - ch) / 2, cw, ch).to_image()
}

/// `img` enlarged `k`× with nearest-neighbour sampling.
fn enlarge(img: &RgbImage, k: u32) -> RgbImage {
    imageops::resize(
        img,
        img.width() * k,
        img.height() * k,
        imageops::FilterType::Nearest,
    )
}
