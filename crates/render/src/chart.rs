//! Bar charts and histograms with a title, labelled axes, "nice" y ticks
//! (1, 2 or 5 × 10ᵏ) with grid lines, optional ± spread whiskers, and
//! negative values drawn below the zero line.

use image::{Rgb, RgbImage};

use crate::canvas::{blank, fill_rect, line};
use crate::text::{TextStyle, draw_text, draw_text_vertical, ellipsize};
use crate::{Error, Result, colors};

/// One bar: its label under the x axis, its value, and an optional ± spread
/// drawn as a whisker (e.g. a standard deviation).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub spread: Option<f64>,
}

/// A bar chart, built with [`BarChart::new`] and the builder methods, drawn
/// with [`BarChart::render`].
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
    /// Image size in pixels (at least 200×150 is used).
    pub width: u32,
    pub height: u32,
    pub color: Rgb<u8>,
}

/// Smallest chart drawn, so that axes and labels always have room.
const MIN_SIZE: (u32, u32) = (200, 150);
/// Target number of y-axis intervals.
const Y_TICKS: f64 = 5.0;
/// Space around the plot, in pixels.
const PAD: u32 = 10;

impl BarChart {
    /// An empty 800×400 chart titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            bars: Vec::new(),
            width: 800,
            height: 400,
            color: colors::BLUE,
        }
    }

    /// Sets the x-axis label.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the y-axis label (drawn vertically).
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Sets the image size.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Adds a bar.
    pub fn bar(mut self, label: impl Into<String>, value: f64) -> Self {
        self.bars.push(Bar {
            label: label.into(),
            value,
            spread: None,
        });
        self
    }

    /// Adds a bar with a ± `spread` whisker.
    pub fn bar_with_spread(mut self, label: impl Into<String>, value: f64, spread: f64) -> Self {
        self.bars.push(Bar {
            label: label.into(),
            value,
            spread: Some(spread),
        });
        self
    }

    /// Draws the chart. Fails on no bars or a non-finite value or spread.
    pub fn render(&self) -> Result<RgbImage> {
        if self.bars.is_empty() {
            return Err(Error::Empty { what: "bar chart" });
        }
        for bar in &self.bars {
            let spread_ok = bar.spread.is_none_or(|s| s.is_finite() && s >= 0.0);
            if !bar.value.is_finite() || !spread_ok {
                return Err(Error::Value {
                    what: "bar chart",
                    reason: format!(
                        "bar {:?} has value {} and spread {:?}: values must be finite and spreads finite and non-negative",
                        bar.label, bar.value, bar.spread
                    ),
                });
            }
        }
        let width = self.width.max(MIN_SIZE.0);
        let height = self.height.max(MIN_SIZE.1);
        let mut image = blank("bar chart", width.into(), height.into(), colors::WHITE)?;
        let axis = Axis::covering(self.bars.iter().flat_map(|b| {
            let s = b.spread.unwrap_or(0.0);
            [b.value - s, b.value + s]
        }));
        let text = TextStyle::new(1, colors::BLACK);
        let title = TextStyle::new(2, colors::BLACK);
        let tick_labels: Vec<String> = axis.ticks().map(|v| axis.format(v)).collect();
        let tick_chars = tick_labels
            .iter()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(1) as u32;
        let y_label_band = if self.y_label.is_empty() {
            0
        } else {
            text.line_height()
        };
        let plot = Plot {
            left: PAD + y_label_band + tick_chars * text.char_width() + 6,
            right: width - PAD * 2,
            top: PAD + title.line_height() + PAD,
            bottom: height - PAD - text.line_height() * 2 - 4,
        };
        if plot.right <= plot.left + 10 || plot.bottom <= plot.top + 10 {
            return Err(Error::Value {
                what: "bar chart",
                reason: format!("{width}x{height} pixels leave no room to plot"),
            });
        }
        let title_text = ellipsize(&self.title, title.chars_in(width - 2 * PAD));
        draw_text(&mut image, PAD.into(), PAD.into(), &title_text, &title);
        self.draw_y_axis(&mut image, &plot, &axis, &tick_labels, &text);
        self.draw_bars(&mut image, &plot, &axis);
        self.draw_x_axis(&mut image, &plot, &axis, &text);
        Ok(image)
    }

    fn draw_y_axis(
        &self,
        image: &mut RgbImage,
        plot: &Plot,
        axis: &Axis,
        labels: &[String],
        text: &TextStyle,
    ) {
        let grid = colors::shade(colors::WHITE, 0.88);
        for (value, label) in axis.ticks().zip(labels) {
            let y = plot.y(axis, value);
            line(image, (plot.left.into(), y), (plot.right.into(), y), grid);
            let x = i64::from(plot.left) - 4 - i64::from(text.width(label));
            draw_text(image, x, y - 4, label, text);
        }
        if !self.y_label.is_empty() {
            let label = ellipsize(&self.y_label, text.chars_in(plot.bottom - plot.top));
            let middle = i64::from(plot.top + plot.bottom) / 2;
            let bottom = middle + i64::from(text.width(&label)) / 2;
            draw_text_vertical(image, PAD.into(), bottom, &label, text);
        }
        line(
            image,
            (plot.left.into(), plot.top.into()),
            (plot.left.into(), plot.bottom.into()),
            colors::BLACK,
        );
    }

    fn draw_bars(&self, image: &mut RgbImage, plot: &Plot, axis: &Axis) {
        let slot = f64::from(plot.right - plot.left) / self.bars.len() as f64;
        let bar_width = (slot * 0.8).max(1.0) as u32;
        let zero = plot.y(axis, 0.0);
        for (index, bar) in self.bars.iter().enumerate() {
            let centre = f64::from(plot.left) + slot * (index as f64 + 0.5);
            let left = (centre - f64::from(bar_width) / 2.0).round() as i64;
            let top = plot.y(axis, bar.value);
            let (y0, y1) = (top.min(zero), top.max(zero));
            let height = (y1 - y0).max(1) as u32;
            fill_rect(image, left, y0, bar_width, height, self.color);
            if let Some(spread) = bar.spread {
                let x = centre.round() as i64;
                let (hi, lo) = (
                    plot.y(axis, bar.value + spread),
                    plot.y(axis, bar.value - spread),
                );
                let cap = i64::from(bar_width / 4).max(1);
                line(image, (x, hi), (x, lo), colors::BLACK);
                line(image, (x - cap, hi), (x + cap, hi), colors::BLACK);
                line(image, (x - cap, lo), (x + cap, lo), colors::BLACK);
            }
        }
    }

    fn draw_x_axis(&self, image: &mut RgbImage, plot: &Plot, axis: &Axis, text: &TextStyle) {
        let zero = plot.y(axis, 0.0);
        line(
            image,
            (plot.left.into(), zero),
            (plot.right.into(), zero),
            colors::BLACK,
        );
        let slot = f64::from(plot.right - plot.left) / self.bars.len() as f64;
        let longest = self
            .bars
            .iter()
            .map(|b| b.label.chars().count())
            .max()
            .unwrap_or(0);
        let wanted = f64::from(text.char_width()) * longest.clamp(1, 6) as f64 + 4.0;
        let every = (wanted / slot).ceil().max(1.0) as usize;
        let chars = ((slot * every as f64 - 4.0) / f64::from(text.char_width())).max(1.0) as usize;
        let y = i64::from(plot.bottom) + 4;
        for (index, bar) in self.bars.iter().enumerate().step_by(every) {
            let label = ellipsize(&bar.label, chars);
            let centre = f64::from(plot.left) + slot * (index as f64 + 0.5);
            let x = (centre - f64::from(text.width(&label)) / 2.0).round() as i64;
            draw_text(image, x, y, &label, text);
        }
        if !self.x_label.is_empty() {
            let label = ellipsize(&self.x_label, text.chars_in(plot.right - plot.left));
            let x = i64::from(plot.left + plot.right) / 2 - i64::from(text.width(&label)) / 2;
            draw_text(image, x, y + i64::from(text.line_height()), &label, text);
        }
    }
}

/// The plotting area, in image pixels.
struct Plot {
    left: u32,
    right: u32,
    top: u32,
    bottom: u32,
}

impl Plot {
    /// The image row of `value`.
    fn y(&self, axis: &Axis, value: f64) -> i64 {
        let fraction = (value - axis.low) / (axis.high - axis.low);
        let span = f64::from(self.bottom - self.top);
        (f64::from(self.bottom) - fraction * span).round() as i64
    }
}

/// A y axis from `low` to `high` in steps of `step`, both multiples of it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    low: f64,
    high: f64,
    step: f64,
}

impl Axis {
    /// The nice axis covering every value and zero.
    fn covering(values: impl Iterator<Item = f64>) -> Self {
        let (min, max) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let span = if max > min { max - min } else { 1.0 };
        let step = nice_step(span / Y_TICKS);
        Self {
            low: (min / step).floor() * step,
            high: ((max / step).ceil() * step).max((min / step).floor() * step + step),
            step,
        }
    }

    /// Tick values from low to high.
    fn ticks(&self) -> impl Iterator<Item = f64> + '_ {
        let count = ((self.high - self.low) / self.step).round() as usize;
        (0..=count).map(move |i| self.low + i as f64 * self.step)
    }

    /// A tick label with as many decimals as the step needs.
    fn format(&self, value: f64) -> String {
        let magnitude = value.abs();
        if magnitude != 0.0 && !(1e-4..1e6).contains(&magnitude) {
            return format!("{value:.1e}");
        }
        let decimals = (-self.step.log10()).ceil().clamp(0.0, 6.0) as usize;
        let text = format!("{value:.decimals$}");
        // "-0.0" reads badly on an axis.
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_string()
        } else {
            text
        }
    }
}

/// The smallest 1, 2 or 5 × 10ᵏ at least `raw` (for a positive finite `raw`).
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw
    } else {
        1.0
    };
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// Counts of values in consecutive bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bins: Vec<HistogramBin>,
    /// Bins are integer ranges `[start, end]` (labelled `a-b`), rather than
    /// real intervals `[start, end)` (labelled by their start).
    pub integer: bool,
}

/// One bin of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramBin {
    pub start: f64,
    pub end: f64,
    pub count: u64,
}

impl Histogram {
    /// `bins` equal-width bins over `[min, max]` of `values` (the last bin
    /// includes `max`). Fails on no values, no bins or a non-finite value.
    pub fn of_values(values: &[f64], bins: usize) -> Result<Self> {
        if values.is_empty() || bins == 0 {
            return Err(Error::Empty { what: "histogram" });
        }
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::Value {
                what: "histogram",
                reason: format!("value {bad} is not finite"),
            });
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let width = if max > min {
            (max - min) / bins as f64
        } else {
            1.0
        };
        let mut counts = vec![0u64; bins];
        for value in values {
            let index = (((value - min) / width) as usize).min(bins - 1);
            counts[index] += 1;
        }
        Ok(Self {
            bins: counts
                .into_iter()
                .enumerate()
                .map(|(i, count)| HistogramBin {
                    start: min + i as f64 * width,
                    end: min + (i + 1) as f64 * width,
                    count,
                })
                .collect(),
            integer: false,
        })
    }

    /// Bins of whole numbers from the smallest to the largest of `values`,
    /// each `w` wide with `w` the smallest width giving at most `max_bins` bins.
    pub fn of_integers(values: &[u64], max_bins: usize) -> Result<Self> {
        let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
            return Err(Error::Empty { what: "histogram" });
        };
        let span = max - min + 1;
        let width = span.div_ceil(max_bins.max(1) as u64).max(1);
        let bins = span.div_ceil(width) as usize;
        let mut counts = vec![0u64; bins];
        for value in values {
            counts[((value - min) / width) as usize] += 1;
        }
        Ok(Self {
            bins: counts
                .into_iter()
                .enumerate()
                .map(|(i, count)| {
                    let start = min + i as u64 * width;
                    HistogramBin {
                        start: start as f64,
                        end: (start + width - 1) as f64,
                        count,
                    }
                })
                .collect(),
            integer: true,
        })
    }

    /// Total count over every bin.
    pub fn total(&self) -> u64 {
        self.bins.iter().map(|b| b.count).sum()
    }

    /// A bar chart of the counts, one bar per bin.
    pub fn bar_chart(&self, title: impl Into<String>, x_label: impl Into<String>) -> BarChart {
        let mut chart = BarChart::new(title).x_label(x_label).y_label("count");
        for bin in &self.bins {
            let label = if !self.integer {
                format_bin_edge(bin.start, bin.end - bin.start)
            } else if bin.start == bin.end {
                format!("{}", bin.start)
            } else {
                format!("{}-{}", bin.start, bin.end)
            };
            chart = chart.bar(label, bin.count as f64);
        }
        chart
    }
}

/// A bin's start with the decimals its width needs.
fn format_bin_edge(value: f64, width: f64) -> String {
    let decimals = if width > 0.0 {
        (-width.log10()).ceil().clamp(0.0, 6.0) as usize
    } else {
        2
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(20.0), 20.0);
        assert!((nice_step(0.031) - 0.05).abs() < 1e-12);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn axes_cover_values_and_zero() {
        let axis = Axis::covering([3.0, 17.0].into_iter());
        assert_eq!((axis.low, axis.high, axis.step), (0.0, 20.0, 5.0));
        let axis = Axis::covering([-0.3, 0.2].into_iter());
        assert!(axis.low <= -0.3 && axis.high >= 0.2);
        assert_eq!(axis.format(-0.0), "0.0");
        let flat = Axis::covering([0.0].into_iter());
        assert!(flat.high > flat.low);
        assert_eq!(Axis::covering([2e7].into_iter()).format(2e7), "2.0e7");
    }

    #[test]
    fn bars_are_drawn_from_zero_in_both_directions() {
        let chart = BarChart::new("means")
            .x_label("channel")
            .y_label("mean")
            .size(300, 200)
            .bar("up", 1.0)
            .bar_with_spread("down", -1.0, 0.5);
        let image = chart.render().unwrap();
        assert_eq!(image.dimensions(), (300, 200));
        let blue_rows: Vec<u32> = (0..200)
            .filter(|&y| (0..300).any(|x| image.get_pixel(x, y) == &colors::BLUE))
            .collect();
        // The positive bar lies above the negative one and they meet at zero.
        let (first, last) = (blue_rows[0], *blue_rows.last().unwrap());
        assert!(last - first > 60, "{first}..{last}");
        let left_bar_column = (0..300)
            .find(|&x| image.get_pixel(x, first) == &colors::BLUE)
            .unwrap();
        let right_bar_column = (0..300)
            .find(|&x| image.get_pixel(x, last) == &colors::BLUE)
            .unwrap();
        assert!(left_bar_column < right_bar_column);
    }

    #[test]
    fn bad_values_and_tiny_canvases_are_errors() {
        assert!(BarChart::new("x").render().is_err());
        let err = BarChart::new("x")
            .bar("nan", f64::NAN)
            .render()
            .unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
        assert!(
            BarChart::new("x")
                .bar_with_spread("a", 1.0, -1.0)
                .render()
                .is_err()
        );
        // Too small a size is enlarged to the minimum, not refused.
        let image = BarChart::new("x")
            .size(1, 1)
            .bar("a", 1.0)
            .render()
            .unwrap();
        assert_eq!(image.dimensions(), MIN_SIZE);
        // Hundreds of bars with long labels still draw.
        let mut many = BarChart::new("many");
        for i in 0..500 {
            many = many.bar(format!("a long label {i}"), i as f64);
        }
        many.render().unwrap();
    }

    #[test]
    fn histograms_count_every_value_once() {
        let values = [0.0, 0.1, 0.5, 0.9, 1.0];
        let histogram = Histogram::of_values(&values, 2).unwrap();
        assert_eq!(
            histogram.bins.iter().map(|b| b.count).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(histogram.total(), 5);
        assert!(Histogram::of_values(&[], 3).is_err());
        assert!(Histogram::of_values(&[1.0, f64::INFINITY], 3).is_err());
        let same = Histogram::of_values(&[2.0, 2.0], 4).unwrap();
        assert_eq!(same.bins[0].count, 2);

        let words = [3u64, 4, 4, 9, 30];
        let histogram = Histogram::of_integers(&words, 5).unwrap();
        assert_eq!(histogram.total(), 5);
        assert_eq!(histogram.bins.len(), 5);
        assert_eq!((histogram.bins[0].start, histogram.bins[0].end), (3.0, 8.0));
        assert_eq!(histogram.bins[0].count, 3);
        let chart = histogram.bar_chart("caption length", "words");
        assert_eq!(chart.bars[0].label, "3-8");
        assert_eq!(chart.bars.len(), 5);
        let single = Histogram::of_integers(&[7, 7, 8], 10).unwrap();
        assert_eq!(single.bar_chart("t", "x").bars[0].label, "7");
        assert!(Histogram::of_integers(&[], 5).is_err());
    }
}
