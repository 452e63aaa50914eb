//! The few colours the drawings use.

use image::Rgb;

pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
pub const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
/// Bars and series.
pub const BLUE: Rgb<u8> = Rgb([52, 101, 164]);
/// Highlights (e.g. error maps).
pub const RED: Rgb<u8> = Rgb([204, 0, 0]);

/// `color` with each channel multiplied by `factor` (clamped to 0–255):
/// below 1 darker, above 1 lighter.
pub fn shade(color: Rgb<u8>, factor: f64) -> Rgb<u8> {
    Rgb(color
        .0
        .map(|c| (f64::from(c) * factor).round().clamp(0.0, 255.0) as u8))
}
