//! Statistics over a set of captions: length histograms in words and in
//! tokens (through a caller-supplied tokenizer length), vocabulary counts,
//! and the captions over the word and token limits.

use std::collections::HashMap;

use crate::rules::word_count;

/// A histogram of lengths in fixed-width bins starting at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Width of each bin.
    pub bin_width: usize,
    /// `counts[i]` = lengths in `[i·bin_width, (i+1)·bin_width)`.
    pub counts: Vec<usize>,
    /// Shortest length.
    pub min: usize,
    /// Longest length.
    pub max: usize,
    /// Mean length.
    pub mean: f64,
}

impl Histogram {
    /// The histogram of `lengths` with bins of `bin_width` (at least 1).
    pub fn of(lengths: &[usize], bin_width: usize) -> Self {
        let bin_width = bin_width.max(1);
        let max = lengths.iter().copied().max().unwrap_or(0);
        let mut counts = vec![
            0;
            if lengths.is_empty() {
                0
            } else {
                max / bin_width + 1
            }
        ];
        for &len in lengths {
            counts[len / bin_width] += 1;
        }
        let mean = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<usize>() as f64 / lengths.len() as f64
        };
        Self {
            bin_width,
            counts,
            min: lengths.iter().copied().min().unwrap_or(0),
            max,
            mean,
        }
    }

    /// One line per non-empty bin: `lo-hi: count ####`.
    pub fn render(&self) -> String {
        let peak = self.counts.iter().copied().max().unwrap_or(0).max(1);
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| {
                let lo = i * self.bin_width;
                let bar = "#".repeat((n * 40).div_ceil(peak));
                format!("{lo:>4}-{:<4} {n:>6} {bar}\n", lo + self.bin_width - 1)
            })
            .collect()
    }
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsOptions {
    /// Bin width of the word histogram.
    pub word_bin: usize,
    /// Bin width of the token histogram.
    pub token_bin: usize,
    /// Captions with more words are listed.
    pub max_words: usize,
    /// Captions with more tokens are listed (the text encoder truncates them).
    pub token_limit: usize,
    /// Vocabulary entries kept, most frequent first.
    pub top_words: usize,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            word_bin: 5,
            token_bin: 8,
            max_words: crate::rules::MAX_WORDS,
            token_limit: 128,
            top_words: 50,
        }
    }
}

/// Statistics of a caption set.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionStats {
    /// Number of captions.
    pub count: usize,
    /// Lengths in words.
    pub words: Histogram,
    /// Lengths in tokens, when a tokenizer length was given.
    pub tokens: Option<Histogram>,
    /// Most frequent words (lowercased, punctuation stripped) and their counts.
    pub vocabulary: Vec<(String, usize)>,
    /// Number of distinct words.
    pub distinct_words: usize,
    /// (key, words) of captions over `max_words`.
    pub over_word_limit: Vec<(String, usize)>,
    /// (key, tokens) of captions over `token_limit`.
    pub over_token_limit: Vec<(String, usize)>,
}

/// Computes statistics of `captions` (key, text). `token_len` gives a
/// caption's length in tokens (the text encoder's tokenizer); without it no
/// token statistics are computed.
pub fn caption_stats<'a>(
    captions: impl IntoIterator<Item = (&'a str, &'a str)>,
    options: &StatsOptions,
    token_len: Option<&dyn Fn(&str) -> usize>,
) -> CaptionStats {
    let mut word_lengths = Vec::new();
    let mut token_lengths = Vec::new();
    let mut vocabulary: HashMap<String, usize> = HashMap::new();
    let mut over_word_limit = Vec::new();
    let mut over_token_limit = Vec::new();
    for (key, text) in captions {
        let words = word_count(text);
        word_lengths.push(words);
        if words > options.max_words {
            over_word_limit.push((key.to_owned(), words));
        }
        if let Some(len) = token_len {
            let tokens = len(text);
            token_lengths.push(tokens);
            if tokens > options.token_limit {
                over_token_limit.push((key.to_owned(), tokens));
            }
        }
        for word in vocabulary_words(text) {
            *vocabulary.entry(word).or_default() += 1;
        }
    }
    let distinct_words = vocabulary.len();
    let mut vocabulary: Vec<(String, usize)> = vocabulary.into_iter().collect();
    vocabulary.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    vocabulary.truncate(options.top_words);
    CaptionStats {
        count: word_lengths.len(),
        words: Histogram::of(&word_lengths, options.word_bin),
        tokens: token_len.map(|_| Histogram::of(&token_lengths, options.token_bin)),
        vocabulary,
        distinct_words,
        over_word_limit,
        over_token_limit,
    }
}

/// The words of `text` for vocabulary counts: lowercased, surrounding
/// punctuation removed, inner hyphens and apostrophes kept.
fn vocabulary_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_by_hand() {
        let h = Histogram::of(&[3, 4, 5, 12], 5);
        assert_eq!(h.counts, [2, 1, 1]);
        assert_eq!((h.min, h.max), (3, 12));
        assert_eq!(h.mean, 6.0);
        assert_eq!(h.render().lines().count(), 3);
        assert_eq!(Histogram::of(&[], 5).counts, Vec::<usize>::new());
    }

    #[test]
    fn stats_count_words_tokens_and_vocabulary() {
        let captions = [
            ("a", "A rose, red petals."),
            ("b", "A daisy, white petals, yellow center."),
        ];
        let options = StatsOptions {
            max_words: 4,
            token_limit: 6,
            ..StatsOptions::default()
        };
        // A stand-in tokenizer length: one token per 5 bytes, rounded up
        // (19 bytes → 4 tokens, 37 bytes → 8 tokens).
        let tokens = |t: &str| t.len().div_ceil(5);
        let stats = caption_stats(captions, &options, Some(&tokens));
        assert_eq!(stats.count, 2);
        assert_eq!((stats.words.min, stats.words.max), (4, 6));
        assert_eq!(stats.over_word_limit, [("b".to_owned(), 6)]);
        let t = stats.tokens.as_ref().unwrap();
        assert_eq!((t.min, t.max), (4, 8));
        assert_eq!(stats.over_token_limit, [("b".to_owned(), 8)]);
        assert_eq!(stats.vocabulary[0], ("a".to_owned(), 2));
        assert_eq!(stats.vocabulary[1], ("petals".to_owned(), 2));
        assert_eq!(stats.distinct_words, 8);
        assert!(caption_stats(captions, &options, None).tokens.is_none());
    }
}
