//! Helpers shared by the integration tests.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat};

/// `image` encoded as `format`.
pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}
