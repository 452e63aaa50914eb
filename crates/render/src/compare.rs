//! Side-by-side comparisons: images in a row at their own size, each labelled
//! above, under an optional wrapped title (reconstructions, before/after).

use image::RgbImage;

use crate::canvas::{blank, paste};
use crate::text::{TextStyle, draw_text, ellipsize, wrap};
use crate::{Result, colors};

/// One image of a comparison and its label.
#[derive(Debug, Clone)]
pub struct Panel {
    pub image: RgbImage,
    pub label: String,
}

impl Panel {
    /// A panel of `image` labelled `label`.
    pub fn new(image: RgbImage, label: impl Into<String>) -> Self {
        Self {
            image,
            label: label.into(),
        }
    }
}

/// Space around and between panels, in pixels.
const PADDING: u32 = 8;

/// Draws `panels` left to right at their own size (top-aligned), each label
/// on one line above its image (cut to the image width), with `title`
/// wrapped across the top when given. Text is drawn at twice the font size
/// when every panel is at least 256 pixels wide, else at the font size.
pub fn side_by_side(panels: &[Panel], title: Option<&str>) -> Result<RgbImage> {
    if panels.is_empty() {
        return Err(crate::Error::Empty {
            what: "side-by-side comparison",
        });
    }
    let narrowest = panels.iter().map(|p| p.image.width()).min().unwrap_or(0);
    let scale = if narrowest >= 256 { 2 } else { 1 };
    let style = TextStyle::new(scale, colors::BLACK);
    let padding = u64::from(PADDING);
    let width = panels
        .iter()
        .map(|p| u64::from(p.image.width()) + padding)
        .sum::<u64>()
        + padding;
    let title_lines = match title {
        Some(title) => wrap(
            title,
            style.chars_in(width.saturating_sub(2 * padding).min(u64::from(u32::MAX)) as u32),
        ),
        None => Vec::new(),
    };
    let line = u64::from(style.line_height());
    let title_height = title_lines.len() as u64 * line;
    let tallest = panels
        .iter()
        .map(|p| u64::from(p.image.height()))
        .max()
        .unwrap_or(0);
    let height = padding + title_height + line + tallest + padding;
    let mut out = blank("side-by-side comparison", width, height, colors::WHITE)?;
    for (index, text) in title_lines.iter().enumerate() {
        let y = padding + index as u64 * line;
        draw_text(&mut out, padding as i64, y as i64, text, &style);
    }
    let mut left = padding as i64;
    let top = (padding + title_height) as i64;
    for panel in panels {
        let label = ellipsize(&panel.label, style.chars_in(panel.image.width()));
        draw_text(&mut out, left, top, &label, &style);
        paste(&mut out, &panel.image, left, top + line as i64);
        left += i64::from(panel.image.width()) + padding as i64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn panels_sit_in_a_row_under_their_labels() {
        let a = RgbImage::from_pixel(40, 30, Rgb([255, 0, 0]));
        let b = RgbImage::from_pixel(20, 50, Rgb([0, 0, 255]));
        let out = side_by_side(
            &[Panel::new(a, "original"), Panel::new(b, "decoded")],
            Some("PSNR 31"),
        )
        .unwrap();
        // Width: 8 + 40 + 8 + 20 + 8; height: 8 + title 10 + label 10 + 50 + 8.
        assert_eq!(out.dimensions(), (84, 86));
        assert_eq!(out.get_pixel(8, 28), &Rgb([255, 0, 0]));
        assert_eq!(out.get_pixel(56, 28 + 49), &Rgb([0, 0, 255]));
        assert_eq!(out.get_pixel(8, 28 + 30), &colors::WHITE);
        // Title and labels are drawn.
        assert!((8..84).any(|x| out.get_pixel(x, 10) == &colors::BLACK));
        assert!((56..76).any(|x| (18..26).any(|y| out.get_pixel(x, y) == &colors::BLACK)));
    }

    #[test]
    fn nothing_to_compare_is_an_error() {
        assert!(side_by_side(&[], None).is_err());
    }
}
