//! The DiT, sampler and training-step checks again on burn's Flex CPU
//! backend. There every operation takes the path CUDA takes: burn's
//! composite operations and autodiff instead of ssdit-kernels' CPU kernels
//! (RoPE, the local bias, the linear layers, AdamW), and attention, RMSNorm
//! and SwiGLU recorded with ssdit-kernels' own backward passes (its `flex`
//! feature, on in these tests). Same fixtures, same tolerances.

use burn::backend::Autodiff;
use burn_flex::Flex;
use ssdit_parity::{Report, dit, fixtures_root, sampler, train_step};

fn assert_passed(report: Report) {
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn dit_forward_on_flex_matches_the_seed() {
    let dir = fixtures_root().join("dit");
    assert_passed(dit::check_on::<Flex>(&dir, &Default::default()).expect("fixture runs"));
}

#[test]
fn sampling_on_flex_matches_the_reference() {
    let dir = fixtures_root().join("sampler");
    assert_passed(sampler::check_on::<Flex>(&dir, &Default::default()).expect("fixture runs"));
}

#[test]
fn a_training_step_on_flex_matches_pytorch() {
    let dir = fixtures_root().join("train_step");
    let report = train_step::check_on::<Autodiff<Flex>>(&dir, &Default::default());
    assert_passed(report.expect("fixture runs"));
}
