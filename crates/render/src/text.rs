//! Text in an embedded 8×8 bitmap font (the public-domain glyphs of the
//! `font8x8` crate), so that labels render the same on every machine with no
//! font files installed.
//!
//! Covered: ASCII, Latin-1, Greek, box drawing and block elements; common
//! typographic punctuation (curly quotes, dashes, ellipsis, bullets) is drawn
//! as its ASCII look-alike, and any other character as a hollow box. Drawing
//! clips at the image border and never fails.

use font8x8::legacy::{BASIC_LEGACY, BLOCK_LEGACY, BOX_LEGACY, GREEK_LEGACY, LATIN_LEGACY};
use image::{Rgb, RgbImage};

/// Glyph side in font pixels; every character advances by this much.
pub const GLYPH: u32 = 8;

/// Empty font pixels between two lines of text.
const LINE_GAP: u32 = 2;

/// Drawn for characters the font does not have: a hollow box.
const MISSING: [u8; 8] = [0x00, 0x7E, 0x42, 0x42, 0x42, 0x42, 0x7E, 0x00];

/// How text is drawn: an integer magnification of the 8×8 glyphs and a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStyle {
    /// Each font pixel becomes a `scale`×`scale` square (0 is taken as 1).
    pub scale: u32,
    pub color: Rgb<u8>,
}

impl TextStyle {
    /// Text of `scale` in `color`.
    pub fn new(scale: u32, color: Rgb<u8>) -> Self {
        Self { scale, color }
    }

    /// The magnification actually used (at least 1).
    pub fn pixel(&self) -> u32 {
        self.scale.max(1)
    }

    /// Width of one character in image pixels.
    pub fn char_width(&self) -> u32 {
        GLYPH * self.pixel()
    }

    /// Height of one line, gap included, in image pixels.
    pub fn line_height(&self) -> u32 {
        (GLYPH + LINE_GAP) * self.pixel()
    }

    /// Width of `text` on one line, in image pixels.
    pub fn width(&self, text: &str) -> u32 {
        let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
        chars.saturating_mul(self.char_width())
    }

    /// Characters that fit in `pixels` of width.
    pub fn chars_in(&self, pixels: u32) -> usize {
        (pixels / self.char_width()) as usize
    }
}

/// The 8×8 bitmap of `c`: one byte per row, bit 0 the leftmost pixel.
pub fn glyph(c: char) -> [u8; 8] {
    let c = ascii_lookalike(c).unwrap_or(c);
    let code = c as usize;
    match code {
        0x20..=0x7E => BASIC_LEGACY[code],
        0x00..=0x1F | 0x7F => BASIC_LEGACY[0x20],
        0xA0..=0xFF => LATIN_LEGACY[code - 0xA0],
        0x390..=0x3C9 => GREEK_LEGACY[code - 0x390],
        0x2500..=0x257F => BOX_LEGACY[code - 0x2500],
        0x2580..=0x259F => BLOCK_LEGACY[code - 0x2580],
        _ => MISSING,
    }
}

/// The ASCII character drawn for common typographic punctuation.
fn ascii_lookalike(c: char) -> Option<char> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => '"',
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{2022}' | '\u{2027}' | '\u{00B7}' => '*',
        '\u{2026}' => '.',
        '\u{00A0}' | '\u{2002}'..='\u{200B}' | '\t' => ' ',
        '\u{00D7}' => 'x',
        _ => return None,
    })
}

/// Draws `text` on one line with its top-left corner at `(x, y)`; whatever
/// falls outside the image is clipped.
pub fn draw_text(image: &mut RgbImage, x: i64, y: i64, text: &str, style: &TextStyle) {
    let advance = i64::from(style.char_width());
    for (index, c) in text.chars().enumerate() {
        let left = x.saturating_add((index as i64).saturating_mul(advance));
        if left >= i64::from(image.width()) {
            break;
        }
        draw_glyph(image, left, y, &glyph(c), style, false);
    }
}

/// Draws `text` rotated 90° counter-clockwise (reading bottom to top), with
/// the bottom-left corner of its first character at `(x, y)`: the usual
/// y-axis label.
pub fn draw_text_vertical(image: &mut RgbImage, x: i64, y: i64, text: &str, style: &TextStyle) {
    let advance = i64::from(style.char_width());
    for (index, c) in text.chars().enumerate() {
        let bottom = y.saturating_sub((index as i64).saturating_mul(advance));
        if bottom < 0 {
            break;
        }
        let top = bottom - advance;
        draw_glyph(image, x, top, &glyph(c), style, true);
    }
}

/// Draws one glyph cell at `(x, y)`, upright or rotated counter-clockwise.
fn draw_glyph(
    image: &mut RgbImage,
    x: i64,
    y: i64,
    bits: &[u8; 8],
    style: &TextStyle,
    rotated: bool,
) {
    let scale = i64::from(style.pixel());
    let side = GLYPH as i64;
    for (row, byte) in bits.iter().enumerate() {
        for column in 0..side {
            if byte & (1 << column) == 0 {
                continue;
            }
            // Rotating counter-clockwise sends (column, row) to (row, 7 − column).
            let (cx, cy) = if rotated {
                (row as i64, side - 1 - column)
            } else {
                (column, row as i64)
            };
            crate::canvas::fill_rect(
                image,
                x + cx * scale,
                y + cy * scale,
                scale as u32,
                scale as u32,
                style.color,
            );
        }
    }
}

/// Breaks `text` into lines of at most `max_chars` characters at spaces,
/// splitting words longer than a line; runs of whitespace collapse to one
/// space and line breaks in the text are kept. At least one character per
/// line is always placed, so this terminates for any width.
pub fn wrap(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        let mut line_len = 0;
        for word in paragraph.split_whitespace() {
            let mut word: Vec<char> = word.chars().collect();
            let needed = if line_len == 0 {
                word.len()
            } else {
                line_len + 1 + word.len()
            };
            if needed <= max_chars {
                if line_len > 0 {
                    line.push(' ');
                    line_len += 1;
                }
                line.extend(word.iter());
                line_len += word.len();
                continue;
            }
            if line_len > 0 {
                lines.push(std::mem::take(&mut line));
            }
            while word.len() > max_chars {
                let rest = word.split_off(max_chars);
                lines.push(word.into_iter().collect());
                word = rest;
            }
            line_len = word.len();
            line = word.into_iter().collect();
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// [`wrap`], keeping at most `max_lines` lines; when text is cut, the last
/// kept line ends in `...`.
pub fn wrap_lines(text: &str, max_chars: usize, max_lines: usize) -> Vec<String> {
    let mut lines = wrap(text, max_chars);
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = ellipsize(&format!("{last}..."), max_chars);
        }
    }
    lines
}

/// `text` on one line of at most `max_chars` characters, ending in `...` when cut.
pub fn ellipsize(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_string();
    }
    if max_chars <= 3 {
        return text.chars().take(max_chars).collect();
    }
    let mut kept: String = text.chars().take(max_chars - 3).collect();
    kept.push_str("...");
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

    fn lit(image: &RgbImage) -> usize {
        image.pixels().filter(|p| p.0 != [0, 0, 0]).count()
    }

    #[test]
    fn glyphs_cover_ascii_latin_and_fall_back_to_a_box() {
        assert_eq!(glyph('A'), BASIC_LEGACY[65]);
        assert_eq!(glyph('é'), LATIN_LEGACY[0xE9 - 0xA0]);
        assert_eq!(glyph('λ'), GREEK_LEGACY['λ' as usize - 0x390]);
        assert_eq!(glyph('\u{2019}'), glyph('\''));
        assert_eq!(glyph('漢'), MISSING);
        assert_eq!(glyph('\n'), [0; 8]);
    }

    #[test]
    fn text_is_drawn_and_clipped_without_panicking() {
        let mut image = RgbImage::new(40, 12);
        let style = TextStyle::new(1, WHITE);
        draw_text(&mut image, 2, 2, "Hi", &style);
        let drawn = lit(&image);
        assert!(drawn > 10, "{drawn}");
        // Far outside, partly outside, negative coordinates, huge scale: all clip.
        draw_text(&mut image, -5, -3, "clipped text", &style);
        draw_text(&mut image, i64::MAX - 3, i64::MIN, "x", &style);
        draw_text(&mut image, 0, 0, "big", &TextStyle::new(100, WHITE));
        draw_text_vertical(&mut image, 30, 11, "up", &style);
        draw_text_vertical(&mut image, i64::MIN, i64::MAX, "up", &style);
        assert!(lit(&image) > drawn);
    }

    #[test]
    fn vertical_text_is_the_rotated_horizontal_text() {
        let style = TextStyle::new(1, WHITE);
        let mut flat = RgbImage::new(16, 8);
        draw_text(&mut flat, 0, 0, "Fo", &style);
        let mut up = RgbImage::new(8, 16);
        draw_text_vertical(&mut up, 0, 16, "Fo", &style);
        let rotated = image::imageops::rotate270(&flat);
        assert_eq!(up, rotated);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(
            wrap("a close-up of a pink  rose", 10),
            vec!["a close-up", "of a pink", "rose"]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 20), vec!["one", "two"]);
        assert_eq!(wrap("", 5), vec![""]);
        assert_eq!(wrap("xy", 0), vec!["x", "y"]);
        for line in wrap("the quick brown fox jumps over the lazy dog", 7) {
            assert!(line.chars().count() <= 7, "{line}");
        }
    }

    #[test]
    fn cut_text_ends_in_an_ellipsis() {
        let lines = wrap_lines("one two three four five six", 9, 2);
        assert_eq!(lines, vec!["one two", "three..."]);
        assert_eq!(ellipsize("abcdefgh", 6), "abc...");
        assert_eq!(ellipsize("abc", 6), "abc");
        assert_eq!(ellipsize("abcdef", 2), "ab");
    }

    #[test]
    fn measures_are_in_image_pixels() {
        let style = TextStyle::new(2, WHITE);
        assert_eq!(style.width("abc"), 48);
        assert_eq!(style.line_height(), 20);
        assert_eq!(style.chars_in(50), 3);
        assert_eq!(TextStyle::new(0, WHITE).char_width(), 8);
    }
}
