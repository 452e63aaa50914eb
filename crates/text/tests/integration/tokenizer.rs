//! `max_length` padding and truncation of `tokenizer.json` tokenizers, as
//! transformers' `padding="max_length", truncation=True` does them.

use crate::common;

use common::word_tokenizer_json;
use ssdit_text::HfTokenizer;

fn tokenizer(max_length: usize) -> HfTokenizer {
    let json = word_tokenizer_json(&["a", "b", "c", "d"]);
    HfTokenizer::from_bytes(json.as_bytes(), max_length, "test").unwrap()
}

#[test]
fn empty_text_is_bos_then_padding() {
    let batch = tokenizer(4).encode(&["".into()]).unwrap();
    assert_eq!(batch.input_ids, [vec![2, 0, 0, 0]]);
    assert_eq!(batch.attention_mask, [vec![1, 0, 0, 0]]);
}

#[test]
fn exactly_max_length_is_untouched_and_longer_is_cut_at_the_end() {
    let batch = tokenizer(4)
        .encode(&["a b c".into(), "a b c d".into(), "a".into()])
        .unwrap();
    // ids: a=4, b=5, c=6, d=7; <bos> counts towards max_length.
    assert_eq!(
        batch.input_ids,
        [vec![2, 4, 5, 6], vec![2, 4, 5, 6], vec![2, 4, 0, 0]]
    );
    assert_eq!(
        batch.attention_mask,
        [vec![1; 4], vec![1; 4], vec![1, 1, 0, 0]]
    );
}

#[test]
fn another_length_pads_and_truncates_the_same_way() {
    let longer = tokenizer(2).with_max_length(6).unwrap();
    assert_eq!(longer.max_length(), 6);
    let batch = longer.encode(&["a b c d e".into()]).unwrap();
    assert_eq!(batch, tokenizer(6).encode(&["a b c d e".into()]).unwrap());
    assert!(tokenizer(2).with_max_length(0).is_err());
}

#[test]
fn max_length_one_keeps_only_bos() {
    let batch = tokenizer(1).encode(&["a b".into()]).unwrap();
    assert_eq!(
        (batch.input_ids, batch.attention_mask),
        (vec![vec![2]], vec![vec![1]])
    );
}

#[test]
fn unusable_tokenizers_are_errors() {
    let json = word_tokenizer_json(&["a"]);
    let err = HfTokenizer::from_bytes(json.as_bytes(), 0, "t.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.json") && err.contains("max_length"),
        "{err}"
    );
    let no_pad = json.replace("<pad>", "<nothing>");
    let err = HfTokenizer::from_bytes(no_pad.as_bytes(), 8, "t.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("padding"), "{err}");
    let err = HfTokenizer::from_bytes(b"{", 8, "t.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.json"), "{err}");
    let err = HfTokenizer::from_file(std::path::Path::new("/nonexistent/tokenizer.json"), 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/tokenizer.json"), "{err}");
}
