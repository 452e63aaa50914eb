//! Euler and RK4 sampling with CFG match the reference on `fixtures/sampler`
//! (the `dit` fixture's weights, 4 Euler steps and 3 RK4 steps at cfg 3).

use ssdit_parity::{fixtures_root, sampler};

#[test]
fn samplers_match_the_reference() {
    let report = sampler::check(&fixtures_root().join("sampler")).expect("fixture runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}
