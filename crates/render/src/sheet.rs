//! Contact sheets: a grid of images, each with its caption wrapped under it.

use image::{Rgb, RgbImage};

use crate::canvas::{blank, fill_rect, fit, paste};
use crate::text::{TextStyle, draw_text, wrap, wrap_lines};
use crate::{Result, colors};

/// One image of a contact sheet and the text under it.
#[derive(Debug, Clone)]
pub struct Tile {
    pub image: RgbImage,
    pub caption: String,
}

impl Tile {
    /// A tile of `image` captioned `caption`.
    pub fn new(image: RgbImage, caption: impl Into<String>) -> Self {
        Self {
            image,
            caption: caption.into(),
        }
    }
}

/// The layout of a contact sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetStyle {
    /// Tiles per row (0 is taken as 1).
    pub columns: usize,
    /// Side of the square box each image is fitted into, in pixels.
    pub cell: u32,
    /// Caption lines shown under each image; longer captions end in `...`.
    pub caption_lines: usize,
    /// Caption text magnification (1: 8-pixel glyphs).
    pub text_scale: u32,
    /// Space around and between tiles, in pixels.
    pub padding: u32,
    /// An optional heading across the top.
    pub title: Option<String>,
    pub background: Rgb<u8>,
    pub text: Rgb<u8>,
}

impl Default for SheetStyle {
    fn default() -> Self {
        Self {
            columns: 4,
            cell: 256,
            caption_lines: 4,
            text_scale: 1,
            padding: 8,
            title: None,
            background: colors::WHITE,
            text: colors::BLACK,
        }
    }
}

/// Draws `tiles` in rows of `style.columns`: each image fitted (aspect kept,
/// centred) into a `cell`×`cell` box on a light frame, its caption wrapped
/// to the cell width underneath.
pub fn contact_sheet(tiles: &[Tile], style: &SheetStyle) -> Result<RgbImage> {
    if tiles.is_empty() {
        return Err(crate::Error::Empty {
            what: "contact sheet",
        });
    }
    let columns = style.columns.clamp(1, tiles.len());
    let rows = tiles.len().div_ceil(columns);
    let caption_style = TextStyle::new(style.text_scale, style.text);
    let title_style = TextStyle::new(caption_style.pixel() * 2, style.text);
    let cell = u64::from(style.cell.max(1));
    let padding = u64::from(style.padding);
    let caption_height = style.caption_lines as u64 * u64::from(caption_style.line_height());
    let tile_height = cell + padding / 2 + caption_height;
    let width = columns as u64 * (cell + padding) + padding;
    let title_lines = match &style.title {
        Some(title) => wrap(
            title,
            title_style.chars_in(width.saturating_sub(2 * padding) as u32),
        ),
        None => Vec::new(),
    };
    let title_height = title_lines.len() as u64 * u64::from(title_style.line_height());
    let height = padding + title_height + rows as u64 * (tile_height + padding);
    let mut sheet = blank("contact sheet", width, height, style.background)?;

    for (index, line) in title_lines.iter().enumerate() {
        let y = padding + index as u64 * u64::from(title_style.line_height());
        draw_text(&mut sheet, padding as i64, y as i64, line, &title_style);
    }
    let frame = colors::shade(style.background, 0.92);
    let chars = caption_style.chars_in(style.cell.max(1));
    for (index, tile) in tiles.iter().enumerate() {
        let left = padding + (index % columns) as u64 * (cell + padding);
        let top = padding + title_height + (index / columns) as u64 * (tile_height + padding);
        let (left, top) = (left as i64, top as i64);
        fill_rect(&mut sheet, left, top, cell as u32, cell as u32, frame);
        let thumb = fit(&tile.image, cell as u32, cell as u32);
        let dx = (cell as i64 - i64::from(thumb.width())) / 2;
        let dy = (cell as i64 - i64::from(thumb.height())) / 2;
        paste(&mut sheet, &thumb, left + dx, top + dy);
        let caption_top = top + cell as i64 + (padding / 2) as i64;
        for (line_index, line) in wrap_lines(&tile.caption, chars, style.caption_lines)
            .iter()
            .enumerate()
        {
            let y = caption_top + line_index as i64 * i64::from(caption_style.line_height());
            draw_text(&mut sheet, left, y, line, &caption_style);
        }
    }
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(color: [u8; 3], width: u32, height: u32, caption: &str) -> Tile {
        Tile::new(RgbImage::from_pixel(width, height, Rgb(color)), caption)
    }

    #[test]
    fn lays_out_rows_of_fitted_images_with_captions() {
        let tiles = vec![
            tile([255, 0, 0], 64, 32, "a red wide one"),
            tile([0, 255, 0], 16, 48, "green, tall"),
            tile([0, 0, 255], 8, 8, "blue"),
        ];
        let style = SheetStyle {
            columns: 2,
            cell: 64,
            caption_lines: 2,
            padding: 4,
            ..SheetStyle::default()
        };
        let sheet = contact_sheet(&tiles, &style).unwrap();
        // 2 columns of 64 + 3 paddings; 2 rows of (64 + 2 + 2 caption lines of 10) + paddings.
        assert_eq!(sheet.dimensions(), (2 * 68 + 4, 4 + 2 * (64 + 2 + 20 + 4)));
        // The wide red image fills the first cell's width, centred vertically.
        assert_eq!(sheet.get_pixel(4, 4 + 32), &Rgb([255, 0, 0]));
        assert_ne!(sheet.get_pixel(4, 4), &Rgb([255, 0, 0]));
        // The tiny blue image is enlarged to the whole cell of the second row.
        assert_eq!(sheet.get_pixel(4 + 1, 4 + 90 + 1), &Rgb([0, 0, 255]));
        // Caption text is drawn under the first cell.
        let caption_band = (4..68).flat_map(|x| (70..90).map(move |y| (x, y)));
        assert!(
            caption_band
                .into_iter()
                .any(|(x, y)| sheet.get_pixel(x, y) == &colors::BLACK)
        );
    }

    #[test]
    fn a_title_adds_a_band_and_empty_input_is_an_error() {
        let tiles = vec![tile([9, 9, 9], 4, 4, "")];
        let plain = contact_sheet(&tiles, &SheetStyle::default()).unwrap();
        let titled = SheetStyle {
            title: Some("dataset flowers".into()),
            ..SheetStyle::default()
        };
        let with_title = contact_sheet(&tiles, &titled).unwrap();
        assert_eq!(with_title.height(), plain.height() + 20);
        assert!(contact_sheet(&[], &SheetStyle::default()).is_err());
    }

    #[test]
    fn huge_layouts_are_errors_not_panics() {
        let tiles = vec![tile([0, 0, 0], 1, 1, "x")];
        let style = SheetStyle {
            cell: u32::MAX,
            ..SheetStyle::default()
        };
        assert!(contact_sheet(&tiles, &style).is_err());
    }
}
