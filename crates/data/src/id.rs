//! Content ids: a sample is named by the hash of its image bytes, so the same
//! image always gets the same id and re-ingesting it is a no-op.

use std::fmt;
use std::str::FromStr;

/// Number of hex characters kept from the blake3 digest (128 bits).
pub const CONTENT_ID_HEX_LEN: usize = 32;

/// A sample's id: the first [`CONTENT_ID_HEX_LEN`] lowercase hex characters of
/// the blake3 hash of its image file's bytes.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ContentId(String);

impl ContentId {
    /// The id of an image with these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let hex = blake3::hash(bytes).to_hex();
        Self(hex[..CONTENT_ID_HEX_LEN].to_owned())
    }

    /// The id as its hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a [`ContentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content id {0:?} is not {CONTENT_ID_HEX_LEN} lowercase hex characters")]
pub struct ParseContentIdError(String);

impl FromStr for ContentId {
    type Err = ParseContentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == CONTENT_ID_HEX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseContentIdError(s.to_owned()))
        }
    }
}

impl TryFrom<String> for ContentId {
    type Error = ParseContentIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ContentId> for String {
    fn from(id: ContentId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_same_id_and_different_bytes_differ() {
        let a = ContentId::of(b"one image");
        assert_eq!(a, ContentId::of(b"one image"));
        assert_ne!(a, ContentId::of(b"another image"));
        assert_eq!(a.as_str().len(), CONTENT_ID_HEX_LEN);
        assert!(blake3::hash(b"one image").to_hex().starts_with(a.as_str()));
    }

    #[test]
    fn parses_its_own_display_and_refuses_garbage() {
        let id = ContentId::of(b"x");
        assert_eq!(id.to_string().parse::<ContentId>().unwrap(), id);
        assert!("xyz".parse::<ContentId>().is_err());
        assert!(id.as_str().to_uppercase().parse::<ContentId>().is_err());
    }
}
