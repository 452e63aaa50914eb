//! Structural completeness checks that find truncated files before decoding.
//!
//! Decoders are lenient: the image crate decodes JPEG in non-strict mode and
//! fills a missing tail with grey instead of failing. A file cut short in
//! transfer would then enter the training set as a half-grey picture. These
//! checks walk the container structure (JPEG markers, PNG chunks, the RIFF
//! size of WebP) without decoding pixels and report where the data stops.

use image::ImageFormat;

/// Checks that `bytes` holds a complete file of `format`; returns a
/// description of what is missing when it does not. Formats without a check
/// here rely on their decoder's own end-of-file errors.
pub fn check(format: ImageFormat, bytes: &[u8]) -> Result<(), String> {
    match format {
        ImageFormat::Jpeg => jpeg(bytes),
        ImageFormat::Png => png(bytes),
        ImageFormat::WebP => webp(bytes),
        _ => Ok(()),
    }
}

const JPEG_SOI: u8 = 0xD8;
const JPEG_EOI: u8 = 0xD9;
const JPEG_SOS: u8 = 0xDA;

/// A marker that stands alone, without a length field (RSTn and TEM).
fn jpeg_standalone(marker: u8) -> bool {
    (0xD0..=0xD7).contains(&marker) || marker == 0x01
}

/// Walks JPEG marker segments and entropy-coded scans until the end-of-image
/// marker. In scan data a 0xFF byte is always followed by 0x00 (stuffing) or
/// a restart marker, so the first other marker ends the scan.
fn jpeg(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != JPEG_SOI {
        return Err("no start-of-image marker".into());
    }
    let mut pos = 2;
    let mut segments = 0usize;
    loop {
        // Find the next marker; tolerate garbage between segments as decoders do.
        while pos < bytes.len() && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos < bytes.len() && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return Err(format!(
                "data ends at byte {} after {segments} segments, before the end-of-image marker",
                bytes.len()
            ));
        };
        pos += 1;
        if marker == JPEG_EOI {
            return Ok(());
        }
        if jpeg_standalone(marker) {
            continue;
        }
        let Some(len) = bytes.get(pos..pos + 2) else {
            return Err(format!(
                "segment 0xFF{marker:02X} at byte {pos} has no length"
            ));
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if pos + len > bytes.len() {
            return Err(format!(
                "segment 0xFF{marker:02X} at byte {pos} needs {len} bytes, only {} remain",
                bytes.len() - pos
            ));
        }
        pos += len;
        segments += 1;
        if marker == JPEG_SOS {
            pos = jpeg_scan_end(bytes, pos);
        }
    }
}

/// The position of the first marker (other than stuffing and restarts) at or
/// after `pos` in entropy-coded data, or the end of the data.
fn jpeg_scan_end(bytes: &[u8], mut pos: usize) -> usize {
    while pos + 1 < bytes.len() {
        if bytes[pos] == 0xFF {
            let next = bytes[pos + 1];
            if next != 0x00 && next != 0xFF && !(0xD0..=0xD7).contains(&next) {
                return pos;
            }
        }
        pos += 1;
    }
    bytes.len()
}

const PNG_SIGNATURE_LEN: usize = 8;

/// Walks PNG chunks (length, type, data, CRC) until `IEND`.
fn png(bytes: &[u8]) -> Result<(), String> {
    let mut pos = PNG_SIGNATURE_LEN;
    let mut chunks = 0usize;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = String::from_utf8_lossy(&header[4..8]).into_owned();
        let end = pos.saturating_add(12).saturating_add(len);
        if end > bytes.len() {
            return Err(format!(
                "chunk {kind} at byte {pos} needs {} bytes, only {} remain",
                12 + len,
                bytes.len() - pos
            ));
        }
        if kind == "IEND" {
            return Ok(());
        }
        pos = end;
        chunks += 1;
    }
    Err(format!(
        "data ends at byte {} after {chunks} chunks, before the IEND chunk",
        bytes.len()
    ))
}

/// Compares the RIFF container's declared size with the data present.
fn webp(bytes: &[u8]) -> Result<(), String> {
    let Some(size) = bytes.get(4..8) else {
        return Err("RIFF header is incomplete".into());
    };
    let declared = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize + 8;
    if declared > bytes.len() {
        return Err(format!(
            "RIFF header declares {declared} bytes, only {} are present",
            bytes.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};
    use std::io::Cursor;

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(37, 23, |x, y| image::Rgb([x as u8 * 7, y as u8 * 11, 90]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn complete_files_pass_and_every_truncation_is_found() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP] {
            let bytes = encoded(format);
            assert_eq!(check(format, &bytes), Ok(()), "{format:?}");
            for cut in [bytes.len() - 1, bytes.len() / 2, 20] {
                assert!(
                    check(format, &bytes[..cut]).is_err(),
                    "{format:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_after_the_end_are_tolerated() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let mut bytes = encoded(format);
            bytes.extend_from_slice(b"appended trailer");
            assert_eq!(check(format, &bytes), Ok(()), "{format:?}");
        }
    }
}
