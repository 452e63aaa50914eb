//! Editing across a set of captions: literal or regex find/replace, with a
//! dry-run listing of every change before anything is written.

use std::fmt::Write as _;

use regex::Regex;

use crate::error::{Error, Result};

/// What to look for.
#[derive(Debug, Clone)]
pub enum Find {
    /// This exact text.
    Literal(String),
    /// A regular expression (Rust `regex` syntax); the replacement may use
    /// `$1`, `${name}` groups.
    Regex(Regex),
}

/// One find/replace rule.
#[derive(Debug, Clone)]
pub struct EditRule {
    find: Find,
    replace: String,
}

impl EditRule {
    /// Replaces every occurrence of `find` with `replace`, literally.
    pub fn literal(find: &str, replace: &str) -> Result<Self> {
        if find.is_empty() {
            return Err(Error::Config {
                what: "edit rule",
                reason: "the text to find must not be empty".into(),
            });
        }
        Ok(Self {
            find: Find::Literal(find.to_owned()),
            replace: replace.to_owned(),
        })
    }

    /// Replaces every match of the regular expression `pattern` with
    /// `replace` (which may refer to capture groups).
    pub fn regex(pattern: &str, replace: &str) -> Result<Self> {
        let regex = Regex::new(pattern).map_err(|e| Error::Config {
            what: "edit regex",
            reason: format!("{pattern:?}: {e}"),
        })?;
        Ok(Self {
            find: Find::Regex(regex),
            replace: replace.to_owned(),
        })
    }

    /// The matched spans of `text` and what each becomes.
    fn replacements(&self, text: &str) -> Vec<(std::ops::Range<usize>, String)> {
        match &self.find {
            Find::Literal(find) => text
                .match_indices(find.as_str())
                .map(|(start, m)| (start..start + m.len(), self.replace.clone()))
                .collect(),
            Find::Regex(regex) => regex
                .captures_iter(text)
                .map(|caps| {
                    let whole = caps.get(0).expect("group 0 always matches");
                    let mut with = String::new();
                    caps.expand(&self.replace, &mut with);
                    (whole.range(), with)
                })
                .filter(|(range, with)| !range.is_empty() || !with.is_empty())
                .collect(),
        }
    }

    /// The edit of one caption, or `None` when the rule changes nothing.
    pub fn apply(&self, key: &str, text: &str) -> Option<Edit> {
        let replacements = self.replacements(text);
        let mut after = String::with_capacity(text.len());
        let mut diff = String::with_capacity(text.len());
        let mut last = 0;
        for (range, with) in &replacements {
            after.push_str(&text[last..range.start]);
            after.push_str(with);
            diff.push_str(&text[last..range.start]);
            let _ = write!(diff, "[-{}-]{{+{with}+}}", &text[range.clone()]);
            last = range.end;
        }
        after.push_str(&text[last..]);
        diff.push_str(&text[last..]);
        (after != text).then(|| Edit {
            key: key.to_owned(),
            before: text.to_owned(),
            after,
            matches: replacements.len(),
            inline_diff: diff,
        })
    }
}

/// A change to one caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Which caption (a path or a sample id).
    pub key: String,
    /// The caption before.
    pub before: String,
    /// The caption after.
    pub after: String,
    /// How many matches were replaced.
    pub matches: usize,
    /// The caption with each change marked `[-old-]{+new+}`.
    pub inline_diff: String,
}

/// Applies `rule` to every caption; returns only those that change, in
/// input order. Nothing is written: this is the dry run, and its result is
/// what a caller writes back.
pub fn plan_edits<'a>(
    captions: impl IntoIterator<Item = (&'a str, &'a str)>,
    rule: &EditRule,
) -> Vec<Edit> {
    captions
        .into_iter()
        .filter_map(|(key, text)| rule.apply(key, text))
        .collect()
}

/// A dry-run listing: per changed caption its key, the `-`/`+` lines and the
/// inline diff, then a summary line.
pub fn diff_listing(edits: &[Edit], total: usize) -> String {
    let mut out = String::new();
    for edit in edits {
        let _ = writeln!(
            out,
            "{} ({} change{})",
            edit.key,
            edit.matches,
            if edit.matches == 1 { "" } else { "s" }
        );
        let _ = writeln!(out, "- {}", edit.before);
        let _ = writeln!(out, "+ {}", edit.after);
        let _ = writeln!(out, "  {}", edit.inline_diff);
    }
    let replaced: usize = edits.iter().map(|e| e.matches).sum();
    let _ = writeln!(
        out,
        "{} of {total} captions change, {replaced} replacements",
        edits.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTIONS: [(&str, &str); 3] = [
        (
            "1.txt",
            "A macro shot of a rose, the center is yellow, the background is blurred.",
        ),
        ("2.txt", "A macro shot of a daisy, natural lighting."),
        ("3.txt", "A top-down view of a lily, the center is green."),
    ];

    #[test]
    fn literal_replaces_every_occurrence_and_lists_only_changes() {
        let rule = EditRule::literal("the center is", "the centre is").unwrap();
        let edits = plan_edits(CAPTIONS, &rule);
        assert_eq!(edits.len(), 2);
        assert_eq!(edits[0].key, "1.txt");
        assert_eq!(
            edits[0].after,
            "A macro shot of a rose, the centre is yellow, the background is blurred."
        );
        assert_eq!(
            edits[1].inline_diff,
            "A top-down view of a lily, [-the center is-]{+the centre is+} green."
        );
        let listing = diff_listing(&edits, CAPTIONS.len());
        assert!(listing.contains("- A top-down view of a lily, the center is green."));
        assert!(listing.contains("+ A top-down view of a lily, the centre is green."));
        assert!(listing.ends_with("2 of 3 captions change, 2 replacements\n"));
    }

    #[test]
    fn regex_uses_groups() {
        let rule = EditRule::regex(r"A (macro shot|top-down view) of", "A close $1 of").unwrap();
        let edits = plan_edits(CAPTIONS, &rule);
        assert_eq!(edits.len(), 3);
        assert_eq!(
            edits[2].after,
            "A close top-down view of a lily, the center is green."
        );
        // A rule that matches but changes nothing is not an edit.
        let same = EditRule::regex("rose", "rose").unwrap();
        assert!(plan_edits(CAPTIONS, &same).is_empty());
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(EditRule::literal("", "x").is_err());
        assert!(EditRule::regex("(unclosed", "x").is_err());
    }
}
