//! Subject and name rules shared by both buses.
//!
//! Subjects are NATS-style: dot-separated tokens; in a consumer filter `*` matches one token
//! and a final `>` matches one or more. Callers use subjects relative to the deployment's
//! prefix (`sample_ingested`, `dead_letter.>`); the bus prepends `<prefix>.`.

use crate::error::{Error, Result};

/// Longest stream, durable or subject name accepted.
const MAX_NAME_LEN: usize = 128;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Checks a stream or durable consumer name: `[A-Za-z0-9_-]{1,128}`.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 128 bytes"));
    }
    if !name.chars().all(is_name_char) {
        return Err(invalid(
            "only ASCII letters, digits, '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// Checks a subject; `wildcards` allows `*` tokens and a final `>` (consumer filters).
pub(crate) fn validate_subject(what: &'static str, subject: &str, wildcards: bool) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        what,
        name: subject.to_owned(),
        reason,
    };
    if subject.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 128 bytes"));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        match *token {
            "" => return Err(invalid("empty token")),
            "*" | ">" if !wildcards => return Err(invalid("wildcards are not allowed here")),
            ">" if i + 1 != tokens.len() => return Err(invalid("'>' must be the last token")),
            "*" | ">" => {}
            t if !t.chars().all(is_name_char) => {
                return Err(invalid(
                    "tokens hold only ASCII letters, digits, '_' and '-'",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `subject` (no wildcards) matches `filter` (`*` and a final `>` allowed).
pub(crate) fn matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for pattern in filter.split('.') {
        match (pattern, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching_follows_nats_rules() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(matches("a.*", "a.b"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches(">", "x"));
        assert!(!matches("a.*.c", "a.b.d"));
    }

    #[test]
    fn names_and_subjects_are_validated() {
        assert!(validate_name("durable", "vae-encoder_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(129)] {
            assert!(validate_name("durable", bad).is_err(), "{bad:?}");
        }
        assert!(validate_subject("subject", "dead_letter.vae", false).is_ok());
        assert!(validate_subject("filter", "dead_letter.>", true).is_ok());
        for bad in ["", "a..b", ".a", "a.", "a.>", "a.*", "a b"] {
            assert!(validate_subject("subject", bad, false).is_err(), "{bad:?}");
        }
        assert!(validate_subject("filter", "a.>.b", true).is_err());
    }
}
