//! Helpers shared by the integration tests.

use std::io::Cursor;
use std::path::PathBuf;

use image::{DynamicImage, ImageFormat};

/// The sample data folder (`shared/data` beside the checkout, or `$SSDIT_DATA`).
/// Tests fail loudly when it is missing.
pub fn data_root() -> PathBuf {
    let root = std::env::var_os("SSDIT_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    assert!(
        root.is_dir(),
        "sample data folder {} is missing (set SSDIT_DATA)",
        root.display()
    );
    root
}

/// `image` encoded as `format`.
pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}
