//! The project's sample data: real photos, captions and bad inputs.

use std::path::PathBuf;

/// `folder` of the sample data (`photos`, `bad-inputs`, `flowers-captions`):
/// under `$SSDIT_DATA`, else under `shared/data` beside the checkout.
/// Panics, naming the folder and the fix, when it is missing: a test of real
/// data never passes without it.
pub fn shared_data(folder: &str) -> PathBuf {
    let root = std::env::var_os("SSDIT_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    let dir = root.join(folder);
    assert!(
        dir.is_dir(),
        "sample data folder {} is missing (set SSDIT_DATA)",
        dir.display()
    );
    dir
}

/// One of the six sample photos: its file in `photos`, its size, and its
/// bucket at the seed's 448 px.
#[derive(Debug, Clone, Copy)]
pub struct SamplePhoto {
    /// File name in `photos`.
    pub file: &'static str,
    /// Width × height.
    pub size: (u32, u32),
    /// Bucket width × height.
    pub bucket: (u32, u32),
}

/// The six sample photos in file-name order, with their buckets worked out
/// by hand: the buckets are 448x448 (1.0), 512x384 (1.333) and 384x512
/// (0.75); 640x427 (1.499), 600x400 (1.5) and 451x300 (1.503) are nearest
/// 1.333.
pub const PHOTOS: [SamplePhoto; 6] = [
    photo("astronaut.png", (512, 512), (448, 448)),
    photo("chelsea.png", (451, 300), (512, 384)),
    photo("china.jpg", (640, 427), (512, 384)),
    photo("coffee.png", (600, 400), (512, 384)),
    photo("flower.jpg", (640, 427), (512, 384)),
    photo("rocket.jpg", (640, 427), (512, 384)),
];

const fn photo(file: &'static str, size: (u32, u32), bucket: (u32, u32)) -> SamplePhoto {
    SamplePhoto { file, size, bucket }
}
