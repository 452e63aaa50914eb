//! Animated GIFs of a series of images, such as a run's validation contact
//! sheets over training (the seed's `scripts/generate_gif.py`).

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, DynamicImage, Frame, Rgb, RgbImage};

use crate::canvas::{blank, paste};
use crate::{Error, Result};

/// How many frame times the last frame is held (the seed's animation
/// repeats its last frame ten times, so the final state is seen).
pub const LAST_FRAME_HOLD: u32 = 10;

/// An endlessly looping GIF of `frames`, `delay_ms` each and the last held
/// [`LAST_FRAME_HOLD`] times as long. Frames of different sizes are placed
/// top-left on the largest size, over `background`.
pub fn animate(frames: &[RgbImage], delay_ms: u32, background: Rgb<u8>) -> Result<Vec<u8>> {
    let fail = |e: image::ImageError| Error::Encode(format!("animation: {e}"));
    if frames.is_empty() {
        return Err(Error::Empty { what: "animation" });
    }
    let (width, height) = frames.iter().fold((0, 0), |(w, h), f| {
        (w.max(u64::from(f.width())), h.max(u64::from(f.height())))
    });
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(fail)?;
        for (index, frame) in frames.iter().enumerate() {
            let mut canvas = blank("animation frame", width, height, background)?;
            paste(&mut canvas, frame, 0, 0);
            let hold = if index + 1 == frames.len() {
                LAST_FRAME_HOLD
            } else {
                1
            };
            let rgba = DynamicImage::ImageRgb8(canvas).into_rgba8();
            let delay = Delay::from_numer_denom_ms(delay_ms.saturating_mul(hold), 1);
            encoder
                .encode_frame(Frame::from_parts(rgba, 0, 0, delay))
                .map_err(fail)?;
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;
    use image::codecs::gif::GifDecoder;

    #[test]
    fn every_frame_decodes_at_the_largest_size_with_the_last_held() {
        let frames = vec![
            RgbImage::from_pixel(20, 10, Rgb([200, 0, 0])),
            RgbImage::from_pixel(12, 16, Rgb([0, 200, 0])),
        ];
        let gif = animate(&frames, 200, Rgb([0, 0, 0])).unwrap();
        let decoded = GifDecoder::new(std::io::Cursor::new(gif))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].buffer().dimensions(), (20, 16));
        let ms = |f: &Frame| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        };
        assert_eq!((ms(&decoded[0]), ms(&decoded[1])), (200, 2000));
        // The first frame's red fills its own area; below it is background.
        let first = decoded[0].buffer();
        assert!(first.get_pixel(5, 5).0[0] > 150);
        assert!(first.get_pixel(5, 14).0[0] < 50);
        assert!(animate(&[], 100, Rgb([0, 0, 0])).is_err());
    }
}
