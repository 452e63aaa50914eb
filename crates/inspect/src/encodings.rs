//! Which encodings hold a dataset's latents and embeddings, found by listing
//! the cache: the tools work on whatever the encoders (or an import) wrote,
//! and ask the user to choose only when there is a choice.

use std::collections::{BTreeMap, BTreeSet};

use ssdit_dataset::{Bucket, Dataset, SampleRecord, TextEncoding, cached_embeddings};
use ssdit_store::{Key, Store, layout};

use crate::{Error, Result};

/// The folder above `key` (`a/b/c` → `a/b`).
fn parent(key: &Key) -> Result<Key> {
    let (parent, _) = key
        .as_str()
        .rsplit_once('/')
        .ok_or_else(|| Error::Input(format!("key {key} has no parent")))?;
    Ok(Key::parse(parent)?)
}

/// VAE fingerprints with latents of `samples` (at each sample's bucket), and how many.
pub async fn latent_fingerprints(
    store: &Store,
    samples: &[SampleRecord],
) -> Result<BTreeMap<String, usize>> {
    let root = parent(&layout::latents_prefix("x")?)?;
    let wanted: BTreeMap<&str, Bucket> =
        samples.iter().map(|s| (s.id.as_str(), s.bucket)).collect();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for object in store.list(&root).await? {
        // cache/latents/vae-<fp>/<w>x<h>/<id>.safetensors
        let segments: Vec<&str> = object.key.as_str().split('/').collect();
        let [_, _, vae, size, file] = segments.as_slice() else {
            continue;
        };
        let (Some(fp), Some(id)) = (vae.strip_prefix("vae-"), file.strip_suffix(".safetensors"))
        else {
            continue;
        };
        if wanted.get(id).is_some_and(|b| b.to_string() == *size) {
            found
                .entry(fp.to_string())
                .or_default()
                .insert(id.to_string());
        }
    }
    Ok(found.into_iter().map(|(fp, ids)| (fp, ids.len())).collect())
}

/// Text encodings with embeddings of the current captions of `samples` (of
/// `dataset`), and of how many samples.
pub async fn text_encodings(
    dataset: &Dataset,
    samples: &[SampleRecord],
) -> Result<Vec<(TextEncoding, usize)>> {
    let captions = dataset.caption_hashes(samples).await?;
    Ok(cached_embeddings(dataset.store())
        .await?
        .into_iter()
        .filter_map(|(encoding, encoded)| {
            let n = captions.values().filter(|c| encoded.contains(*c)).count();
            (n > 0).then_some((encoding, n))
        })
        .collect())
}

/// The one VAE fingerprint to use: `chosen` if given (it must hold latents),
/// else the only one found.
pub fn choose_vae(found: &BTreeMap<String, usize>, chosen: Option<&str>) -> Result<String> {
    let listing = || {
        found
            .iter()
            .map(|(fp, n)| format!("{fp} ({n} samples)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match chosen {
        Some(fp) if found.contains_key(fp) => Ok(fp.to_string()),
        Some(fp) if found.is_empty() => Err(Error::Input(format!(
            "no latents of VAE {fp}: the dataset has no latents at all"
        ))),
        Some(fp) => Err(Error::Input(format!(
            "no latents of VAE {fp} for this dataset; there are latents of {}",
            listing()
        ))),
        None => match found.len() {
            1 => Ok(found.keys().next().expect("one entry").clone()),
            0 => Err(Error::Input(
                "the dataset has no latents yet (a vae-encoder writes them as samples are \
                 ingested; `ssdit import seed-cache` brings the seed's)"
                    .into(),
            )),
            _ => Err(Error::Input(format!(
                "latents of several VAEs exist: {}; choose one with --latents",
                listing()
            ))),
        },
    }
}

/// The one text encoding to use: the only one found, or the one whose
/// encoder fingerprint is `chosen`.
pub fn choose_text(found: &[(TextEncoding, usize)], chosen: Option<&str>) -> Result<TextEncoding> {
    let candidates: Vec<&TextEncoding> = found
        .iter()
        .map(|(t, _)| t)
        .filter(|t| chosen.is_none_or(|c| t.encoder == c))
        .collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Input(match chosen {
            Some(c) => format!("no caption embeddings of text encoder {c} for this dataset"),
            None => "the dataset has no caption embeddings yet (a text-encoder writes them as \
                 samples are ingested; `ssdit import seed-cache` brings the seed's)"
                .into(),
        })),
        several => Err(Error::Input(format!(
            "caption embeddings of several encodings exist: {}; choose one with --text-encoder",
            several
                .iter()
                .map(|t| format!(
                    "{} (tokenizer {}, {} tokens)",
                    t.encoder, t.tokenizer, t.max_length
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
