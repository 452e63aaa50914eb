//! The caption rules of the seed's captioning instruction, as a checker.
//!
//! The seed asked Qwen3-VL for one line of at most 50 words, comma-separated
//! phrases, no surrounding double quotes, in the order: view → flower name
//! and state → petals → centre → stem/leaves → background → lighting/focus
//! ("A macro shot of a rose, having …petals…, the center is …, the background
//! is …, natural lighting"). Breaking the first rules makes a caption unusable
//! as is ([`Severity::Violation`]); a missing comma structure or an unusual
//! order is worth a look but not a retry ([`Severity::Advice`]).

use std::fmt;

/// The seed's word limit.
pub const MAX_WORDS: usize = 50;

/// Longer captions without any comma are flagged as not phrase-structured.
const MIN_WORDS_FOR_COMMA_CHECK: usize = 12;

/// Rules a caption is checked against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionRules {
    /// Largest number of words (seed: 50).
    pub max_words: usize,
    /// Whether the phrase order is checked (advice only).
    pub check_order: bool,
}

impl Default for CaptionRules {
    fn default() -> Self {
        Self {
            max_words: MAX_WORDS,
            check_order: true,
        }
    }
}

/// How serious an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth a look; the caption is usable.
    Advice,
    /// The caption breaks a rule; clean it, retry it or truncate it.
    Violation,
}

/// The parts of a caption, in the order the instruction asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// Shot type and subject ("A macro shot of a rose").
    View,
    /// The flower's state ("fully in bloom", "closed bud").
    State,
    /// Petal colour, shape, texture.
    Petals,
    /// Reproductive parts: stamen, pistil, anthers, pollen, cone, disk.
    Centre,
    /// Stem and leaves.
    StemLeaves,
    /// The setting behind the subject.
    Background,
    /// Lighting and focus.
    Lighting,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::View => "view",
            Self::State => "flower state",
            Self::Petals => "petals",
            Self::Centre => "centre",
            Self::StemLeaves => "stem/leaves",
            Self::Background => "background",
            Self::Lighting => "lighting/focus",
        })
    }
}

/// One way a caption departs from the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// Nothing but whitespace.
    Empty,
    /// More than one non-empty line.
    MultiLine { lines: usize },
    /// Over the word limit.
    TooManyWords { words: usize, max: usize },
    /// Wrapped in quotation marks.
    Quoted,
    /// Contains markdown (emphasis, headings, bullets, code fences) or a
    /// "Caption:" label.
    Markdown,
    /// Whitespace runs, stray spaces before punctuation, or untrimmed ends.
    Whitespace,
    /// A long caption with no comma: not phrase-structured.
    NotCommaSeparated { words: usize },
    /// A phrase about `found` comes after one about `after`, against the
    /// instruction's order.
    OutOfOrder { found: Section, after: Section },
}

impl Issue {
    /// Whether this issue makes the caption unusable as is.
    pub fn severity(&self) -> Severity {
        match self {
            Self::NotCommaSeparated { .. } | Self::OutOfOrder { .. } => Severity::Advice,
            _ => Severity::Violation,
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "caption is empty"),
            Self::MultiLine { lines } => write!(f, "caption spans {lines} lines, must be one"),
            Self::TooManyWords { words, max } => {
                write!(f, "caption has {words} words, over the limit of {max}")
            }
            Self::Quoted => write!(f, "caption is wrapped in quotes"),
            Self::Markdown => write!(f, "caption contains markdown or a label"),
            Self::Whitespace => write!(f, "caption has irregular whitespace"),
            Self::NotCommaSeparated { words } => {
                write!(
                    f,
                    "caption has {words} words and no comma-separated phrases"
                )
            }
            Self::OutOfOrder { found, after } => {
                write!(
                    f,
                    "{found} is described after {after}, the order is view, flower state, petals, centre, stem/leaves, background, lighting/focus"
                )
            }
        }
    }
}

/// Number of whitespace-separated words.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Checks `text` against `rules`; an empty list means it follows all of them.
pub fn check(text: &str, rules: &CaptionRules) -> Vec<Issue> {
    let mut issues = Vec::new();
    if text.trim().is_empty() {
        issues.push(Issue::Empty);
        return issues;
    }
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    if lines > 1 {
        issues.push(Issue::MultiLine { lines });
    }
    let words = word_count(text);
    if words > rules.max_words {
        issues.push(Issue::TooManyWords {
            words,
            max: rules.max_words,
        });
    }
    if crate::clean::is_quoted(text.trim()) {
        issues.push(Issue::Quoted);
    }
    if crate::clean::has_markdown(text) {
        issues.push(Issue::Markdown);
    }
    if crate::clean::collapse_whitespace(text) != text {
        issues.push(Issue::Whitespace);
    }
    if words >= MIN_WORDS_FOR_COMMA_CHECK && !text.contains(',') {
        issues.push(Issue::NotCommaSeparated { words });
    }
    if rules.check_order {
        issues.extend(order_issue(text));
    }
    issues
}

/// Whether any issue is a [`Severity::Violation`].
pub fn has_violation(issues: &[Issue]) -> bool {
    issues.iter().any(|i| i.severity() == Severity::Violation)
}

/// The first phrase whose section comes before an earlier phrase's section.
fn order_issue(text: &str) -> Option<Issue> {
    let mut latest: Option<Section> = None;
    for section in text.split(',').filter_map(classify_phrase) {
        match latest {
            Some(after) if section < after => {
                return Some(Issue::OutOfOrder {
                    found: section,
                    after,
                });
            }
            _ => latest = Some(section),
        }
    }
    None
}

/// Keywords by section. A phrase is about the section of its first keyword:
/// "the background is out-of-focus foliage" is about the background, "petals
/// with stripes on a white background" about the petals.
const SECTION_KEYWORDS: [(Section, &[&str]); 7] = [
    (
        Section::Background,
        &["background", "backdrop", "setting", "surroundings"],
    ),
    (
        Section::Centre,
        &[
            "center",
            "centre",
            "stamen",
            "stamens",
            "pistil",
            "pistils",
            "anther",
            "anthers",
            "pollen",
            "stigma",
            "filaments",
            "cone",
            "disk",
            "disc",
        ],
    ),
    (
        Section::StemLeaves,
        &[
            "stem", "stems", "stalk", "stalks", "leaf", "leaves", "thorns", "thorny",
        ],
    ),
    (
        Section::Petals,
        &[
            "petal", "petals", "sepal", "sepals", "tepals", "florets", "bracts",
        ],
    ),
    (
        Section::Lighting,
        &[
            "lighting",
            "lit",
            "sunlight",
            "daylight",
            "backlit",
            "backlighting",
            "illumination",
            "illuminated",
            "shadows",
            "focus",
            "bokeh",
            "depth",
            "exposure",
        ],
    ),
    (
        Section::View,
        &[
            "shot",
            "view",
            "close-up",
            "closeup",
            "macro",
            "photo",
            "photograph",
            "image",
        ],
    ),
    (
        Section::State,
        &[
            "bloom", "blooming", "budding", "bud", "buds", "wilting", "withered", "wilted",
        ],
    ),
];

/// The section a comma-separated phrase is about: that of its first keyword.
pub fn classify_phrase(phrase: &str) -> Option<Section> {
    phrase
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .find_map(|word| {
            let word = word.to_lowercase();
            SECTION_KEYWORDS
                .iter()
                .find(|(_, keys)| keys.contains(&word.as_str()))
                .map(|(section, _)| *section)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "A macro shot of a bellflower, having pale pink petals with white central \
        gradient, the center is yellow stamen with pollen, the background is blurred green \
        foliage, natural daylight.";

    #[test]
    fn a_seed_style_caption_has_no_issues() {
        assert_eq!(check(GOOD, &CaptionRules::default()), []);
    }

    #[test]
    fn each_violation_is_found() {
        let rules = CaptionRules::default();
        assert_eq!(check("  ", &rules), [Issue::Empty]);
        assert!(check("A rose,\nred petals", &rules).contains(&Issue::MultiLine { lines: 2 }));
        assert!(check("\"A rose, red petals\"", &rules).contains(&Issue::Quoted));
        assert!(check("A rose, **red** petals", &rules).contains(&Issue::Markdown));
        assert!(check("A rose,  red petals", &rules).contains(&Issue::Whitespace));
        let long = vec!["word,"; 51].join(" ");
        assert!(check(&long, &rules).contains(&Issue::TooManyWords { words: 51, max: 50 }));
        let fifty = vec!["word,"; 50].join(" ");
        assert!(!has_violation(&check(&fifty, &rules)));
    }

    #[test]
    fn order_is_advice_and_names_the_sections() {
        let text = "A macro shot of a rose, the background is green, having red petals";
        let issues = check(text, &CaptionRules::default());
        assert_eq!(
            issues,
            [Issue::OutOfOrder {
                found: Section::Petals,
                after: Section::Background
            }]
        );
        assert!(!has_violation(&issues));
        let unchecked = CaptionRules {
            check_order: false,
            ..CaptionRules::default()
        };
        assert_eq!(check(text, &unchecked), []);
    }

    #[test]
    fn phrases_are_classified_by_their_first_keyword() {
        assert_eq!(
            classify_phrase("A macro shot of a rose"),
            Some(Section::View)
        );
        assert_eq!(
            classify_phrase("the background is out-of-focus green foliage"),
            Some(Section::Background)
        );
        assert_eq!(classify_phrase("soft focus"), Some(Section::Lighting));
        assert_eq!(
            classify_phrase("petals with red stripes on a white background"),
            Some(Section::Petals)
        );
        assert_eq!(classify_phrase("with smooth edges"), None);
    }
}
