//! The caption cleaner: repairs what a VLM commonly adds around a caption
//! (quotes, markdown, a "Caption:" label, line breaks, stray whitespace) and
//! reports what it could not repair (length) for the caller to retry or
//! truncate.

use std::sync::LazyLock;

use regex::Regex;

use crate::rules::{CaptionRules, Issue, check, word_count};

/// A repair the cleaner made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fix {
    /// Collapsed whitespace runs, removed spaces before punctuation, trimmed.
    Whitespace,
    /// Joined several lines into one.
    Lines,
    /// Removed surrounding quotation marks.
    Quotes,
    /// Removed markdown markers or a "Caption:" label.
    Markdown,
}

/// The result of cleaning one caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// The cleaned caption.
    pub text: String,
    /// The repairs made, in the order applied, each at most once.
    pub fixes: Vec<Fix>,
    /// The issues the cleaned caption still has (such as too many words).
    pub issues: Vec<Issue>,
}

impl Cleaned {
    /// Whether the caption was changed.
    pub fn changed(&self) -> bool {
        !self.fixes.is_empty()
    }
}

/// Opening and closing quotation marks that may wrap a whole caption.
const QUOTE_PAIRS: [(char, char); 7] = [
    ('"', '"'),
    ('\'', '\''),
    ('\u{201c}', '\u{201d}'),
    ('\u{2018}', '\u{2019}'),
    ('\u{00ab}', '\u{00bb}'),
    ('\u{201e}', '\u{201c}'),
    ('`', '`'),
];

static LINE_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    // Headings, bullets, numbered items, block quotes, then an optional label.
    Regex::new(
        r"(?i)^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+|>\s*)*(?:\*\*|__)?(?:caption|description)(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*|^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+|>\s*)+",
    )
    .expect("valid regex")
});
static EMPHASIS: LazyLock<Regex> = LazyLock::new(|| {
    // **bold**, __bold__, *italic*: markers touching a word character.
    Regex::new(r"\*\*|__|(?:^|(?P<pre>[\s(]))\*(?P<body>\S(?:[^*]*\S)?)\*").expect("valid regex")
});
static CODE_FENCE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*```").expect("valid regex"));
static SPACE_BEFORE_PUNCT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" ([,.;:!?])").expect("valid regex"));

/// Cleans `text` and checks the result against `rules`.
pub fn clean(text: &str, rules: &CaptionRules) -> Cleaned {
    let mut fixes = Vec::new();
    let mut note = |fix: Fix, changed: bool| {
        if changed && !fixes.contains(&fix) {
            fixes.push(fix);
        }
    };

    let raw_lines: Vec<&str> = text.lines().collect();
    let lines: Vec<String> = raw_lines
        .iter()
        .filter(|line| !CODE_FENCE.is_match(line))
        .map(|line| strip_markdown(line))
        .collect();
    let markdown = lines.len() != raw_lines.len()
        || lines
            .iter()
            .zip(&raw_lines)
            .any(|(a, b)| a.trim() != b.trim());
    note(Fix::Markdown, markdown);

    let parts: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    note(Fix::Lines, parts.len() > 1);
    let joined = join_lines(&parts);

    let mut current = collapse_whitespace(&joined);
    let ragged_lines = lines
        .iter()
        .any(|l| !l.trim().is_empty() && l.trim() != l.as_str());
    note(
        Fix::Whitespace,
        text.trim() != text || ragged_lines || current != joined,
    );
    while is_quoted(&current) {
        current = collapse_whitespace(strip_quotes(&current));
        note(Fix::Quotes, true);
    }
    let issues = check(&current, rules);
    Cleaned {
        text: current,
        fixes,
        issues,
    }
}

/// Removes heading, bullet and label prefixes and emphasis markers from a line.
fn strip_markdown(line: &str) -> String {
    let line = LINE_PREFIX.replace(line, "");
    EMPHASIS
        .replace_all(&line, |caps: &regex::Captures<'_>| {
            match caps.name("body") {
                Some(body) => format!(
                    "{}{}",
                    caps.name("pre").map_or("", |m| m.as_str()),
                    body.as_str()
                ),
                None => String::new(),
            }
        })
        .into_owned()
}

/// Joins lines into one caption: a line that does not end in a comma gets
/// one (a final full stop becomes a comma), so phrases stay separated.
fn join_lines(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            out.push_str(part);
        } else {
            let body = part.strip_suffix('.').unwrap_or(part);
            out.push_str(body);
            if !body.ends_with([',', ';', ':']) {
                out.push(',');
            }
            out.push(' ');
        }
    }
    out
}

/// Whether markdown markers or a "Caption:" label appear in `text`.
pub fn has_markdown(text: &str) -> bool {
    text.lines()
        .any(|line| CODE_FENCE.is_match(line) || strip_markdown(line).trim() != line.trim())
}

/// One space between words, none before punctuation, no spaces at the ends.
pub fn collapse_whitespace(text: &str) -> String {
    let single = text.split_whitespace().collect::<Vec<_>>().join(" ");
    SPACE_BEFORE_PUNCT.replace_all(&single, "$1").into_owned()
}

/// The quote pair wrapping `text`, if any (a full stop after the closing
/// quote is allowed: `"A rose".`).
fn wrapping_quotes(text: &str) -> Option<(char, char)> {
    let body = text.strip_suffix('.').unwrap_or(text);
    let mut chars = body.chars();
    let (first, last) = (chars.next()?, chars.next_back()?);
    QUOTE_PAIRS
        .iter()
        .copied()
        .find(|&(open, close)| first == open && last == close)
}

/// Whether the whole caption is wrapped in quotation marks.
pub fn is_quoted(text: &str) -> bool {
    wrapping_quotes(text).is_some()
}

fn strip_quotes(text: &str) -> &str {
    let Some((open, close)) = wrapping_quotes(text) else {
        return text;
    };
    let trailing_stop = text.ends_with('.') && !text.ends_with(close);
    let body = if trailing_stop {
        &text[..text.len() - 1]
    } else {
        text
    };
    &body[open.len_utf8()..body.len() - close.len_utf8()]
}

/// Shortens `text` to at most `max_words` words, cutting at the last comma
/// that keeps at least half of them so the caption ends on a whole phrase;
/// a final full stop is kept.
pub fn truncate_to_words(text: &str, max_words: usize) -> String {
    if word_count(text) <= max_words {
        return text.to_owned();
    }
    let words: Vec<&str> = text.split_whitespace().take(max_words).collect();
    let phrase_end = words
        .iter()
        .rposition(|w| w.ends_with(','))
        .filter(|&i| i + 1 >= max_words.div_ceil(2));
    let kept = match phrase_end {
        Some(i) => &words[..=i],
        None => &words[..],
    };
    let mut out = kept.join(" ");
    while out.ends_with([',', ';', ':']) {
        out.pop();
    }
    if text.trim_end().ends_with('.') && !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(text: &str) -> Cleaned {
        clean(text, &CaptionRules::default())
    }

    #[test]
    fn clean_caption_is_untouched() {
        let text = "A macro shot of a rose, having red petals, natural lighting.";
        let out = cleaned(text);
        assert_eq!(out.text, text);
        assert_eq!(out.fixes, []);
        assert_eq!(out.issues, []);
    }

    #[test]
    fn whitespace_only_fixes_are_reported_as_such() {
        let out = cleaned("  A macro shot of a rose ,  having red petals.\n");
        assert_eq!(out.text, "A macro shot of a rose, having red petals.");
        assert_eq!(out.fixes, [Fix::Whitespace]);
    }

    #[test]
    fn quotes_markdown_labels_and_lines_are_removed() {
        let out = cleaned(
            "**Caption:** \u{201c}A macro shot of a *red* rose\n- having velvety petals\n\nnatural lighting.\u{201d}",
        );
        assert_eq!(
            out.text,
            "A macro shot of a red rose, having velvety petals, natural lighting."
        );
        assert_eq!(out.fixes, [Fix::Markdown, Fix::Lines, Fix::Quotes]);
        assert_eq!(out.issues, []);
        let fenced = cleaned("```\n\"A rose, red petals\".\n```");
        assert_eq!(fenced.text, "A rose, red petals");
        assert!(fenced.fixes.contains(&Fix::Quotes) && fenced.fixes.contains(&Fix::Markdown));
    }

    #[test]
    fn inner_quotes_and_hyphens_survive() {
        let text = "A close-up of a 'Peace' rose, having cream petals";
        assert_eq!(cleaned(text).text, text);
    }

    #[test]
    fn overlong_is_reported_not_fixed() {
        let text = vec!["word,"; 60].join(" ");
        let out = cleaned(&text);
        assert!(
            out.issues
                .contains(&Issue::TooManyWords { words: 60, max: 50 })
        );
        assert_eq!(out.text, text);
    }

    #[test]
    fn truncation_ends_on_a_whole_phrase() {
        let text = "A macro shot of a rose, having deep red velvety petals, the center is hidden, natural light.";
        assert_eq!(
            truncate_to_words(text, 12),
            "A macro shot of a rose, having deep red velvety petals."
        );
        assert_eq!(truncate_to_words(text, 100), text);
        let no_commas = "one two three four five six";
        assert_eq!(truncate_to_words(no_commas, 4), "one two three four");
        assert!(word_count(&truncate_to_words(text, 3)) <= 3);
    }
}
