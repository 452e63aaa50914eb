//! What happened to each file of a batch, and the reply built from it.

use std::time::Duration;

use ssdit_dataset::Bucket;
use ssdit_proto::v1::{IngestReply, IngestedSample, Rejection};

/// What happened to one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Stored as a new sample and announced.
    Accepted {
        /// Content hash of the original bytes.
        sample_id: String,
        /// The bucket it was resized to.
        bucket: Bucket,
    },
    /// A sample with the same content was already in the dataset (or earlier
    /// in this batch): nothing was written or published.
    AlreadyPresent { sample_id: String },
    /// Refused and recorded in the dataset's rejects list.
    Rejected { reason: String },
}

/// One input file's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    /// Position in the batch.
    pub(crate) index: usize,
    /// The file, relative to the folder or prefix, or the client's file name.
    pub file: String,
    pub status: FileStatus,
}

/// The outcome of one ingest call, one entry per input file in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    pub dataset: String,
    pub files: Vec<FileOutcome>,
    /// Files that were neither images nor caption files (not ingested, not
    /// rejected: a folder's `README`, `labels.csv`…).
    pub skipped: usize,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl IngestReport {
    fn count(&self, f: impl Fn(&FileStatus) -> bool) -> usize {
        self.files.iter().filter(|o| f(&o.status)).count()
    }

    /// New samples.
    pub fn accepted(&self) -> usize {
        self.count(|s| matches!(s, FileStatus::Accepted { .. }))
    }

    /// Files whose sample already existed.
    pub fn already_present(&self) -> usize {
        self.count(|s| matches!(s, FileStatus::AlreadyPresent { .. }))
    }

    /// Refused files.
    pub fn rejected(&self) -> usize {
        self.count(|s| matches!(s, FileStatus::Rejected { .. }))
    }

    /// What became of `file` (as the report names it), if the call had it.
    pub fn status_of(&self, file: &str) -> Option<&FileStatus> {
        self.files
            .iter()
            .find(|o| o.file == file)
            .map(|o| &o.status)
    }

    /// The gRPC reply: every sample (new or already present), then every rejection.
    pub fn to_reply(&self) -> IngestReply {
        let mut reply = IngestReply {
            dataset: self.dataset.clone(),
            ..IngestReply::default()
        };
        for outcome in &self.files {
            let file_name = outcome.file.clone();
            match &outcome.status {
                FileStatus::Accepted { sample_id, .. } => reply.samples.push(IngestedSample {
                    file_name,
                    sample_id: sample_id.clone(),
                    already_present: false,
                }),
                FileStatus::AlreadyPresent { sample_id } => reply.samples.push(IngestedSample {
                    file_name,
                    sample_id: sample_id.clone(),
                    already_present: true,
                }),
                FileStatus::Rejected { reason } => reply.rejected.push(Rejection {
                    file_name,
                    reason: reason.clone(),
                }),
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lists_every_file_and_counts_add_up() {
        let outcome = |index, file: &str, status| FileOutcome {
            index,
            file: file.into(),
            status,
        };
        let report = IngestReport {
            dataset: "flowers".into(),
            files: vec![
                outcome(
                    0,
                    "a.png",
                    FileStatus::Accepted {
                        sample_id: "aa".into(),
                        bucket: Bucket {
                            width: 448,
                            height: 448,
                        },
                    },
                ),
                outcome(
                    1,
                    "b.png",
                    FileStatus::AlreadyPresent {
                        sample_id: "bb".into(),
                    },
                ),
                outcome(
                    2,
                    "c.png",
                    FileStatus::Rejected {
                        reason: "file is empty (0 bytes)".into(),
                    },
                ),
            ],
            skipped: 1,
            elapsed: Duration::from_millis(5),
        };
        assert_eq!(
            (
                report.accepted(),
                report.already_present(),
                report.rejected()
            ),
            (1, 1, 1)
        );
        assert_eq!(
            report.status_of("b.png"),
            Some(&FileStatus::AlreadyPresent {
                sample_id: "bb".into()
            })
        );
        assert_eq!(report.status_of("d.png"), None);
        let reply = report.to_reply();
        assert_eq!(reply.dataset, "flowers");
        assert_eq!(reply.samples.len(), 2);
        assert!(!reply.samples[0].already_present && reply.samples[1].already_present);
        assert_eq!(reply.rejected[0].file_name, "c.png");
        assert_eq!(reply.rejected[0].reason, "file is empty (0 bytes)");
    }
}
