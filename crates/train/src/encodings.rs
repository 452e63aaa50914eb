//! Which latents and embeddings a run reads: the cache identities of the
//! configured VAE and text encoder.
//!
//! The VAE's fingerprint comes from the codec the trainer loads anyway (to
//! decode validation samples). The text encoder's comes from its files (or
//! the tiny encoder's recipe) without loading its weights; the tokenizer
//! fingerprint and length under it are found in the store, where the
//! text-encoder wrote them (`cache/embeddings/enc-<fp>/tok-<fp>/len-<n>/`).

use ssdit_dataset::{Encodings, TextEncoding, cached_embeddings};
use ssdit_store::Store;
use ssdit_weights::ModelSource;

use crate::{Error, Result, config_error};

/// The `models.text_encoder` value of the tiny seeded encoder.
const TINY: &str = "tiny";

/// The fingerprint of the text encoder `spec` names (`tiny`, a model
/// directory or a hub id), as the text-encoder service computes it.
pub fn text_encoder_fingerprint(spec: &str) -> Result<String> {
    if spec.trim() == TINY {
        return Ok(ssdit_text::tiny::tiny_fingerprint());
    }
    let files = ssdit_text::loader::ModelFiles::resolve(&ModelSource::parse(spec.trim()))
        .map_err(|e| config_error("models.text_encoder", format!("{spec}: {e}")))?;
    files
        .fingerprint()
        .map_err(|e| config_error("models.text_encoder", format!("{spec}: {e}")))
}

/// The text encoding of `encoder` at `max_length` tokens whose embeddings
/// are in the store. Fails when there are none, or when several tokenizers
/// wrote embeddings for this encoder and length (naming them).
pub async fn find_text_encoding(
    store: &Store,
    encoder: &str,
    max_length: u32,
) -> Result<TextEncoding> {
    ssdit_store::key::validate_id("text encoder fingerprint", encoder)?;
    let candidates: Vec<TextEncoding> = cached_embeddings(store)
        .await?
        .into_keys()
        .filter(|found| found.encoder == encoder && found.max_length == max_length)
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(config_error(
            "models.text_encoder",
            format!(
                "no caption embeddings of text encoder {encoder} at {max_length} tokens in the store; run the text encoder first"
            ),
        )),
        several => Err(config_error(
            "models.text_encoder",
            format!(
                "embeddings of text encoder {encoder} at {max_length} tokens exist for several tokenizers ({}); remove the stale ones",
                several
                    .iter()
                    .map(|found| found.tokenizer.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The encodings of a run: the codec's VAE fingerprint and the text
/// encoding found for `text_encoder` at `max_length` tokens.
pub async fn resolve(
    store: &Store,
    vae_fingerprint: &str,
    text_encoder: &str,
    max_length: usize,
) -> Result<Encodings> {
    let max_length = u32::try_from(max_length).map_err(|_| Error::Config {
        key: "encode.max_text_length",
        reason: format!("{max_length} is too large"),
    })?;
    let encoder = text_encoder_fingerprint(text_encoder)?;
    Ok(Encodings {
        vae: vae_fingerprint.to_string(),
        text: find_text_encoding(store, &encoder, max_length).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ssdit_dataset::CaptionHash;

    #[tokio::test]
    async fn finds_the_one_tokenizer_of_an_encoder_and_length() {
        let store = Store::open("memory://").await.unwrap();
        let put = |tok: &'static str, len: u32| {
            let store = store.clone();
            async move {
                let encoding = TextEncoding {
                    encoder: "enc1".into(),
                    tokenizer: tok.into(),
                    max_length: len,
                };
                let key = encoding.embedding_key(&CaptionHash::of("a rose")).unwrap();
                store.put(&key, Bytes::from("x")).await.unwrap();
            }
        };
        assert!(find_text_encoding(&store, "enc1", 32).await.is_err());
        put("tokA", 32).await;
        put("tokB", 64).await;
        let found = find_text_encoding(&store, "enc1", 32).await.unwrap();
        assert_eq!(found.tokenizer, "tokA");
        put("tokC", 32).await;
        let err = find_text_encoding(&store, "enc1", 32)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokA, tokC"), "{err}");
        assert!(find_text_encoding(&store, "../x", 32).await.is_err());
    }

    #[test]
    fn tiny_encoder_fingerprint_needs_no_files() {
        assert_eq!(
            text_encoder_fingerprint("tiny").unwrap(),
            ssdit_text::tiny::tiny_fingerprint()
        );
        assert!(text_encoder_fingerprint("/nonexistent/model").is_err());
    }
}
