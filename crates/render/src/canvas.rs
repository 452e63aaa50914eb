//! Clipped drawing primitives on `RgbImage`s: rectangles, lines, pasting and
//! fitting images. Coordinates are `i64` so that nothing off the image can
//! overflow or panic; whatever falls outside is simply not drawn.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use crate::{Error, MAX_SIDE, Result};

/// A blank `width`×`height` image filled with `background`, refusing sizes
/// beyond [`MAX_SIDE`] (so a bad layout is an error, not an allocation failure).
pub fn blank(what: &'static str, width: u64, height: u64, background: Rgb<u8>) -> Result<RgbImage> {
    if width == 0 || height == 0 {
        return Err(Error::Empty { what });
    }
    let limit = u64::from(MAX_SIDE);
    if width > limit || height > limit {
        return Err(Error::TooLarge {
            what,
            width,
            height,
            limit: MAX_SIDE,
        });
    }
    Ok(RgbImage::from_pixel(
        width as u32,
        height as u32,
        background,
    ))
}

/// The part of `[start, start + len)` inside `[0, limit)`, if any.
fn clip(start: i64, len: u32, limit: u32) -> Option<(u32, u32)> {
    let begin = start.max(0);
    let end = start.saturating_add(i64::from(len)).min(i64::from(limit));
    (begin < end).then_some((begin as u32, end as u32))
}

/// Fills the rectangle at `(x, y)` of `width`×`height` with `color`.
pub fn fill_rect(image: &mut RgbImage, x: i64, y: i64, width: u32, height: u32, color: Rgb<u8>) {
    let (Some((x0, x1)), Some((y0, y1))) = (
        clip(x, width, image.width()),
        clip(y, height, image.height()),
    ) else {
        return;
    };
    for py in y0..y1 {
        for px in x0..x1 {
            image.put_pixel(px, py, color);
        }
    }
}

/// Draws the one-pixel outline of a rectangle.
pub fn outline_rect(image: &mut RgbImage, x: i64, y: i64, width: u32, height: u32, color: Rgb<u8>) {
    if width == 0 || height == 0 {
        return;
    }
    fill_rect(image, x, y, width, 1, color);
    fill_rect(image, x, y + i64::from(height) - 1, width, 1, color);
    fill_rect(image, x, y, 1, height, color);
    fill_rect(image, x + i64::from(width) - 1, y, 1, height, color);
}

/// Draws a one-pixel line from `(x0, y0)` to `(x1, y1)` (Bresenham), clipped.
pub fn line(image: &mut RgbImage, from: (i64, i64), to: (i64, i64), color: Rgb<u8>) {
    let limit = i64::from(MAX_SIDE) * 4;
    let clamp = |v: i64| v.clamp(-limit, limit);
    let (mut x, mut y) = (clamp(from.0), clamp(from.1));
    let (x1, y1) = (clamp(to.0), clamp(to.1));
    let dx = (x1 - x).abs();
    let dy = -(y1 - y).abs();
    let sx = if x < x1 { 1 } else { -1 };
    let sy = if y < y1 { 1 } else { -1 };
    let mut error = dx + dy;
    loop {
        if x >= 0 && y >= 0 && x < i64::from(image.width()) && y < i64::from(image.height()) {
            image.put_pixel(x as u32, y as u32, color);
        }
        if x == x1 && y == y1 {
            break;
        }
        let doubled = 2 * error;
        if doubled >= dy {
            error += dy;
            x += sx;
        }
        if doubled <= dx {
            error += dx;
            y += sy;
        }
    }
}

/// Pastes `source` with its top-left corner at `(x, y)`, clipped.
pub fn paste(target: &mut RgbImage, source: &RgbImage, x: i64, y: i64) {
    let (Some((x0, x1)), Some((y0, y1))) = (
        clip(x, source.width(), target.width()),
        clip(y, source.height(), target.height()),
    ) else {
        return;
    };
    for ty in y0..y1 {
        for tx in x0..x1 {
            let sx = (i64::from(tx) - x) as u32;
            let sy = (i64::from(ty) - y) as u32;
            target.put_pixel(tx, ty, *source.get_pixel(sx, sy));
        }
    }
}

/// `image` scaled to fit inside `max_width`×`max_height`, keeping its aspect
/// ratio: enlarged with nearest-neighbour (small latents and decoded previews
/// stay crisp), reduced with a triangle filter. An empty image stays empty.
pub fn fit(image: &RgbImage, max_width: u32, max_height: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 || max_width == 0 || max_height == 0 {
        return RgbImage::new(0, 0);
    }
    let scale = f64::min(
        f64::from(max_width) / f64::from(width),
        f64::from(max_height) / f64::from(height),
    );
    let new_width = ((f64::from(width) * scale).round() as u32).clamp(1, max_width);
    let new_height = ((f64::from(height) * scale).round() as u32).clamp(1, max_height);
    if (new_width, new_height) == (width, height) {
        return image.clone();
    }
    let filter = if scale > 1.0 {
        FilterType::Nearest
    } else {
        FilterType::Triangle
    };
    imageops::resize(image, new_width, new_height, filter)
}

/// Images one under the other, left-aligned, `gap` pixels apart, on `background`.
pub fn stack_vertical(images: &[RgbImage], gap: u32, background: Rgb<u8>) -> Result<RgbImage> {
    let width = images
        .iter()
        .map(|i| u64::from(i.width()))
        .max()
        .unwrap_or(0);
    let height = images.iter().map(|i| u64::from(i.height())).sum::<u64>()
        + u64::from(gap) * images.len().saturating_sub(1) as u64;
    let mut out = blank("stacked images", width, height, background)?;
    let mut y = 0i64;
    for image in images {
        paste(&mut out, image, 0, y);
        y += i64::from(image.height()) + i64::from(gap);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb<u8> = Rgb([255, 0, 0]);

    #[test]
    fn rectangles_clip_at_every_border() {
        let mut image = RgbImage::new(4, 4);
        fill_rect(&mut image, -2, -2, 3, 3, RED);
        assert_eq!(image.get_pixel(0, 0), &RED);
        assert_eq!(image.get_pixel(1, 1), &Rgb([0, 0, 0]));
        fill_rect(&mut image, 3, 3, u32::MAX, u32::MAX, RED);
        assert_eq!(image.get_pixel(3, 3), &RED);
        fill_rect(&mut image, i64::MAX, i64::MIN, 5, 5, RED);
        outline_rect(&mut image, 0, 0, 4, 4, RED);
        assert_eq!(image.pixels().filter(|p| **p == RED).count(), 12);
    }

    #[test]
    fn lines_reach_both_ends_and_clip() {
        let mut image = RgbImage::new(5, 5);
        line(&mut image, (0, 0), (4, 4), RED);
        assert!((0..5).all(|i| image.get_pixel(i, i) == &RED));
        line(&mut image, (-100, 2), (100, 2), RED);
        assert!((0..5).all(|i| image.get_pixel(i, 2) == &RED));
        line(&mut image, (i64::MIN, 0), (i64::MAX, 0), RED);
    }

    #[test]
    fn fitting_keeps_the_aspect_ratio() {
        let image = RgbImage::from_pixel(40, 20, RED);
        assert_eq!(fit(&image, 10, 10).dimensions(), (10, 5));
        assert_eq!(fit(&image, 200, 200).dimensions(), (200, 100));
        assert_eq!(fit(&image, 40, 20), image);
        assert_eq!(fit(&RgbImage::new(0, 3), 10, 10).dimensions(), (0, 0));
        assert_eq!(fit(&RgbImage::new(1000, 1), 10, 10).dimensions(), (10, 1));
    }

    #[test]
    fn stacking_and_pasting() {
        let a = RgbImage::from_pixel(3, 2, RED);
        let b = RgbImage::from_pixel(5, 1, Rgb([0, 255, 0]));
        let out = stack_vertical(&[a, b], 1, Rgb([0, 0, 0])).unwrap();
        assert_eq!(out.dimensions(), (5, 4));
        assert_eq!(out.get_pixel(0, 1), &RED);
        assert_eq!(out.get_pixel(0, 2), &Rgb([0, 0, 0]));
        assert_eq!(out.get_pixel(4, 3), &Rgb([0, 255, 0]));
        assert!(stack_vertical(&[], 1, RED).is_err());
        let mut target = RgbImage::new(2, 2);
        paste(&mut target, &out, -4, -3);
        assert_eq!(target.get_pixel(0, 0), &Rgb([0, 255, 0]));
    }

    #[test]
    fn oversized_canvases_are_refused() {
        let err = blank("test", u64::from(MAX_SIDE) + 1, 1, RED).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        assert!(blank("test", 0, 5, RED).is_err());
    }
}
