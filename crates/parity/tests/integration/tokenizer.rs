//! The tokenizer matches transformers' fast tokenizer exactly on
//! `fixtures/tokenizer` (max_length padding and truncation).

use ssdit_parity::{fixtures_root, tokenizer};

#[test]
fn tokenizer_matches_transformers() {
    let report = tokenizer::check(&fixtures_root().join("tokenizer")).expect("fixture runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}
