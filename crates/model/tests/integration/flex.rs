//! The seed's forward (`fixtures/dit`) on burn's Flex CPU backend. There the
//! model takes the path of every backend but NdArray, CUDA included: burn's
//! composite operations instead of this workspace's CPU kernels. In f32 it
//! matches the seed within the fixture's tolerance; computing in bf16, the
//! GPU's training and sampling dtype, within bf16's precision.

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::Flex;
use ssdit_model::{SingleStreamDiTConfig, open_checkpoint};
use ssdit_parity::{Comparison, Fixture, Tolerance, fixtures_root};

fn fixture_dir() -> PathBuf {
    fixtures_root().join("dit")
}

/// The seed model on Flex computing in `dtype`, on the fixture's inputs,
/// against `expected_v`.
fn compare_on_flex(dtype: DType, tolerance: Tolerance) -> Comparison {
    let dir = fixture_dir();
    let fixture = Fixture::open(&dir).expect("fixture cases");
    let config = SingleStreamDiTConfig::from_seed_file(&dir.join("config.json")).unwrap();
    let checkpoint = open_checkpoint(&dir.join("dit.safetensors"), None).unwrap();
    let device = Default::default();
    let model = config
        .init::<Flex>(&device)
        .and_then(|model| model.load_checkpoint(&checkpoint))
        .unwrap()
        .with_dtype(dtype);
    let input = |name| fixture.tensor(name).unwrap();
    let x = Tensor::<Flex, 4>::from_data(input("x"), &device);
    let t = Tensor::<Flex, 1>::from_data(input("t"), &device);
    let text = Tensor::<Flex, 3>::from_data(input("text_embeds"), &device);
    let got = model.forward(x, t, text);
    assert_eq!(
        got.dtype(),
        DType::F32,
        "the velocity comes back in the input's dtype"
    );
    let comparison = Comparison::new(
        format!("expected_v on Flex in {dtype:?}"),
        &got.into_data(),
        &input("expected_v"),
        tolerance,
    );
    eprintln!("{comparison}");
    comparison
}

#[test]
fn the_composite_path_in_f32_matches_the_seed() {
    let tolerance = Fixture::open(&fixture_dir()).unwrap().tolerance().unwrap();
    assert!(compare_on_flex(DType::F32, tolerance).passed());
}

#[test]
fn computing_in_bf16_matches_the_seed_within_bf16_precision() {
    // bf16 rounds every activation to 8 significant bits (2⁻⁹ ≈ 0.2 %).
    let tolerance = Tolerance {
        max_abs: None,
        max_rel_l2: Some(2e-2),
    };
    let comparison = compare_on_flex(DType::BF16, tolerance);
    assert!(comparison.passed());
    assert!(comparison.rel_l2 > 0.0, "no bf16 rounding happened");
}
