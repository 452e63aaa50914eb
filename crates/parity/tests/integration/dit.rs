//! The DiT forward matches the seed's PyTorch `SingleStreamDiTV2` on
//! `fixtures/dit` (config.json + dit.safetensors, 4×6-token grid, one
//! all-zero caption row) within the fixture's tolerance.

use ssdit_parity::{dit, fixtures_root};

#[test]
fn dit_forward_matches_the_seed() {
    let report = dit::check(&fixtures_root().join("dit")).expect("fixture runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}
