//! Reading one sample's latent or caption embedding from the cache.

use ssdit_store::{F32Tensor, Key, Store};

use crate::{Error, Result};

/// Names a latent tensor has in its file (ours and the seed's).
pub const LATENT_NAMES: [&str; 2] = ["latents", "latent"];
/// Names a caption embedding has in its file.
pub const EMBEDDING_NAMES: [&str; 3] = ["text_embeds", "embedding", "embeddings"];

/// The tensor of `key` named one of `names` (or the file's only tensor),
/// which must have `rank` dimensions.
pub(crate) async fn read(
    store: &Store,
    key: &Key,
    names: &[&str],
    rank: usize,
    sample_id: &str,
    what: &'static str,
) -> Result<F32Tensor> {
    let fail = |reason: String| Error::SampleData {
        sample_id: sample_id.to_string(),
        what,
        key: key.to_string(),
        reason,
    };
    let file = store.get_tensors(key).await?;
    let tensors = file.tensors();
    let tensor = names
        .iter()
        .find_map(|n| tensors.get(*n))
        .or_else(|| {
            (tensors.len() == 1)
                .then(|| tensors.values().next())
                .flatten()
        })
        .ok_or_else(|| {
            fail(format!(
                "no tensor named {} (has {:?})",
                names.join(" or "),
                tensors.keys().collect::<Vec<_>>()
            ))
        })?;
    if tensor.shape().len() != rank {
        return Err(fail(format!(
            "shape {:?} has {} dimensions, expected {rank}",
            tensor.shape(),
            tensor.shape().len()
        )));
    }
    Ok(tensor.clone())
}
