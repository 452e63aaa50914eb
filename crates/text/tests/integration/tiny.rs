//! The tiny offline encoder: deterministic across independently built
//! instances, and different captions give clearly different embeddings.

use crate::common;

use common::B;
use ssdit_text::TextEncoder;
use ssdit_text::tiny::{tiny_fingerprint, tiny_tokenizer_fingerprint};

fn captions() -> Vec<String> {
    [
        "A macro shot of a red rose with dew drops.",
        "A macro shot of a blue iris in soft light.",
        "",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn two_independent_encoders_agree_bit_for_bit() {
    let device = Default::default();
    let first = TextEncoder::<B>::tiny(32, &device).unwrap();
    let second = TextEncoder::<B>::tiny(32, &device).unwrap();
    let a = first.encode(&captions()).unwrap();
    let b = second.encode(&captions()).unwrap();
    assert_eq!(a.embeddings.dims(), [3, 32, 128]);
    assert_eq!(a.embeddings.into_data(), b.embeddings.into_data());
    assert_eq!(a.mask.into_data(), b.mask.into_data());
    assert_eq!(first.fingerprint(), second.fingerprint());
    assert_eq!(first.fingerprint(), tiny_fingerprint());
    assert_eq!(first.tokenizer_fingerprint(), tiny_tokenizer_fingerprint());
    assert_ne!(first.tokenizer_fingerprint(), first.fingerprint());
}

#[test]
fn encoding_at_another_length_equals_an_encoder_of_that_length() {
    let device = Default::default();
    let at_32 = TextEncoder::<B>::tiny(32, &device).unwrap();
    let at_12 = TextEncoder::<B>::tiny(12, &device).unwrap();
    let got = at_32.encode_with_length(&captions(), 12).unwrap();
    let want = at_12.encode(&captions()).unwrap();
    assert_eq!(got.embeddings.dims(), [3, 12, 128]);
    assert_eq!(got.embeddings.into_data(), want.embeddings.into_data());
    assert_eq!(got.mask.into_data(), want.mask.into_data());
    assert!(at_32.encode_with_length(&captions(), 0).is_err());
}

#[test]
fn different_captions_give_clearly_different_embeddings() {
    let encoder = TextEncoder::<B>::tiny(32, &Default::default()).unwrap();
    let out = encoder.encode(&captions()).unwrap();
    let mask = out.mask.clone().into_data().to_vec::<i64>().unwrap();
    // Mean-pooled over real tokens, per caption.
    let pooled: Vec<Vec<f32>> = (0..3)
        .map(|row| {
            let rows = out.embeddings.clone().slice([row..row + 1, 0..32, 0..128]);
            let weights = out
                .mask
                .clone()
                .slice([row..row + 1, 0..32])
                .float()
                .reshape([1, 32, 1]);
            let count = mask[row * 32..(row + 1) * 32].iter().sum::<i64>() as f32;
            (rows * weights)
                .sum_dim(1)
                .div_scalar(count)
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        })
        .collect();
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let c = cosine(&pooled[i], &pooled[j]);
        println!("captions {i} and {j}: cosine {c}");
        assert!(c < 0.9, "captions {i} and {j}: cosine {c}");
    }
    // Token by token, the differing words differ strongly (not a constant shift).
    let e = out.embeddings.into_data().to_vec::<f32>().unwrap();
    let at = |row: usize, pos: usize| &e[(row * 32 + pos) * 128..(row * 32 + pos + 1) * 128];
    assert!(cosine(at(0, 20), at(1, 20)) < 0.9);
}
