//! PNG encoding and atomic file writes.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, RgbImage};

use crate::{Error, Result};

/// The PNG encoding of `image`.
pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(bytes.into_inner())
}

/// Writes `image` as a PNG at `path`, atomically: a temporary file beside it,
/// then a rename, so a reader never sees half a file.
pub fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    let bytes = encode_png(image)?;
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        write_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let temporary = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    std::fs::write(&temporary, bytes).map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        write_error(source)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn written_pngs_decode_to_the_same_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        let image = RgbImage::from_fn(5, 3, |x, y| Rgb([x as u8 * 40, y as u8 * 80, 7]));
        save_png(&image, &path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back, image);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = save_png(&image, &dir.path().join("missing/out.png")).unwrap_err();
        assert!(err.to_string().contains("missing/out.png"), "{err}");
    }
}
