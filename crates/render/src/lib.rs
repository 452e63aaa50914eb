//! PNG rendering shared by ssdit's tools, trainer and demo.
//!
//! - [`text`]: an embedded 8×8 bitmap font (the public-domain `font8x8`
//!   glyphs: ASCII, Latin-1, Greek, box drawing), integer-scaled, upright or
//!   vertical, with word wrapping — it draws the same on every machine, needs
//!   no font files, and never fails: unknown characters become a box, text
//!   off the image is clipped.
//! - [`contact_sheet`]: a grid of images with wrapped captions under each.
//! - [`side_by_side`]: images in a row with labels and a title.
//! - [`BarChart`] and [`Histogram`]: bars (negative values and ± whiskers
//!   included) with a title, axis labels and nice ticks.
//! - [`LinePlot`]: line series (the seed's loss / gate curves: faint raw,
//!   bold smoothed with [`ewm`]) on a dark background with a dashed grid.
//! - [`animate`]: a looping GIF of images (validation sheets over training).
//! - [`canvas`]: the clipped primitives the above are made of, and
//!   [`save_png`] to write the result atomically.
//!
//! Every drawing is bounded ([`MAX_SIDE`] pixels a side): a layout that
//! would be larger is an [`Error`], never an allocation failure or a panic.

pub mod canvas;
mod chart;
pub mod colors;
mod compare;
mod error;
mod gif;
mod plot;
mod png;
mod sheet;
pub mod text;

pub use chart::{Bar, BarChart, Histogram, HistogramBin};
pub use compare::{Panel, side_by_side};
pub use error::{Error, Result};
pub use gif::{LAST_FRAME_HOLD, animate};
pub use plot::{LinePlot, Series, ewm};
pub use png::{encode_png, save_png};
pub use sheet::{SheetStyle, Tile, contact_sheet};

/// Largest width or height of any image this crate draws.
pub const MAX_SIDE: u32 = 16_384;
