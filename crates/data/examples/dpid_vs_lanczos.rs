//! A labelled side-by-side of the original photo, Lanczos3 and DPID, to look
//! at (`docs/images/dpid_vs_lanczos.png` is this on
//! `../shared/data/photos/flower.jpg`):
//!
//! ```text
//! cargo run -p ssdit-data --example dpid_vs_lanczos -- PHOTO OUT.png [LAMBDA]
//! ```
//!
//! Columns: the original, Lanczos3, DPID (with its λ). Row 1: the photo
//! (original size) and its reductions to its 448-px bucket. Row 2: the centre
//! quarter of row 1, enlarged 3× the reduction's pixels. Row 3: the centre
//! 64×64 of a 4× reduction enlarged 6×, where the methods differ most. The
//! enlargements are nearest-neighbour, so every pixel shows; the original's
//! panels show the same part of the photo at the same size.

use std::error::Error;
use std::path::PathBuf;

use image::{Rgb, RgbImage, imageops};
use ssdit_data::resize::{DEFAULT_LAMBDA, dpid, lanczos3};
use ssdit_data::{BucketConfig, Buckets, DecodeConfig, ValidationConfig, decode, validate};
use ssdit_render::canvas::{blank, paste, stack_vertical};
use ssdit_render::{Panel, save_png, side_by_side};

/// Space between the rows, in pixels.
const GAP: u32 = 8;
/// Side of the centre of the 4× reduction shown in row 3, and its enlargement.
const DETAIL: u32 = 64;
const DETAIL_ZOOM: u32 = 6;
/// Enlargement of the centre quarter in row 2.
const QUARTER_ZOOM: u32 = 3;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// One column: the whole image, its centre quarter, the centre of its 4×
/// reduction.
struct Column {
    label: String,
    whole: RgbImage,
    reduced: RgbImage,
}

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

    let columns = [
        Column {
            label: "original".into(),
            whole: photo.clone(),
            reduced: photo.clone(),
        },
        Column {
            label: "Lanczos3".into(),
            whole: lanczos3(&photo, w, h),
            reduced: lanczos3(&photo, sw, sh),
        },
        Column {
            label: format!("DPID, λ = {lambda}"),
            whole: dpid(&photo, w, h, lambda)?,
            reduced: dpid(&photo, sw, sh, lambda)?,
        },
    ];
    let quarter = ((0.25, 0.25), (w / 4 * QUARTER_ZOOM, h / 4 * QUARTER_ZOOM));
    let detail = (
        (
            f64::from(DETAIL) / f64::from(sw),
            f64::from(DETAIL) / f64::from(sh),
        ),
        (DETAIL * DETAIL_ZOOM, DETAIL * DETAIL_ZOOM),
    );
    let rows: Vec<[RgbImage; 3]> = columns
        .iter()
        .map(|c| {
            [
                c.whole.clone(),
                centre_zoom(&c.whole, quarter.0, quarter.1),
                centre_zoom(&c.reduced, detail.0, detail.1),
            ]
        })
        .collect();
    let row_heights: Vec<u32> = (0..3)
        .map(|r| rows.iter().map(|c| c[r].height()).max().unwrap_or(0))
        .collect();
    let mut panels = Vec::with_capacity(columns.len());
    for (column, images) in columns.iter().zip(&rows) {
        let padded = images
            .iter()
            .zip(&row_heights)
            .map(|(image, &height)| pad_to_height(image, height))
            .collect::<Result<Vec<_>, _>>()?;
        panels.push(Panel::new(
            stack_vertical(&padded, GAP, WHITE)?,
            column.label.clone(),
        ));
    }
    let title = format!(
        "{}: rows: the {}x{} photo and its {w}x{h} bucket; the centre quarter, 3x; the centre of the {sw}x{sh} (4x) reduction, 6x (nearest-neighbour enlargements)",
        photo_path.file_name().unwrap_or_default().to_string_lossy(),
        photo.width(),
        photo.height(),
    );
    save_png(&side_by_side(&panels, Some(&title))?, &out)?;
    println!(
        "{}: original, Lanczos3, DPID (λ = {lambda}); rows: {w}x{h} bucket, its centre 3×, centre of {sw}x{sh} 6×",
        out.display()
    );
    Ok(())
}

/// The centre `fraction` of `img` (of its width and height) enlarged with
/// nearest-neighbour to `size`: the same part of the photo at the same size
/// in every column, whatever the column's resolution.
fn centre_zoom(img: &RgbImage, fraction: (f64, f64), size: (u32, u32)) -> RgbImage {
    let side = |length: u32, fraction: f64| {
        ((f64::from(length) * fraction).round() as u32).clamp(1, length)
    };
    let (cw, ch) = (
        side(img.width(), fraction.0),
        side(img.height(), fraction.1),
    );
    let centre =
        imageops::crop_imm(img, (img.width() - cw) / 2, (img.height() - ch) / 2, cw, ch).to_image();
    imageops::resize(&centre, size.0, size.1, imageops::FilterType::Nearest)
}

/// `img` on a white background `height` pixels tall (top-aligned).
fn pad_to_height(img: &RgbImage, height: u32) -> ssdit_render::Result<RgbImage> {
    let mut out = blank(
        "padded panel",
        u64::from(img.width()),
        u64::from(height),
        WHITE,
    )?;
    paste(&mut out, img, 0, 0);
    Ok(out)
}
