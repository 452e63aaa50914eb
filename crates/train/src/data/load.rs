//! The samples a run trains on: checked against the manifest, then read from
//! the store into RAM (or read per batch when streaming).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use ssdit_dataset::{Bucket, ReadySample, TrainingManifest};
use ssdit_store::{Key, Store, TensorFile};
use tokio::runtime::Handle;

use crate::{Error, Result};

/// Names a latent tensor may have in its file (the seed's cache used
/// `latents`); a file holding exactly one tensor is read whatever its name.
pub const LATENT_TENSORS: [&str; 2] = ["latents", "latent"];

/// Names a caption embedding may have in its file (the seed's cache used
/// `text_embeds`); a file holding exactly one tensor is read whatever its name.
pub const EMBEDDING_TENSORS: [&str; 3] = ["text_embeds", "embedding", "embeddings"];

/// Tensor files read concurrently.
const READ_CONCURRENCY: usize = 16;

/// A sample's identity and where its tensors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleMeta {
    pub id: String,
    pub bucket: Bucket,
    pub latent_key: Key,
    pub embedding_key: Key,
}

/// A sample's latent `[C, h, w]` (cache space) and caption embedding `[L, D]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTensors {
    pub latent: Vec<f32>,
    pub latent_shape: [usize; 3],
    pub embedding: Vec<f32>,
    pub embedding_shape: [usize; 2],
}

/// Fails unless at least one sample is ready; logs every missing one with its
/// reason (the manifest says why).
pub fn check_manifest(manifest: &TrainingManifest) -> Result<()> {
    for missing in &manifest.missing {
        tracing::warn!(
            dataset = %manifest.dataset,
            sample_id = %missing.id,
            source = %missing.source,
            reason = %missing.reason,
            "sample not ready; training without it"
        );
    }
    if manifest.ready.is_empty() {
        return Err(Error::NothingReady {
            dataset: manifest.dataset.clone(),
            missing: manifest.missing.len(),
            first: manifest
                .missing
                .first()
                .map(|m| format!("; e.g. {}: {}", m.source, m.reason))
                .unwrap_or_default(),
        });
    }
    tracing::info!(
        dataset = %manifest.dataset,
        ready = manifest.ready.len(),
        missing = manifest.missing.len(),
        "training manifest checked"
    );
    Ok(())
}

/// The samples of a run, in manifest order, with their tensors in RAM or
/// read from the store on demand.
#[derive(Debug)]
pub struct TrainingSet {
    samples: Vec<SampleMeta>,
    cache: Option<Vec<SampleTensors>>,
    store: Store,
    runtime: Handle,
    latent_channels: usize,
    text_shape: [usize; 2],
}

impl TrainingSet {
    /// Reads the ready samples of `manifest`: all of them into RAM when
    /// `in_ram`, else only the first (to learn the shapes). Every tensor read
    /// is checked: one latent per bucket shape, one embedding shape for all.
    pub fn load(
        store: &Store,
        runtime: &Handle,
        manifest: &TrainingManifest,
        in_ram: bool,
    ) -> Result<Self> {
        check_manifest(manifest)?;
        let samples = manifest
            .ready
            .iter()
            .map(meta)
            .collect::<Result<Vec<_>>>()?;
        let started = std::time::Instant::now();
        let loaded = if in_ram {
            runtime.block_on(read_all(store, &samples))?
        } else {
            vec![runtime.block_on(read_sample(store, &samples[0]))?]
        };
        let first = &loaded[0];
        let mut set = Self {
            latent_channels: first.latent_shape[0],
            text_shape: first.embedding_shape,
            samples,
            cache: None,
            store: store.clone(),
            runtime: runtime.clone(),
        };
        if in_ram {
            let mut bucket_shapes = BTreeMap::new();
            for (meta, tensors) in set.samples.iter().zip(&loaded) {
                set.check(meta, tensors, &mut bucket_shapes)?;
            }
            set.cache = Some(loaded);
        }
        tracing::info!(
            samples = set.len(),
            in_ram,
            channels = set.latent_channels,
            text_tokens = set.text_shape[0],
            text_dim = set.text_shape[1],
            ms = started.elapsed().as_millis() as u64,
            "training data loaded"
        );
        Ok(set)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples (never true for a loaded set).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, in manifest order.
    pub fn samples(&self) -> &[SampleMeta] {
        &self.samples
    }

    /// Latent channels of every sample.
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// `[tokens, width]` of every caption embedding.
    pub fn text_shape(&self) -> [usize; 2] {
        self.text_shape
    }

    /// Whether the tensors are held in RAM.
    pub fn in_ram(&self) -> bool {
        self.cache.is_some()
    }

    /// Sample indices grouped by bucket (a bucket is one latent size).
    pub fn buckets(
        &self,
        indices: impl IntoIterator<Item = usize>,
    ) -> BTreeMap<Bucket, Vec<usize>> {
        let mut buckets: BTreeMap<Bucket, Vec<usize>> = BTreeMap::new();
        for index in indices {
            buckets
                .entry(self.samples[index].bucket)
                .or_default()
                .push(index);
        }
        buckets
    }

    /// The tensors of the samples at `indices`, in order.
    pub fn tensors(&self, indices: &[usize]) -> Result<Vec<SampleTensors>> {
        match &self.cache {
            Some(cache) => Ok(indices.iter().map(|&i| cache[i].clone()).collect()),
            None => {
                let metas: Vec<SampleMeta> =
                    indices.iter().map(|&i| self.samples[i].clone()).collect();
                let loaded = self.runtime.block_on(read_all(&self.store, &metas))?;
                let mut shapes = BTreeMap::new();
                for (meta, tensors) in metas.iter().zip(&loaded) {
                    self.check(meta, tensors, &mut shapes)?;
                }
                Ok(loaded)
            }
        }
    }

    /// Checks one sample against the set's shapes and its bucket's.
    fn check(
        &self,
        meta: &SampleMeta,
        tensors: &SampleTensors,
        bucket_shapes: &mut BTreeMap<Bucket, [usize; 3]>,
    ) -> Result<()> {
        let fail = |what, key: &Key, reason: String| Error::SampleData {
            sample_id: meta.id.clone(),
            what,
            key: key.to_string(),
            reason,
        };
        if tensors.embedding_shape != self.text_shape {
            return Err(fail(
                "embedding",
                &meta.embedding_key,
                format!(
                    "shape {:?}, the other captions have {:?}",
                    tensors.embedding_shape, self.text_shape
                ),
            ));
        }
        let shape = tensors.latent_shape;
        if shape[0] != self.latent_channels {
            return Err(fail(
                "latent",
                &meta.latent_key,
                format!(
                    "{} channels, the other latents have {}",
                    shape[0], self.latent_channels
                ),
            ));
        }
        let expected = *bucket_shapes.entry(meta.bucket).or_insert(shape);
        if expected != shape {
            return Err(fail(
                "latent",
                &meta.latent_key,
                format!(
                    "shape {shape:?}, other latents of bucket {} have {expected:?}",
                    meta.bucket
                ),
            ));
        }
        Ok(())
    }
}

fn meta(sample: &ReadySample) -> Result<SampleMeta> {
    Ok(SampleMeta {
        id: sample.id.clone(),
        bucket: sample.bucket,
        latent_key: Key::parse(&sample.latent_key)?,
        embedding_key: Key::parse(&sample.embedding_key)?,
    })
}

async fn read_all(store: &Store, samples: &[SampleMeta]) -> Result<Vec<SampleTensors>> {
    futures::stream::iter(samples)
        .map(|meta| read_sample(store, meta))
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

async fn read_sample(store: &Store, meta: &SampleMeta) -> Result<SampleTensors> {
    let (latent_file, embedding_file) = futures::try_join!(
        store.get_tensors(&meta.latent_key),
        store.get_tensors(&meta.embedding_key)
    )?;
    let (latent, latent_shape) = pick::<3>(&latent_file, &LATENT_TENSORS)
        .map_err(|reason| sample_error(meta, "latent", &meta.latent_key, reason))?;
    let (embedding, embedding_shape) = pick::<2>(&embedding_file, &EMBEDDING_TENSORS)
        .map_err(|reason| sample_error(meta, "embedding", &meta.embedding_key, reason))?;
    if latent.iter().chain(&embedding).any(|v| !v.is_finite()) {
        return Err(sample_error(
            meta,
            "tensors",
            &meta.latent_key,
            "holds NaN or infinite values".into(),
        ));
    }
    Ok(SampleTensors {
        latent,
        latent_shape,
        embedding,
        embedding_shape,
    })
}

fn sample_error(meta: &SampleMeta, what: &'static str, key: &Key, reason: String) -> Error {
    Error::SampleData {
        sample_id: meta.id.clone(),
        what,
        key: key.to_string(),
        reason,
    }
}

/// The tensor called one of `names` (or the file's only tensor) as a rank-`D`
/// array; a leading batch dimension of 1 is dropped.
fn pick<const D: usize>(
    file: &TensorFile,
    names: &[&str],
) -> std::result::Result<(Vec<f32>, [usize; D]), String> {
    let tensors = file.tensors();
    let tensor = names
        .iter()
        .find_map(|name| tensors.get(*name))
        .or_else(|| {
            (tensors.len() == 1)
                .then(|| tensors.values().next())
                .flatten()
        })
        .ok_or_else(|| {
            format!(
                "no tensor named {} (the file has {:?})",
                names.join(" or "),
                tensors.keys().collect::<Vec<_>>()
            )
        })?;
    let shape = match tensor.shape() {
        [1, rest @ ..] if rest.len() == D => rest,
        shape => shape,
    };
    let dims: [usize; D] = shape
        .try_into()
        .map_err(|_| format!("shape {:?} is not of rank {D}", tensor.shape()))?;
    if dims.contains(&0) {
        return Err(format!("shape {dims:?} is empty"));
    }
    Ok((tensor.data().to_vec(), dims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssdit_store::F32Tensor;

    fn file(name: &str, shape: Vec<usize>) -> TensorFile {
        let n = shape.iter().product();
        let mut file = TensorFile::new();
        file.insert(name, F32Tensor::new(vec![0.5; n], shape).unwrap());
        file
    }

    #[test]
    fn picks_tensors_by_name_or_alone_and_drops_a_unit_batch() {
        let (data, shape) =
            pick::<3>(&file("latents", vec![1, 16, 4, 6]), &LATENT_TENSORS).unwrap();
        assert_eq!((data.len(), shape), (384, [16, 4, 6]));
        let (_, shape) = pick::<2>(&file("whatever", vec![8, 32]), &EMBEDDING_TENSORS).unwrap();
        assert_eq!(shape, [8, 32]);
        let err = pick::<3>(&file("latents", vec![16, 4]), &LATENT_TENSORS).unwrap_err();
        assert!(err.contains("rank 3"), "{err}");
        let mut two = file("a", vec![2]);
        two.insert("b", F32Tensor::new(vec![1.0], vec![1]).unwrap());
        let err = pick::<2>(&two, &EMBEDDING_TENSORS).unwrap_err();
        assert!(err.contains("text_embeds"), "{err}");
    }

    #[test]
    fn an_empty_manifest_fails_with_the_first_reason() {
        let manifest = TrainingManifest {
            dataset: "flowers".into(),
            ready: vec![],
            missing: vec![ssdit_dataset::MissingSample {
                id: "a".into(),
                source: "rose.jpg".into(),
                reason: "no latent for VAE v at 448x448".into(),
            }],
        };
        let err = check_manifest(&manifest).unwrap_err().to_string();
        assert!(
            err.contains("flowers") && err.contains("rose.jpg: no latent"),
            "{err}"
        );
    }
}
