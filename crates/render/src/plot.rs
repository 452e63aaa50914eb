//! Line plots in the style of the seed's `scripts/generate_graph.py`
//! (matplotlib's `dark_background`): the raw series faint, its exponentially
//! smoothed trend bold, a dashed grid at round ticks, axis titles and a
//! legend. Lines are anti-aliased and blended with their opacity.

use image::{Rgb, RgbImage};

use crate::canvas::{blank, fill_rect};
use crate::text::{TextStyle, draw_text, draw_text_vertical, ellipsize};
use crate::{Error, Result};

const BACKGROUND: Rgb<u8> = Rgb([17, 17, 17]);
const FOREGROUND: Rgb<u8> = Rgb([235, 235, 235]);
const AXES: Rgb<u8> = Rgb([150, 150, 150]);
const LEGEND: Rgb<u8> = Rgb([40, 40, 40]);
const MARGIN_LEFT: u32 = 110;
const MARGIN_RIGHT: u32 = 30;
const MARGIN_TOP: u32 = 56;
const MARGIN_BOTTOM: u32 = 64;
/// Smallest plot drawn, so that margins and labels always have room.
const MIN_SIZE: (u32, u32) = (
    MARGIN_LEFT + MARGIN_RIGHT + 60,
    MARGIN_TOP + MARGIN_BOTTOM + 40,
);
/// Opacity of the dashed grid.
const GRID_ALPHA: f32 = 0.35;
/// Target number of tick intervals per axis.
const TICKS: f64 = 6.0;

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text; an empty label stays out of the legend.
    pub label: String,
    /// `(x, y)` points in drawing order; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    pub color: Rgb<u8>,
    /// Line width in pixels.
    pub width: f32,
    /// Opacity, 0 (invisible) to 1.
    pub alpha: f32,
}

/// A line plot: title, axis titles and series, drawn by [`LinePlot::render`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Image size in pixels (at least 200×160 is used).
    pub width: u32,
    pub height: u32,
}

/// pandas' `Series.ewm(span=span).mean()` (`adjust=True`): the mean of all
/// values so far with weights `(1 − α)^age`, `α = 2/(span + 1)` — the
/// smoothing of the seed's plots.
pub fn ewm(values: &[f64], span: f64) -> Vec<f64> {
    let keep = 1.0 - 2.0 / (span.max(1.0) + 1.0);
    let (mut numerator, mut denominator) = (0.0, 0.0);
    values
        .iter()
        .map(|&v| {
            numerator = v + keep * numerator;
            denominator = 1.0 + keep * denominator;
            numerator / denominator
        })
        .collect()
}

impl LinePlot {
    /// An empty 1000×600 plot (the seed's 10×6 inch figure) titled `title`.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            width: 1000,
            height: 600,
        }
    }

    /// Sets the image size.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Adds a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Draws the plot. With no finite point it still draws its frame, title
    /// and a "no data yet" note; a non-finite size or opacity is an error.
    pub fn render(&self) -> Result<RgbImage> {
        for s in &self.series {
            if !(s.width.is_finite() && s.alpha.is_finite() && s.width >= 0.0) {
                return Err(Error::Value {
                    what: "line plot",
                    reason: format!(
                        "series {:?} has width {} and opacity {}: both must be finite, the width non-negative",
                        s.label, s.width, s.alpha
                    ),
                });
            }
        }
        let width = self.width.max(MIN_SIZE.0);
        let height = self.height.max(MIN_SIZE.1);
        let mut image = blank("line plot", width.into(), height.into(), BACKGROUND)?;
        let frame = Frame {
            left: f64::from(MARGIN_LEFT),
            right: f64::from(width - MARGIN_RIGHT),
            top: f64::from(MARGIN_TOP),
            bottom: f64::from(height - MARGIN_BOTTOM),
        };
        self.draw_titles(&mut image, &frame);
        let finite: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if finite.is_empty() {
            frame.outline(&mut image);
            let note = TextStyle::new(2, AXES);
            draw_text(
                &mut image,
                frame.left as i64 + 20,
                frame.top as i64 + 20,
                "no data yet",
                &note,
            );
            return Ok(image);
        }
        let scale = Scale {
            frame,
            x: padded(finite.iter().map(|p| p.0), 0.0),
            y: padded(finite.iter().map(|p| p.1), 0.05),
        };
        scale.draw_grid(&mut image);
        scale.frame.outline(&mut image);
        for s in &self.series {
            let points: Vec<(f32, f32)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|p| scale.map(p))
                .collect();
            match points.as_slice() {
                [only] => smooth_line(&mut image, *only, *only, s.width + 2.0, s.color, s.alpha),
                _ => {
                    for pair in points.windows(2) {
                        smooth_line(&mut image, pair[0], pair[1], s.width, s.color, s.alpha);
                    }
                }
            }
        }
        self.draw_legend(&mut image, &scale.frame);
        Ok(image)
    }

    fn draw_titles(&self, image: &mut RgbImage, frame: &Frame) {
        let big = TextStyle::new(2, FOREGROUND);
        let width = image.width();
        let title = ellipsize(&self.title, big.chars_in(width));
        let x = (i64::from(width) - i64::from(big.width(&title))) / 2;
        draw_text(image, x, 16, &title, &big);
        let x_label = ellipsize(
            &self.x_label,
            big.chars_in((frame.right - frame.left) as u32),
        );
        let x = (frame.left + frame.right) / 2.0 - f64::from(big.width(&x_label)) / 2.0;
        draw_text(
            image,
            x as i64,
            i64::from(image.height()) - 26,
            &x_label,
            &big,
        );
        let y_label = ellipsize(
            &self.y_label,
            big.chars_in((frame.bottom - frame.top) as u32),
        );
        let y = (frame.top + frame.bottom) / 2.0 + f64::from(big.width(&y_label)) / 2.0;
        draw_text_vertical(image, 10, y as i64, &y_label, &big);
    }

    fn draw_legend(&self, image: &mut RgbImage, frame: &Frame) {
        let labelled: Vec<&Series> = self.series.iter().filter(|s| !s.label.is_empty()).collect();
        if labelled.is_empty() {
            return;
        }
        let text = TextStyle::new(1, FOREGROUND);
        let text_width = labelled
            .iter()
            .map(|s| text.width(&s.label))
            .max()
            .unwrap_or(0);
        let (w, h) = (text_width + 46, 16 * labelled.len() as u32 + 10);
        let x = frame.right as i64 - i64::from(w) - 10;
        let y = frame.top as i64 + 10;
        fill_rect(image, x, y, w, h, LEGEND);
        for (i, s) in labelled.iter().enumerate() {
            let row = y + 8 + 16 * i as i64;
            let middle = row as f32 + 4.0;
            smooth_line(
                image,
                (x as f32 + 8.0, middle),
                (x as f32 + 30.0, middle),
                2.5,
                s.color,
                1.0,
            );
            draw_text(image, x + 38, row, &s.label, &text);
        }
    }
}

/// The plotting area, in image pixels.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn outline(&self, image: &mut RgbImage) {
        let (l, r, t, b) = (
            self.left as f32,
            self.right as f32,
            self.top as f32,
            self.bottom as f32,
        );
        for (from, to) in [
            ((l, t), (r, t)),
            ((r, t), (r, b)),
            ((r, b), (l, b)),
            ((l, b), (l, t)),
        ] {
            smooth_line(image, from, to, 1.0, AXES, 1.0);
        }
    }
}

/// The data ranges mapped onto a frame.
struct Scale {
    frame: Frame,
    x: (f64, f64),
    y: (f64, f64),
}

impl Scale {
    /// The image position of a data point.
    fn map(&self, (x, y): (f64, f64)) -> (f32, f32) {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        let f = &self.frame;
        (
            (f.left + fx * (f.right - f.left)) as f32,
            (f.bottom - fy * (f.bottom - f.top)) as f32,
        )
    }

    /// Dashed grid lines and labels at the round ticks of both axes.
    fn draw_grid(&self, image: &mut RgbImage) {
        let text = TextStyle::new(1, FOREGROUND);
        let f = &self.frame;
        for tick in ticks(self.y.0, self.y.1) {
            let (_, y) = self.map((self.x.0, tick));
            let y = y.round() as i64;
            dashed(image, true, y, f.left as i64, f.right as i64);
            let label = tick_label(tick, self.y.1 - self.y.0);
            let x = f.left as i64 - 8 - i64::from(text.width(&label));
            draw_text(image, x, y - 4, &label, &text);
        }
        for tick in ticks(self.x.0, self.x.1) {
            let (x, _) = self.map((tick, self.y.0));
            let x = x.round() as i64;
            dashed(image, false, x, f.top as i64, f.bottom as i64);
            let label = tick_label(tick, self.x.1 - self.x.0);
            let left = x - i64::from(text.width(&label)) / 2;
            draw_text(image, left, f.bottom as i64 + 8, &label, &text);
        }
    }
}

/// Blends `color` into pixel `(x, y)` with opacity `alpha`; outside is ignored.
fn blend(image: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>, alpha: f32) {
    if x < 0 || y < 0 || x >= i64::from(image.width()) || y >= i64::from(image.height()) {
        return;
    }
    let alpha = alpha.clamp(0.0, 1.0);
    let pixel = image.get_pixel_mut(x as u32, y as u32);
    for (channel, value) in pixel.0.iter_mut().zip(color.0) {
        *channel = (f32::from(*channel) * (1.0 - alpha) + f32::from(value) * alpha).round() as u8;
    }
}

/// A line from `a` to `b`, `width` pixels thick, anti-aliased (coverage from
/// the distance to the segment, with a one-pixel soft edge). Only pixels
/// inside the image are visited.
fn smooth_line(
    image: &mut RgbImage,
    a: (f32, f32),
    b: (f32, f32),
    width: f32,
    color: Rgb<u8>,
    alpha: f32,
) {
    let half = width / 2.0;
    let (w, h) = (image.width() as f32, image.height() as f32);
    let min_x = (a.0.min(b.0) - half - 1.0).floor().max(0.0);
    let max_x = (a.0.max(b.0) + half + 1.0).ceil().min(w - 1.0);
    let min_y = (a.1.min(b.1) - half - 1.0).floor().max(0.0);
    let max_y = (a.1.max(b.1) + half + 1.0).ceil().min(h - 1.0);
    if min_x > max_x || min_y > max_y {
        return;
    }
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    for y in min_y as i64..=max_y as i64 {
        for x in min_x as i64..=max_x as i64 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let along = if length2 > 0.0 {
                (((px - a.0) * dx + (py - a.1) * dy) / length2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (cx, cy) = (a.0 + along * dx, a.1 + along * dy);
            let distance = ((px - cx).powi(2) + (py - cy).powi(2)).sqrt();
            let coverage = (half + 0.5 - distance).clamp(0.0, 1.0);
            if coverage > 0.0 {
                blend(image, x, y, color, alpha * coverage);
            }
        }
    }
}

/// A dashed grid rule: horizontal through row `at` or vertical through
/// column `at`, from `from` to `to`.
fn dashed(image: &mut RgbImage, horizontal: bool, at: i64, from: i64, to: i64) {
    for i in from..=to {
        if (i - from) % 8 < 4 {
            let (x, y) = if horizontal { (i, at) } else { (at, i) };
            blend(image, x, y, AXES, GRID_ALPHA);
        }
    }
}

/// The range of `values`, widened by `pad` of its span on both sides (a
/// flat range gets a unit or relative span).
fn padded(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - half, hi + half);
    }
    let margin = (hi - lo) * pad;
    (lo - margin, hi + margin)
}

/// About six round tick values inside `[lo, hi]` (steps of 1, 2 or 5 × 10ⁿ).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / TICKS;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label with as many decimals as the span needs, scientific for
/// very small or large values.
fn tick_label(value: f64, span: f64) -> String {
    let magnitude = value.abs();
    if magnitude < span * 1e-9 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.1e}");
    }
    let decimals = (-(span / TICKS).log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUE: Rgb<u8> = Rgb([102, 179, 255]);

    #[test]
    fn ewm_matches_pandas_adjusted_mean() {
        // pandas: pd.Series([1, 2, 3, 4]).ewm(span=3).mean() = 1, 1.666667, 2.428571, 3.266667
        let got = ewm(&[1.0, 2.0, 3.0, 4.0], 3.0);
        for (g, want) in got.iter().zip([1.0, 1.666_666_7, 2.428_571_4, 3.266_666_7]) {
            assert!((g - want).abs() < 1e-6, "{g} vs {want}");
        }
    }

    #[test]
    fn ticks_are_round_and_inside() {
        let t = ticks(0.0, 1.0);
        assert_eq!(t.len(), 6);
        assert!(
            t.iter()
                .zip([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
                .all(|(a, b)| (a - b).abs() < 1e-12)
        );
        let t = ticks(0.013, 0.0297);
        assert!(
            t.iter().all(|v| (0.013..=0.0297).contains(v)) && t.len() >= 3,
            "{t:?}"
        );
        assert_eq!(tick_label(2e-4, 1e-4), "2.0e-4");
        assert_eq!(tick_label(0.2, 1.0), "0.2");
        assert_eq!(tick_label(0.25, 0.4), "0.25");
        assert_eq!(tick_label(1e-17, 1.0), "0");
    }

    #[test]
    fn plots_draw_lines_where_the_data_is_and_survive_bad_data() {
        let rising = Series {
            label: "loss".into(),
            points: (0..50)
                .map(|i| (i as f64, i as f64))
                .chain([(51.0, f64::NAN)])
                .collect(),
            color: BLUE,
            width: 2.0,
            alpha: 1.0,
        };
        let image = LinePlot::new("Loss", "Global Step", "Loss")
            .size(400, 300)
            .series(rising)
            .render()
            .unwrap();
        assert_eq!(image.dimensions(), (400, 300));
        let is_blue = |p: &Rgb<u8>| p.0[2] > 200 && p.0[0] < 150;
        assert!(image.pixels().filter(|p| is_blue(p)).count() > 100);
        // A rising line: blue near the bottom-left and top-right corners of the frame, not top-left.
        let blue_near = |x: u32, y: u32| {
            (x - 4..x + 4).any(|x| (y - 4..y + 4).any(|y| is_blue(image.get_pixel(x, y))))
        };
        let (left, right, top, bottom) = (
            MARGIN_LEFT,
            400 - MARGIN_RIGHT,
            MARGIN_TOP,
            300 - MARGIN_BOTTOM,
        );
        let pad = ((bottom - top) as f64 * 0.05 / 1.1) as u32;
        assert!(blue_near(left + 4, bottom - pad));
        assert!(blue_near(right - 4, top + pad));
        assert!(!blue_near(left + 20, top + 20));
    }

    #[test]
    fn empty_tiny_and_invalid_plots() {
        let empty = LinePlot::new("Loss", "x", "y")
            .size(10, 10)
            .render()
            .unwrap();
        assert_eq!(empty.dimensions(), MIN_SIZE);
        let bad = Series {
            label: String::new(),
            points: vec![(0.0, 1.0)],
            color: BLUE,
            width: f32::NAN,
            alpha: 1.0,
        };
        let err = LinePlot::new("t", "x", "y")
            .series(bad)
            .render()
            .unwrap_err();
        assert!(err.to_string().contains("width NaN"), "{err}");
        let single = Series {
            label: "one".into(),
            points: vec![(3.0, 3.0)],
            color: BLUE,
            width: 1.0,
            alpha: 1.0,
        };
        let image = LinePlot::new("t", "x", "y")
            .series(single)
            .render()
            .unwrap();
        assert!(image.pixels().any(|p| p == &BLUE));
    }
}
