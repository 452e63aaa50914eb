//! Validation and decoding on images the tests generate: each layout ends up
//! as 8-bit RGB, EXIF orientation is applied, and each malformed input is
//! rejected with its own reason.

use crate::common;

use std::path::Path;

use common::encode;
use image::{
    DynamicImage, GrayAlphaImage, GrayImage, ImageBuffer, ImageEncoder, ImageFormat, Luma, Rgb,
    RgbImage, Rgba, RgbaImage,
};
use ssdit_data::{
    DecodeConfig, PrepareConfig, Preparer, RejectKind, ValidationConfig, decode, validate,
};

/// Small images are fine in these tests.
fn permissive() -> ValidationConfig {
    ValidationConfig {
        min_side: 1,
        ..ValidationConfig::default()
    }
}

fn decode_with(bytes: &[u8], config: &DecodeConfig) -> RgbImage {
    let validation = permissive();
    let header = validate(bytes, &validation).expect("valid test image");
    decode(bytes, &header, &validation, config).expect("decodable test image")
}

fn decode_default(bytes: &[u8]) -> RgbImage {
    decode_with(bytes, &DecodeConfig::default())
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

#[test]
fn grayscale_8_and_16_bit_become_equal_rgb() {
    let gray = GrayImage::from_fn(4, 3, |x, y| Luma([(x * 60 + y) as u8]));
    let out = decode_default(&encode(&gray.clone().into(), ImageFormat::Png));
    for (x, y, p) in out.enumerate_pixels() {
        let v = gray.get_pixel(x, y).0[0];
        assert_eq!(p.0, [v, v, v]);
    }
    // 16-bit: 0x8080 = 128·257 maps to 128, 65535 to 255.
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(2, 1, |x, _| Luma([if x == 0 { 0x8080 } else { 65535 }]));
    let out = decode_default(&encode(
        &DynamicImage::ImageLuma16(gray16),
        ImageFormat::Png,
    ));
    assert_eq!(out.get_pixel(0, 0).0, [128, 128, 128]);
    assert_eq!(out.get_pixel(1, 0).0, [255, 255, 255]);
}

#[test]
fn rgb_16_bit_is_rounded_to_8_bit() {
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_pixel(3, 2, Rgb([65535, 0, 257 * 200]));
    let out = decode_default(&encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png));
    assert!(out.pixels().all(|p| p.0 == [255, 0, 200]));
}

#[test]
fn alpha_is_composited_on_the_configured_background() {
    let rgba = RgbaImage::from_fn(3, 1, |x, _| match x {
        0 => Rgba([255, 0, 0, 0]),
        1 => Rgba([255, 0, 0, 128]),
        _ => Rgba([255, 0, 0, 255]),
    });
    let bytes = encode(&rgba.into(), ImageFormat::Png);
    let blue = DecodeConfig {
        background: [0, 0, 255],
        ..DecodeConfig::default()
    };
    let out = decode_with(&bytes, &blue);
    assert_eq!(out.get_pixel(0, 0).0, [0, 0, 255]); // transparent → background
    // 50.2 % red over blue: 255·128/255 = 128, 255·127/255 = 127.
    assert_eq!(out.get_pixel(1, 0).0, [128, 0, 127]);
    assert_eq!(out.get_pixel(2, 0).0, [255, 0, 0]); // opaque → colour
    // The default background is white.
    assert_eq!(decode_default(&bytes).get_pixel(0, 0).0, [255, 255, 255]);
}

#[test]
fn gray_alpha_and_16_bit_alpha_are_composited() {
    let la = GrayAlphaImage::from_pixel(2, 2, image::LumaA([200, 0]));
    let black = DecodeConfig {
        background: [0, 0, 0],
        ..DecodeConfig::default()
    };
    let out = decode_with(&encode(&la.into(), ImageFormat::Png), &black);
    assert!(out.pixels().all(|p| p.0 == [0, 0, 0]));
    let rgba16: ImageBuffer<Rgba<u16>, Vec<u16>> =
        ImageBuffer::from_pixel(2, 2, Rgba([0, 65535, 0, 32768]));
    let out = decode_with(
        &encode(&DynamicImage::ImageRgba16(rgba16), ImageFormat::Png),
        &black,
    );
    assert!(
        out.pixels().all(|p| p.0 == [0, 128, 0]),
        "{:?}",
        out.get_pixel(0, 0)
    );
}

#[test]
fn cmyk_jpeg_is_converted_to_rgb() {
    // Pure cyan, magenta, yellow and black patches (8x8 each, one JPEG block).
    let patches: [([u8; 4], [u8; 3]); 4] = [
        ([255, 0, 0, 0], [0, 255, 255]),
        ([0, 255, 0, 0], [255, 0, 255]),
        ([0, 0, 255, 0], [255, 255, 0]),
        ([0, 0, 0, 255], [0, 0, 0]),
    ];
    let (w, h) = (32u16, 8u16);
    let mut cmyk = Vec::with_capacity(usize::from(w) * usize::from(h) * 4);
    for _ in 0..h {
        for x in 0..w {
            cmyk.extend_from_slice(&patches[usize::from(x / 8)].0);
        }
    }
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 100)
        .encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let out = decode_default(&bytes);
    assert_eq!(out.dimensions(), (32, 8));
    for (i, (_, rgb)) in patches.iter().enumerate() {
        let got = out.get_pixel(i as u32 * 8 + 4, 4).0;
        assert!(near(got, *rgb, 12), "patch {i}: {got:?} != {rgb:?}");
    }
}

/// A big-endian TIFF/EXIF block holding only the orientation tag (0x0112).
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut exif = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    exif.extend_from_slice(&1u16.to_be_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // orientation
    exif.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_be_bytes()); // count
    exif.extend_from_slice(&value.to_be_bytes());
    exif.extend_from_slice(&[0, 0]); // value padding
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    exif
}

/// A 32x16 JPEG, left half red, right half blue, with an EXIF orientation.
fn oriented_jpeg(orientation: u16) -> Vec<u8> {
    let img = RgbImage::from_fn(32, 16, |x, _| {
        if x < 16 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    encoder
        .set_exif_metadata(exif_orientation(orientation))
        .unwrap();
    encoder
        .write_image(img.as_raw(), 32, 16, image::ExtendedColorType::Rgb8)
        .unwrap();
    bytes
}

#[test]
fn exif_orientation_is_applied() {
    const RED: [u8; 3] = [255, 0, 0];
    const BLUE: [u8; 3] = [0, 0, 255];
    // 6 = rotate 90° clockwise: the left (red) half becomes the top.
    let out = decode_default(&oriented_jpeg(6));
    assert_eq!(out.dimensions(), (16, 32));
    assert!(
        near(out.get_pixel(8, 4).0, RED, 20),
        "{:?}",
        out.get_pixel(8, 4)
    );
    assert!(
        near(out.get_pixel(8, 28).0, BLUE, 20),
        "{:?}",
        out.get_pixel(8, 28)
    );
    // 2 = mirror horizontally: blue on the left.
    let out = decode_default(&oriented_jpeg(2));
    assert_eq!(out.dimensions(), (32, 16));
    assert!(near(out.get_pixel(4, 8).0, BLUE, 20));
    // Switched off: stored as is.
    let off = DecodeConfig {
        apply_orientation: false,
        ..DecodeConfig::default()
    };
    let out = decode_with(&oriented_jpeg(6), &off);
    assert_eq!(out.dimensions(), (32, 16));
    assert!(near(out.get_pixel(4, 8).0, RED, 20));
}

#[test]
fn webp_gif_bmp_decode() {
    let img: DynamicImage =
        RgbImage::from_fn(9, 7, |x, y| Rgb([x as u8 * 20, y as u8 * 30, 99])).into();
    for format in [ImageFormat::WebP, ImageFormat::Bmp, ImageFormat::Tiff] {
        let out = decode_default(&encode(&img, format));
        assert_eq!(out, img.to_rgb8(), "{format:?} is lossless here");
    }
    let gif = decode_default(&encode(&img, ImageFormat::Gif));
    assert_eq!(gif.dimensions(), (9, 7));
}

#[test]
fn format_comes_from_the_content_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let img: DynamicImage = RgbImage::from_pixel(300, 260, Rgb([10, 200, 30])).into();
    let jpeg_named_png = dir.path().join("photo.png");
    std::fs::write(&jpeg_named_png, encode(&img, ImageFormat::Jpeg)).unwrap();
    let text_named_jpg = dir.path().join("photo.jpg");
    std::fs::write(&text_named_jpg, "<html>not an image</html>").unwrap();

    let preparer = Preparer::new(PrepareConfig::default()).unwrap();
    let prepared = preparer
        .prepare_file(&jpeg_named_png)
        .expect("a JPEG named .png decodes");
    assert_eq!(prepared.format, ImageFormat::Jpeg);
    let reject = preparer.prepare_file(&text_named_jpg).unwrap_err();
    assert_eq!(reject.kind(), RejectKind::UnknownFormat);
}

#[test]
fn limits_reject_with_their_own_reason() {
    let img: DynamicImage = RgbImage::from_pixel(300, 200, Rgb([1, 2, 3])).into();
    let png = encode(&img, ImageFormat::Png);
    let file = Path::new("limits.png");
    let check = |config: ValidationConfig, bytes: &[u8]| {
        let preparer = Preparer::new(PrepareConfig {
            validation: config,
            ..PrepareConfig::default()
        })
        .unwrap();
        preparer
            .prepare_bytes(file, bytes)
            .map(|_| ())
            .map_err(|r| {
                println!("{r}");
                r.kind()
            })
    };
    assert_eq!(
        check(ValidationConfig::default(), &png),
        Err(RejectKind::TooSmall)
    );
    let small_ok = ValidationConfig {
        min_side: 200,
        ..ValidationConfig::default()
    };
    assert_eq!(check(small_ok.clone(), &png), Ok(()));
    let few_bytes = ValidationConfig {
        max_bytes: 100,
        ..small_ok.clone()
    };
    assert_eq!(check(few_bytes, &png), Err(RejectKind::TooManyBytes));
    let few_pixels = ValidationConfig {
        max_pixels: 300 * 200 - 1,
        ..small_ok.clone()
    };
    assert_eq!(check(few_pixels, &png), Err(RejectKind::TooManyPixels));
    assert_eq!(
        check(small_ok.clone(), &png[..png.len() / 2]),
        Err(RejectKind::Truncated)
    );
    let jpeg = encode(&img, ImageFormat::Jpeg);
    assert_eq!(
        check(small_ok.clone(), &jpeg[..jpeg.len() - 200]),
        Err(RejectKind::Truncated)
    );
    // A PNG whose image data is garbage (chunk structure intact).
    let mut corrupt = png.clone();
    let idat = corrupt.windows(4).position(|w| w == b"IDAT").unwrap();
    for byte in &mut corrupt[idat + 4..idat + 40] {
        *byte ^= 0x5A;
    }
    assert_eq!(check(small_ok, &corrupt), Err(RejectKind::Corrupt));
}

#[test]
fn identical_bytes_share_an_id_across_names() {
    let img: DynamicImage = RgbImage::from_pixel(256, 256, Rgb([9, 9, 9])).into();
    let png = encode(&img, ImageFormat::Png);
    let preparer = Preparer::new(PrepareConfig::default()).unwrap();
    let a = preparer.prepare_bytes(Path::new("a.png"), &png).unwrap();
    let b = preparer
        .prepare_bytes(Path::new("copy/b.png"), &png)
        .unwrap();
    assert_eq!(a.id, b.id);
    let other = encode(
        &RgbImage::from_pixel(256, 256, Rgb([9, 9, 10])).into(),
        ImageFormat::Png,
    );
    assert_ne!(
        a.id,
        preparer
            .prepare_bytes(Path::new("c.png"), &other)
            .unwrap()
            .id
    );
}

/// The short mutation campaign CI runs on uploads (`cargo fuzz run
/// image_validation` is the long one): mutants of valid PNG, JPEG and WebP
/// files are refused with a reason or decode to the size their header
/// promised (EXIF rotation aside), never a panic.
#[test]
fn mutated_images_never_panic() {
    let rgb = RgbImage::from_fn(16, 12, |x, y| Rgb([(x * 16) as u8, (y * 20) as u8, 90]));
    let rgba = RgbaImage::from_fn(9, 7, |x, y| Rgba([200, (x * 28) as u8, 40, (y * 36) as u8]));
    let valid = vec![
        encode(&rgb.clone().into(), ImageFormat::Png),
        encode(&rgba.into(), ImageFormat::Png),
        encode(&rgb.clone().into(), ImageFormat::Jpeg),
        encode(&rgb.into(), ImageFormat::WebP),
    ];
    let validation = ValidationConfig {
        max_bytes: 1 << 20,
        max_pixels: 1 << 20,
        min_side: 1,
    };
    let outcome = ssdit_mutate::campaign("image_validation", &valid, 10_000, 13, |bytes| {
        let header = validate(bytes, &validation)?;
        let image = decode(bytes, &header, &validation, &DecodeConfig::default())?;
        let (width, height) = image.dimensions();
        assert!(
            [(width, height), (height, width)].contains(&(header.width, header.height)),
            "decoded {width}×{height}, the header said {}×{}",
            header.width,
            header.height
        );
        Ok::<_, ssdit_data::RejectReason>(())
    });
    assert!(
        outcome.accepted > valid.len() && outcome.refused > 0,
        "mutants should reach both the decoder and the refusals: {outcome:?}"
    );
}
