use std::path::Path;

use crate::{Error, Result};

/// A short stable id of a model: the BLAKE3 hash of its files' bytes (config
/// and weights, in the order given). Cache keys include it, so changing a
/// model's weights or configuration re-encodes exactly what it produced.
pub fn fingerprint_files(files: &[&Path]) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        hasher
            .update_reader(std::io::BufReader::new(file))
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(hasher.finalize().to_hex()[..16].to_string())
}
