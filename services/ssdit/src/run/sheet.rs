//! The job's contact sheet: per training photo, the stored image with its
//! caption, the codec's reconstruction and the image generated from the
//! caption, with their PSNRs.

use image::RgbImage;
use ssdit_render::{SheetStyle, Tile, contact_sheet};

use super::error::Result;
use super::job::SampleResult;

/// Side of the box each image is fitted into.
const CELL: u32 = 224;
/// Caption lines under each image.
const CAPTION_LINES: usize = 5;

/// Draws one row per result — original, reconstruction, generated — under `title`.
pub fn draw(results: &[SampleResult], title: &str) -> Result<RgbImage> {
    let tiles: Vec<Tile> = results.iter().flat_map(row).collect();
    let style = SheetStyle {
        columns: 3,
        cell: CELL,
        caption_lines: CAPTION_LINES,
        title: Some(title.to_string()),
        ..SheetStyle::default()
    };
    Ok(contact_sheet(&tiles, &style)?)
}

fn row(result: &SampleResult) -> [Tile; 3] {
    let reference = &result.reference;
    let bucket = reference.record.bucket;
    [
        Tile::new(
            reference.original.clone(),
            format!(
                "{} ({bucket}): \"{}\"",
                file_name(&reference.record.source),
                reference.caption
            ),
        ),
        Tile::new(
            reference.reconstruction.clone(),
            format!(
                "codec reconstruction, PSNR {:.1} dB (what the DiT learns)",
                result.codec_psnr
            ),
        ),
        Tile::new(
            result.generated.clone(),
            format!(
                "generated from the caption over gRPC, PSNR {:.1} dB vs the reconstruction",
                result.generated_psnr
            ),
        ),
    ]
}

/// The last path component of a sample's source.
fn file_name(source: &str) -> &str {
    source.rsplit(['/', '\\']).next().unwrap_or(source)
}
