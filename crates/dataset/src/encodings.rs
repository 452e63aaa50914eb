use std::collections::{BTreeMap, BTreeSet};

use ssdit_store::{Key, Store, layout};

use crate::{Bucket, Result};

/// Which models a dataset is encoded with: the cache keys of latents and
/// embeddings hold these, so changing any model re-encodes exactly what it
/// produced, and caches are shared safely across runs and machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encodings {
    /// Fingerprint of the VAE (config + weights).
    pub vae: String,
    pub text: TextEncoding,
}

/// The identity of a caption embedding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TextEncoding {
    /// Fingerprint of the text encoder (config + weights).
    pub encoder: String,
    /// Fingerprint of the tokenizer.
    pub tokenizer: String,
    /// Tokens per caption.
    pub max_length: u32,
}

/// What a caption embedding encodes: the last component of its cache key.
///
/// Embeddings are keyed by the caption's text, not by the sample, so an
/// edited caption is encoded again (its old embedding is never read for it)
/// and samples with the same caption share one embedding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptionHash(String);

/// Hash domains, so that a caption can never collide with a sample id.
const CAPTION_DOMAIN: &[u8] = b"caption\0";
const UNCAPTIONED_DOMAIN: &[u8] = b"uncaptioned sample\0";

impl CaptionHash {
    /// Of a caption: the BLAKE3 hash of its text as the text encoder reads
    /// it (trimmed).
    pub fn of(caption: &str) -> Self {
        Self::hash(CAPTION_DOMAIN, caption.trim())
    }

    /// Of an embedding that came without its caption text (a seed cache
    /// imported without captions): it belongs to sample `sample_id` alone.
    pub fn uncaptioned(sample_id: &str) -> Self {
        Self::hash(UNCAPTIONED_DOMAIN, sample_id)
    }

    /// Of sample `sample_id` whose caption text is `caption` (`None`: it has none).
    pub fn for_sample(sample_id: &str, caption: Option<&str>) -> Self {
        caption.map_or_else(|| Self::uncaptioned(sample_id), Self::of)
    }

    /// The hash as it appears in keys (64 hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn hash(domain: &[u8], text: &str) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain);
        hasher.update(text.as_bytes());
        Self(hasher.finalize().to_hex().to_string())
    }
}

impl std::fmt::Display for CaptionHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Encodings {
    /// Where a sample's latent lives.
    pub fn latent_key(&self, sample_id: &str, bucket: Bucket) -> Result<Key> {
        Ok(layout::latent(
            sample_id,
            &self.vae,
            bucket.width,
            bucket.height,
        )?)
    }

    /// Where the embedding of a caption lives.
    pub fn embedding_key(&self, caption: &CaptionHash) -> Result<Key> {
        self.text.embedding_key(caption)
    }
}

impl TextEncoding {
    /// Where the embedding of a caption lives.
    pub fn embedding_key(&self, caption: &CaptionHash) -> Result<Key> {
        Ok(layout::embedding(
            caption.as_str(),
            &self.encoder,
            &self.tokenizer,
            self.max_length,
        )?)
    }

    /// The prefix holding every embedding of this encoding.
    pub fn prefix(&self) -> Result<Key> {
        Ok(layout::embeddings_prefix(
            &self.encoder,
            &self.tokenizer,
            self.max_length,
        )?)
    }
}

/// Every text encoding with embeddings in `store`, and the captions each has
/// encoded: what the trainer and the tools choose an encoding from.
pub async fn cached_embeddings(
    store: &Store,
) -> Result<BTreeMap<TextEncoding, BTreeSet<CaptionHash>>> {
    let mut found: BTreeMap<TextEncoding, BTreeSet<CaptionHash>> = BTreeMap::new();
    for object in store.list(&layout::embeddings_root()?).await? {
        if let Some(entry) = layout::parse_embedding(&object.key) {
            let encoding = TextEncoding {
                encoder: entry.encoder_fingerprint.to_string(),
                tokenizer: entry.tokenizer_fingerprint.to_string(),
                max_length: entry.max_length,
            };
            found
                .entry(encoding)
                .or_default()
                .insert(CaptionHash(entry.caption_hash.to_string()));
        }
    }
    Ok(found)
}

/// The captions with an embedding of `encoding` in `store`.
pub(crate) async fn encoded_captions(
    store: &Store,
    encoding: &TextEncoding,
) -> Result<BTreeSet<CaptionHash>> {
    Ok(store
        .list(&encoding.prefix()?)
        .await?
        .iter()
        .filter_map(|object| layout::parse_embedding(&object.key))
        .map(|entry| CaptionHash(entry.caption_hash.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_hashes_follow_the_text_the_encoder_reads() {
        let rose = CaptionHash::of("a red rose");
        assert_eq!(rose, CaptionHash::of("  a red rose\n"));
        assert_ne!(rose, CaptionHash::of("a red rose in the rain"));
        assert_eq!(rose.as_str().len(), 64);
        assert_ne!(
            CaptionHash::uncaptioned("id1"),
            CaptionHash::uncaptioned("id2")
        );
        assert_ne!(CaptionHash::uncaptioned("a red rose"), rose);
        assert_eq!(CaptionHash::for_sample("id1", Some("a red rose")), rose);
        assert_eq!(
            CaptionHash::for_sample("id1", None),
            CaptionHash::uncaptioned("id1")
        );
    }

    #[tokio::test]
    async fn cached_embeddings_are_grouped_by_encoding() {
        let store = Store::open("memory://").await.unwrap();
        let encoding = |tokenizer: &str, max_length| TextEncoding {
            encoder: "enc".into(),
            tokenizer: tokenizer.into(),
            max_length,
        };
        let (a, b) = (encoding("tok", 32), encoding("tok", 64));
        for (encoding, caption) in [(&a, "rose"), (&a, "lily"), (&b, "rose")] {
            let key = encoding.embedding_key(&CaptionHash::of(caption)).unwrap();
            store.put(&key, bytes::Bytes::from("x")).await.unwrap();
        }
        let stray = Key::parse("cache/embeddings/enc-enc/notes.txt").unwrap();
        store.put(&stray, bytes::Bytes::from("x")).await.unwrap();

        let found = cached_embeddings(&store).await.unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[&a],
            [CaptionHash::of("rose"), CaptionHash::of("lily")].into()
        );
        assert_eq!(found[&b], [CaptionHash::of("rose")].into());
        assert_eq!(encoded_captions(&store, &a).await.unwrap(), found[&a]);
    }
}
