//! The shared sample data: the six photos are accepted with their bucket and
//! every bad input is rejected with its own reason.

use ssdit_data::sidecar::{DEFAULT_MAX_CAPTION_BYTES, read_caption};
use ssdit_data::{Bucket, PrepareConfig, Preparer, RejectKind};
use ssdit_testkit::{PHOTOS, SamplePhoto, shared_data};

#[test]
fn all_photos_are_accepted_with_their_bucket() {
    let photos = shared_data("photos");
    let preparer = Preparer::new(PrepareConfig::default()).unwrap();
    for SamplePhoto {
        file: name,
        size: source,
        bucket: (bw, bh),
    } in PHOTOS
    {
        let path = photos.join(name);
        let prepared = preparer
            .prepare_file(&path)
            .unwrap_or_else(|reject| panic!("{reject}"));
        println!(
            "{name}: {:?} {}x{} -> bucket {} (id {})",
            prepared.format,
            prepared.source_width,
            prepared.source_height,
            prepared.bucket,
            prepared.id
        );
        assert_eq!(
            (prepared.source_width, prepared.source_height),
            source,
            "{name}"
        );
        assert_eq!(
            prepared.bucket,
            Bucket {
                width: bw,
                height: bh
            },
            "{name}"
        );
        assert_eq!(prepared.image.dimensions(), (bw, bh), "{name}");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(prepared.id, ssdit_data::ContentId::of(&bytes), "{name}");
    }
}

#[test]
fn each_bad_image_is_rejected_with_its_own_reason() {
    let bad = shared_data("bad-inputs");
    let preparer = Preparer::new(PrepareConfig::default()).unwrap();
    let mut messages = Vec::new();
    for (name, kind) in [
        ("bomb.png", RejectKind::TooManyPixels),
        ("empty.png", RejectKind::Empty),
        ("not-an-image.png", RejectKind::UnknownFormat),
        ("truncated.jpg", RejectKind::Truncated),
    ] {
        let path = bad.join(name);
        let reject = preparer.prepare_file(&path).expect_err(name);
        println!("{reject}");
        assert_eq!(reject.kind(), kind, "{reject}");
        assert_eq!(reject.file, path);
        messages.push(reject.reason.to_string());
    }
    messages.dedup();
    assert_eq!(messages.len(), 4, "reasons must differ: {messages:?}");
}

#[test]
fn bad_captions_reject_invalid_utf8_and_keep_the_overlong_one() {
    let bad = shared_data("bad-inputs");
    let invalid = bad.join("invalid-utf8.txt");
    let reject = read_caption(&invalid, DEFAULT_MAX_CAPTION_BYTES).expect_err("invalid utf-8");
    println!("{reject}");
    assert_eq!(reject.kind(), RejectKind::InvalidUtf8);
    assert_eq!(reject.file, invalid);

    // Accepted here; the tokenizer truncates it to the token limit downstream.
    let overlong = read_caption(&bad.join("overlong-caption.txt"), DEFAULT_MAX_CAPTION_BYTES)
        .expect("overlong caption is accepted");
    println!(
        "overlong-caption.txt: accepted, {} words",
        overlong.split_whitespace().count()
    );
    assert!(overlong.split_whitespace().count() > 1000);
}
