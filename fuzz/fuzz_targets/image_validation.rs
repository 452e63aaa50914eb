//! Any bytes as an uploaded image: header validation (format, size, pixel
//! limit, completeness) and, when it passes, decoding within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssdit_data::{DecodeConfig, ValidationConfig, decode, validate};

fuzz_target!(|data: &[u8]| {
    let config = ValidationConfig {
        max_bytes: 1 << 20,
        max_pixels: 1 << 20,
        min_side: 1,
    };
    if let Ok(header) = validate(data, &config) {
        let _ = decode(data, &header, &config, &DecodeConfig::default());
    }
});
