//! One training step (MSE velocity loss, clip 1.0, `torch.optim.AdamW`)
//! matches the seed's PyTorch step on `fixtures/train_step`: loss, pre-clip
//! gradient norm, and every parameter afterwards.

use ssdit_parity::{fixtures_root, train_step};

#[test]
fn training_step_matches_pytorch() {
    let report = train_step::check(&fixtures_root().join("train_step")).expect("fixture runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}
