//! Every key the system uses, in one place.
//!
//! ```text
//! datasets/<dataset>/images/<sample_id>.<ext>          the accepted image, as uploaded
//! datasets/<dataset>/captions/<sample_id>.txt          its caption
//! datasets/<dataset>/samples/<sample_id>.json          its record (written last)
//! datasets/<dataset>/manifest.json                     the dataset's manifest
//! datasets/<dataset>/rejects/<reject_id>.json          one record per rejected input
//! cache/latents/vae-<vae_fp>/<w>x<h>/<sample_id>.safetensors
//! cache/embeddings/enc-<enc_fp>/tok-<tok_fp>/len-<max_length>/<caption_hash>.safetensors
//! runs/<run>/run.json                                  run spec and state
//! runs/<run>/checkpoints/step-<step>/<file>            one folder per checkpoint
//! runs/<run>/metrics.csv                               per-step metrics
//! runs/<run>/plots/<name>                              loss curves…
//! runs/<run>/samples/step-<step>-<index>.png           images sampled during training
//! ```
//!
//! Samples are keyed by the content hash of their image, so re-ingesting is a no-op. Caches
//! live outside datasets and runs: a latent's key holds the VAE fingerprint and the bucket
//! size, an embedding's key the encoder and tokenizer fingerprints, the max length and the
//! hash of the caption text it encodes (not the sample id), so changing any of them (an
//! edited caption included) re-encodes exactly what changed, identical captions share one
//! embedding, and a cache is shared safely.
//! Steps are zero-padded to 10 digits so that keys sort in step order.
//!
//! Every component is validated ([`crate::key`]): no input can escape its prefix.

use crate::error::Result;
use crate::key::{Key, validate_id, validate_name, validate_segment};

const DATASETS: &str = "datasets";
const CACHE: &str = "cache";
const RUNS: &str = "runs";
const EMBEDDINGS: &str = "embeddings";
const ENCODER_TAG: &str = "enc-";
const TOKENIZER_TAG: &str = "tok-";
const LENGTH_TAG: &str = "len-";
const TENSORS_EXT: &str = ".safetensors";

/// Digits of a zero-padded step number in a key (`step-0000000042`).
pub const STEP_DIGITS: usize = 10;

fn dataset(name: &str) -> Result<String> {
    validate_name("dataset name", name)?;
    Ok(name.to_owned())
}

fn run(id: &str) -> Result<String> {
    validate_name("run id", id)?;
    Ok(id.to_owned())
}

fn sample(id: &str) -> Result<&str> {
    validate_id("sample id", id)?;
    Ok(id)
}

/// `datasets/<dataset>`: everything of one dataset.
pub fn dataset_root(name: &str) -> Result<Key> {
    Key::from_segments(&[DATASETS, &dataset(name)?])
}

/// `datasets/<dataset>/images`: the prefix of its images.
pub fn images_prefix(name: &str) -> Result<Key> {
    dataset_root(name)?.child("images")
}

/// `datasets/<dataset>/images/<sample_id>.<ext>`; `ext` is the detected format
/// (`png`, `jpg`, `webp`…: 1–8 lowercase letters or digits).
pub fn image(name: &str, sample_id: &str, ext: &str) -> Result<Key> {
    let ext_ok = !ext.is_empty()
        && ext.len() <= 8
        && ext
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ext_ok {
        return Err(crate::Error::InvalidComponent {
            what: "image extension",
            value: ext.chars().take(16).collect(),
            reason: "1 to 8 lowercase ASCII letters or digits",
        });
    }
    images_prefix(name)?.child(&format!("{}.{ext}", sample(sample_id)?))
}

/// `datasets/<dataset>/captions/<sample_id>.txt`.
pub fn caption(name: &str, sample_id: &str) -> Result<Key> {
    dataset_root(name)?
        .child("captions")?
        .child(&format!("{}.txt", sample(sample_id)?))
}

/// `datasets/<dataset>/samples`: the prefix listing a dataset's sample records.
pub fn samples_prefix(name: &str) -> Result<Key> {
    dataset_root(name)?.child("samples")
}

/// `datasets/<dataset>/samples/<sample_id>.json`: one accepted sample's record, written
/// after its image and caption, so a record's presence means the sample is complete.
pub fn sample_record(name: &str, sample_id: &str) -> Result<Key> {
    samples_prefix(name)?.child(&format!("{}.json", sample(sample_id)?))
}

/// `datasets/<dataset>/manifest.json`.
pub fn manifest(name: &str) -> Result<Key> {
    dataset_root(name)?.child("manifest.json")
}

/// `datasets/<dataset>/rejects`: the prefix listing a dataset's rejected inputs.
pub fn rejects_prefix(name: &str) -> Result<Key> {
    dataset_root(name)?.child("rejects")
}

/// `datasets/<dataset>/rejects/<reject_id>.json`: one rejected input. `reject_id` is an id
/// the caller derives (e.g. a hash of the file name and stage), so a rejection recorded
/// twice lands on the same key.
pub fn reject(name: &str, reject_id: &str) -> Result<Key> {
    validate_id("reject id", reject_id)?;
    rejects_prefix(name)?.child(&format!("{reject_id}.json"))
}

/// `cache/latents/vae-<vae_fp>`: the prefix listing every latent of one VAE.
pub fn latents_prefix(vae_fingerprint: &str) -> Result<Key> {
    validate_id("vae fingerprint", vae_fingerprint)?;
    Key::from_segments(&[CACHE, "latents", &format!("vae-{vae_fingerprint}")])
}

/// `cache/latents/vae-<vae_fp>/<w>x<h>/<sample_id>.safetensors`: a sample's VAE latent for
/// one VAE and one bucket size.
pub fn latent(sample_id: &str, vae_fingerprint: &str, width: u32, height: u32) -> Result<Key> {
    latents_prefix(vae_fingerprint)?
        .child(&format!("{width}x{height}"))?
        .child(&format!("{}{TENSORS_EXT}", sample(sample_id)?))
}

/// `cache/embeddings`: the prefix listing every caption embedding of every encoding.
pub fn embeddings_root() -> Result<Key> {
    Key::from_segments(&[CACHE, EMBEDDINGS])
}

/// `cache/embeddings/enc-<enc_fp>/tok-<tok_fp>/len-<max_length>`: the prefix listing every
/// embedding of one encoder, tokenizer and max length.
pub fn embeddings_prefix(
    encoder_fingerprint: &str,
    tokenizer_fingerprint: &str,
    max_length: u32,
) -> Result<Key> {
    validate_id("text encoder fingerprint", encoder_fingerprint)?;
    validate_id("tokenizer fingerprint", tokenizer_fingerprint)?;
    Key::from_segments(&[
        CACHE,
        EMBEDDINGS,
        &format!("{ENCODER_TAG}{encoder_fingerprint}"),
        &format!("{TOKENIZER_TAG}{tokenizer_fingerprint}"),
        &format!("{LENGTH_TAG}{max_length}"),
    ])
}

/// `cache/embeddings/enc-<enc_fp>/tok-<tok_fp>/len-<max_length>/<caption_hash>.safetensors`:
/// the embedding of one caption text (`caption_hash` identifies the text, not the sample)
/// for one encoder, tokenizer and max length.
pub fn embedding(
    caption_hash: &str,
    encoder_fingerprint: &str,
    tokenizer_fingerprint: &str,
    max_length: u32,
) -> Result<Key> {
    validate_id("caption hash", caption_hash)?;
    embeddings_prefix(encoder_fingerprint, tokenizer_fingerprint, max_length)?
        .child(&format!("{caption_hash}{TENSORS_EXT}"))
}

/// The components of an [`embedding`] key, read back from a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingEntry<'a> {
    pub encoder_fingerprint: &'a str,
    pub tokenizer_fingerprint: &'a str,
    pub max_length: u32,
    pub caption_hash: &'a str,
}

/// The components of `key` if it is an [`embedding`] key, `None` for any other key: the one
/// parser of the embedding layout, for everything that lists the cache.
pub fn parse_embedding(key: &Key) -> Option<EmbeddingEntry<'_>> {
    let segments: Vec<&str> = key.as_str().split('/').collect();
    let [CACHE, EMBEDDINGS, encoder, tokenizer, length, file] = segments.as_slice() else {
        return None;
    };
    Some(EmbeddingEntry {
        encoder_fingerprint: encoder.strip_prefix(ENCODER_TAG)?,
        tokenizer_fingerprint: tokenizer.strip_prefix(TOKENIZER_TAG)?,
        max_length: length.strip_prefix(LENGTH_TAG)?.parse().ok()?,
        caption_hash: file.strip_suffix(TENSORS_EXT)?,
    })
}

/// `runs/<run>`: everything of one training run.
pub fn run_root(run_id: &str) -> Result<Key> {
    Key::from_segments(&[RUNS, &run(run_id)?])
}

/// `runs/<run>/run.json`: the run's spec and state.
pub fn run_record(run_id: &str) -> Result<Key> {
    run_root(run_id)?.child("run.json")
}

/// `runs/<run>/checkpoints`: the prefix listing a run's checkpoints.
pub fn checkpoints_prefix(run_id: &str) -> Result<Key> {
    run_root(run_id)?.child("checkpoints")
}

/// `step-<step>`, zero-padded (`step-0000000042`): how keys name a step.
pub fn step_name(step: u64) -> String {
    format!("step-{step:0STEP_DIGITS$}")
}

/// `runs/<run>/checkpoints/step-<step>`: the folder of one checkpoint.
pub fn checkpoint_dir(run_id: &str, step: u64) -> Result<Key> {
    checkpoints_prefix(run_id)?.child(&step_name(step))
}

/// `runs/<run>/checkpoints/step-<step>/<file>`: one file of a checkpoint (`model.safetensors`,
/// `ema.safetensors`, `optimizer.safetensors`, `state.json`…).
pub fn checkpoint_file(run_id: &str, step: u64, file: &str) -> Result<Key> {
    validate_segment("checkpoint file", file)?;
    checkpoint_dir(run_id, step)?.child(file)
}

/// The step of a key under a run's checkpoints (`…/checkpoints/step-<step>/…`), if it is
/// one: used to find the newest checkpoint by listing.
pub fn checkpoint_step(key: &Key) -> Option<u64> {
    let mut segments = key.as_str().split('/');
    segments.find(|s| *s == "checkpoints")?;
    let digits = segments.next()?.strip_prefix("step-")?;
    (digits.len() == STEP_DIGITS).then(|| digits.parse().ok())?
}

/// `runs/<run>/metrics.csv`.
pub fn metrics(run_id: &str) -> Result<Key> {
    run_root(run_id)?.child("metrics.csv")
}

/// `runs/<run>/plots/<name>` (`loss.png`…).
pub fn plot(run_id: &str, name: &str) -> Result<Key> {
    validate_segment("plot name", name)?;
    run_root(run_id)?.child("plots")?.child(name)
}

/// `runs/<run>/samples/step-<step>-<index>.png`: an image sampled during training.
pub fn training_sample(run_id: &str, step: u64, index: u32) -> Result<Key> {
    run_root(run_id)?
        .child("samples")?
        .child(&format!("{}-{index:03}.png", step_name(step)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(
            image("flowers", ID, "png").unwrap().as_str(),
            format!("datasets/flowers/images/{ID}.png")
        );
        assert_eq!(
            caption("flowers", ID).unwrap().as_str(),
            format!("datasets/flowers/captions/{ID}.txt")
        );
        assert_eq!(
            manifest("flowers").unwrap().as_str(),
            "datasets/flowers/manifest.json"
        );
        assert_eq!(
            latent(ID, "vaefp", 448, 384).unwrap().as_str(),
            format!("cache/latents/vae-vaefp/448x384/{ID}.safetensors")
        );
        assert_eq!(
            embedding(ID, "enc", "tok", 128).unwrap().as_str(),
            format!("cache/embeddings/enc-enc/tok-tok/len-128/{ID}.safetensors")
        );
        assert_eq!(
            checkpoint_file("run-1", 1500, "model.safetensors")
                .unwrap()
                .as_str(),
            "runs/run-1/checkpoints/step-0000001500/model.safetensors"
        );
        assert_eq!(
            training_sample("run-1", 20, 3).unwrap().as_str(),
            "runs/run-1/samples/step-0000000020-003.png"
        );
        assert_eq!(metrics("run-1").unwrap().as_str(), "runs/run-1/metrics.csv");
        assert_eq!(
            plot("run-1", "loss.png").unwrap().as_str(),
            "runs/run-1/plots/loss.png"
        );
        assert_eq!(run_record("run-1").unwrap().as_str(), "runs/run-1/run.json");
        assert_eq!(
            reject("flowers", "abc").unwrap().as_str(),
            "datasets/flowers/rejects/abc.json"
        );
    }

    #[test]
    fn cache_keys_change_with_every_fingerprint_and_size() {
        let base = latent(ID, "a", 448, 448).unwrap();
        assert_ne!(base, latent(ID, "b", 448, 448).unwrap());
        assert_ne!(base, latent(ID, "a", 448, 384).unwrap());
        let base = embedding(ID, "e", "t", 128).unwrap();
        assert_ne!(base, embedding(ID, "f", "t", 128).unwrap());
        assert_ne!(base, embedding(ID, "e", "u", 128).unwrap());
        assert_ne!(base, embedding(ID, "e", "t", 256).unwrap());
    }

    #[test]
    fn hostile_components_are_rejected() {
        for name in ["..", "../x", "/abs", "a/b", "", "a\0", ".hidden", "x\\y"] {
            assert!(dataset_root(name).is_err(), "dataset {name:?}");
            assert!(run_root(name).is_err(), "run {name:?}");
            assert!(image("ok", name, "png").is_err(), "sample {name:?}");
            assert!(latent("ok", name, 1, 1).is_err(), "fingerprint {name:?}");
            assert!(checkpoint_file("ok", 1, name).is_err(), "file {name:?}");
            assert!(plot("ok", name).is_err(), "plot {name:?}");
        }
        assert!(image("ok", ID, "../png").is_err());
        assert!(image("ok", ID, "PNG").is_err());
        assert!(dataset_root(&"d".repeat(65)).is_err());
    }

    #[test]
    fn every_key_stays_under_its_root() {
        let root = dataset_root("flowers").unwrap();
        for key in [
            image("flowers", ID, "jpg").unwrap(),
            caption("flowers", ID).unwrap(),
            manifest("flowers").unwrap(),
            reject("flowers", "r1").unwrap(),
        ] {
            assert!(key.starts_with(&root), "{key}");
        }
        let root = run_root("r").unwrap();
        for key in [
            checkpoint_file("r", 1, "state.json").unwrap(),
            metrics("r").unwrap(),
            plot("r", "p.png").unwrap(),
            training_sample("r", 1, 1).unwrap(),
        ] {
            assert!(key.starts_with(&root), "{key}");
        }
    }

    #[test]
    fn records_and_cache_entries_lie_under_their_prefixes() {
        let record = sample_record("flowers", ID).unwrap();
        assert_eq!(
            record.as_str(),
            format!("datasets/flowers/samples/{ID}.json")
        );
        assert!(record.starts_with(&samples_prefix("flowers").unwrap()));
        assert!(
            latent(ID, "v", 448, 448)
                .unwrap()
                .starts_with(&latents_prefix("v").unwrap())
        );
        assert!(
            !latent(ID, "v2", 448, 448)
                .unwrap()
                .starts_with(&latents_prefix("v").unwrap())
        );
        let prefix = embeddings_prefix("e", "t", 128).unwrap();
        assert!(embedding(ID, "e", "t", 128).unwrap().starts_with(&prefix));
        assert!(!embedding(ID, "e", "t", 64).unwrap().starts_with(&prefix));
        assert!(latents_prefix("../x").is_err());
        assert!(embeddings_prefix("e", "t/..", 1).is_err());
        assert!(sample_record("flowers", "..").is_err());
    }

    #[test]
    fn embedding_keys_parse_back_and_nothing_else_does() {
        let key = embedding(ID, "enc", "tok", 128).unwrap();
        assert_eq!(
            parse_embedding(&key),
            Some(EmbeddingEntry {
                encoder_fingerprint: "enc",
                tokenizer_fingerprint: "tok",
                max_length: 128,
                caption_hash: ID,
            })
        );
        assert!(key.starts_with(&embeddings_root().unwrap()));
        for other in [
            latent(ID, "enc", 64, 64).unwrap(),
            embeddings_prefix("enc", "tok", 128).unwrap(),
            Key::parse("cache/embeddings/enc-e/tok-t/len-x/h.safetensors").unwrap(),
            Key::parse("cache/embeddings/e/tok-t/len-1/h.safetensors").unwrap(),
            Key::parse("cache/embeddings/enc-e/tok-t/len-1/h.json").unwrap(),
            Key::parse("cache/embeddings/enc-e/tok-t/len-1/x/h.safetensors").unwrap(),
        ] {
            assert_eq!(parse_embedding(&other), None, "{other}");
        }
        assert!(embedding("../x", "e", "t", 1).is_err());
    }

    #[test]
    fn checkpoint_steps_parse_back() {
        let key = checkpoint_file("r", 42, "model.safetensors").unwrap();
        assert_eq!(checkpoint_step(&key), Some(42));
        assert_eq!(
            checkpoint_step(&checkpoint_dir("r", u64::from(u32::MAX)).unwrap()),
            Some(4294967295)
        );
        assert_eq!(checkpoint_step(&metrics("r").unwrap()), None);
        assert_eq!(
            checkpoint_step(&Key::parse("runs/r/checkpoints/step-12").unwrap()),
            None
        );
    }
}
