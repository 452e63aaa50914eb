//! The T5Gemma2 encoder matches transformers on `fixtures/t5gemma2`
//! (float64 reference, our f32), padding positions included.

use ssdit_parity::{fixtures_root, t5gemma2};

#[test]
fn encoder_matches_transformers() {
    let report = t5gemma2::check(&fixtures_root().join("t5gemma2")).expect("fixture runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.comparisons.len(),
        3,
        "all, real and padded positions: {report}"
    );
}
