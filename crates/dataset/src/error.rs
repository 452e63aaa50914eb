/// Errors reading or writing a dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    #[error("dataset {dataset}: record {key} is not valid: {reason}")]
    Record {
        dataset: String,
        key: String,
        reason: String,
    },
    #[error("dataset {dataset}: caption of sample {sample_id} is not UTF-8")]
    Caption { dataset: String, sample_id: String },
}

/// Result alias for dataset operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
