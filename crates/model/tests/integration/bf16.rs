//! The seed's forward (`fixtures/dit`) computing in bf16, the GPU's
//! training and sampling dtype, on burn's Flex CPU backend (NdArray has no
//! bf16): within bf16's precision of the seed's f32 velocity. (The f32
//! forward on Flex is ssdit-parity's check.)

use burn::prelude::*;
use burn::tensor::DType;
use burn_flex::Flex;
use ssdit_model::{SingleStreamDiTConfig, open_checkpoint};
use ssdit_parity::{Comparison, Fixture, Tolerance, fixtures_root};

#[test]
fn computing_in_bf16_matches_the_seed_within_bf16_precision() {
    let dir = fixtures_root().join("dit");
    let fixture = Fixture::open(&dir).expect("fixture cases");
    let config = SingleStreamDiTConfig::from_seed_file(&dir.join("config.json")).unwrap();
    let checkpoint = open_checkpoint(&dir.join("dit.safetensors"), None).unwrap();
    let device = Default::default();
    let model = config
        .init::<Flex>(&device)
        .and_then(|model| model.load_checkpoint(&checkpoint))
        .unwrap()
        .with_dtype(DType::BF16);
    let input = |name| fixture.tensor(name).unwrap();
    let x = Tensor::<Flex, 4>::from_data(input("x"), &device);
    let t = Tensor::<Flex, 1>::from_data(input("t"), &device);
    let text = Tensor::<Flex, 3>::from_data(input("text_embeds"), &device);
    let got = model.forward(x, t, text);
    assert_eq!(got.dtype(), DType::F32, "the velocity comes back in f32");

    // bf16 rounds every activation to 8 significant bits (2⁻⁹ ≈ 0.2 %).
    let tolerance = Tolerance {
        max_abs: None,
        max_rel_l2: Some(2e-2),
    };
    let comparison = Comparison::new(
        "expected_v computing in bf16",
        &got.into_data(),
        &input("expected_v"),
        tolerance,
    );
    eprintln!("{comparison}");
    assert!(comparison.passed(), "{comparison}");
    assert!(comparison.rel_l2 > 0.0, "no bf16 rounding happened");
}
