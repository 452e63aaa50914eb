//! The seed's 200 flower captions against the rules and the cleaner.

use ssdit_caption::set::CaptionSet;
use ssdit_caption::stats::{StatsOptions, caption_stats};
use ssdit_caption::{CaptionRules, Fix, Issue, Severity, clean};
use ssdit_testkit::shared_data;

#[test]
fn the_200_captions_pass_the_cleaner_with_at_most_whitespace_fixes() {
    let dir = shared_data("flowers-captions");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 200);
    let rules = CaptionRules::default();
    let (mut whitespace_fixed, mut over_limit, mut advice) = (0, 0, 0);
    for path in &paths {
        // Raw file text, not trimmed: the cleaner sees what is on disk.
        let raw = std::fs::read_to_string(path).unwrap();
        let cleaned = clean(&raw, &rules);
        assert!(
            cleaned.fixes.iter().all(|f| *f == Fix::Whitespace),
            "{}: {:?}",
            path.display(),
            cleaned.fixes
        );
        assert_eq!(
            cleaned.text,
            raw.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" ,", ",")
        );
        whitespace_fixed += usize::from(cleaned.changed());
        for issue in &cleaned.issues {
            match issue {
                Issue::TooManyWords { .. } => over_limit += 1,
                other if other.severity() == Severity::Advice => {
                    advice += 1;
                    println!(
                        "{}: advice: {other}",
                        path.file_name().unwrap().to_string_lossy()
                    );
                }
                other => panic!("{}: {other}", path.display()),
            }
        }
    }
    println!(
        "{} captions: {whitespace_fixed} with whitespace fixes, {over_limit} over 50 words, {advice} with advice",
        paths.len()
    );
    assert_eq!(over_limit, 0);
}

#[test]
fn stats_of_the_200_captions() {
    let (set, rejects) = CaptionSet::load_dir(&shared_data("flowers-captions"), 1 << 20).unwrap();
    assert!(rejects.is_empty());
    assert_eq!(set.files.len(), 200);
    // A stand-in for the tokenizer: whitespace words and punctuation marks.
    let tokens = |t: &str| t.split_whitespace().count() + t.matches([',', '.']).count();
    let stats = caption_stats(set.entries(), &StatsOptions::default(), Some(&tokens));
    println!(
        "words per caption (min {}, mean {:.1}, max {}):\n{}",
        stats.words.min,
        stats.words.mean,
        stats.words.max,
        stats.words.render()
    );
    println!("top words: {:?}", &stats.vocabulary[..10]);
    assert_eq!(stats.count, 200);
    assert_eq!(stats.words.counts.iter().sum::<usize>(), 200);
    assert!(stats.over_word_limit.is_empty());
    assert!(stats.over_token_limit.is_empty());
    assert!(stats.vocabulary.iter().any(|(w, _)| w == "petals"));
}
