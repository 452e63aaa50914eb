//! Caption tools on a dataset in the store, for `ssdit captions edit` and
//! `ssdit captions stats`: the logic is `ssdit-caption`'s (rules, dry-run
//! listing, histograms); this module reads a dataset's captions through its
//! sample records and writes edits back, each caption atomically.
//!
//! Captions are keyed by sample id. An edit is written only if the caption
//! in the store is still the one the edit was planned on, so a concurrent
//! change is reported as a conflict instead of being overwritten.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use ssdit_caption::{
    CaptionStats, Edit, EditRule, StatsOptions, caption_stats, diff_listing, plan_edits,
};
use ssdit_dataset::Dataset;
use ssdit_store::Key;

use crate::error::{Error, Result};

/// Captions read at once.
const READ_CONCURRENCY: usize = 16;

/// One sample's caption as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCaption {
    /// The sample's id (the edit and stats key).
    pub sample_id: String,
    /// Where the sample came from (a file name, path or URL).
    pub source: String,
    /// The caption's key.
    pub key: Key,
    /// Its text.
    pub text: String,
}

/// A dataset's captions, sorted by sample id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetCaptions {
    /// The captions that could be read.
    pub captions: Vec<StoredCaption>,
    /// (sample id, reason) of captions that could not be read as UTF-8.
    pub unreadable: Vec<(String, String)>,
}

/// What applying edits did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedEdits {
    /// Sample ids whose caption was rewritten.
    pub written: Vec<String>,
    /// Sample ids skipped because their caption changed since the plan.
    pub conflicts: Vec<String>,
}

impl DatasetCaptions {
    /// Reads every caption of `dataset` (samples without one are left out).
    pub async fn load(dataset: &Dataset) -> Result<Self> {
        let samples = dataset.samples().await?;
        let read: Vec<_> =
            futures::stream::iter(samples.into_iter().filter(|s| s.caption_key.is_some()))
                .map(|record| async move {
                    let key = Key::parse(record.caption_key.as_deref().unwrap_or_default())?;
                    match dataset.caption(&record).await {
                        Ok(text) => Ok(Ok(StoredCaption {
                            sample_id: record.id,
                            source: record.source,
                            key,
                            text: text.unwrap_or_default(),
                        })),
                        Err(error @ ssdit_dataset::Error::Caption { .. }) => {
                            Ok(Err((record.id, error.to_string())))
                        }
                        Err(error) => Err(Error::from(error)),
                    }
                })
                .buffered(READ_CONCURRENCY)
                .try_collect()
                .await?;
        let mut captions = Self::default();
        for entry in read {
            match entry {
                Ok(caption) => captions.captions.push(caption),
                Err(unreadable) => captions.unreadable.push(unreadable),
            }
        }
        captions
            .captions
            .sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
        Ok(captions)
    }

    /// (sample id, caption) pairs, for `ssdit-caption`'s tools.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.captions
            .iter()
            .map(|c| (c.sample_id.as_str(), c.text.as_str()))
    }

    /// The dry run: every caption `rule` changes, nothing written.
    pub fn plan(&self, rule: &EditRule) -> Vec<Edit> {
        plan_edits(self.entries(), rule)
    }

    /// The dry-run listing of `edits` (`-`/`+` lines, inline diff, summary).
    pub fn listing(&self, edits: &[Edit]) -> String {
        diff_listing(edits, self.captions.len())
    }

    /// Length histograms, vocabulary and the captions over the word and token
    /// limits; `token_len` is the text encoder's tokenizer length, if any.
    pub fn stats(
        &self,
        options: &StatsOptions,
        token_len: Option<&dyn Fn(&str) -> usize>,
    ) -> CaptionStats {
        caption_stats(self.entries(), options, token_len)
    }

    /// Writes `edits` (planned on these captions) back to the store, each
    /// caption atomically, and updates this set. A caption that changed in
    /// the store since it was read is left alone and reported as a conflict.
    pub async fn apply(&mut self, dataset: &Dataset, edits: &[Edit]) -> Result<AppliedEdits> {
        let mut applied = AppliedEdits::default();
        for edit in edits {
            let Some(caption) = self.captions.iter_mut().find(|c| c.sample_id == edit.key) else {
                return Err(Error::InvalidEdit(format!(
                    "dataset {} has no caption for sample {}",
                    dataset.name(),
                    edit.key
                )));
            };
            let current = dataset
                .store()
                .get_bounded(&caption.key, ssdit_data::sidecar::DEFAULT_MAX_CAPTION_BYTES)
                .await?;
            if current.as_ref() != edit.before.as_bytes() {
                tracing::warn!(dataset = dataset.name(), sample_id = %edit.key, "caption changed since the edit was planned; skipped");
                applied.conflicts.push(edit.key.clone());
                continue;
            }
            dataset
                .store()
                .put(&caption.key, Bytes::copy_from_slice(edit.after.as_bytes()))
                .await?;
            caption.text.clone_from(&edit.after);
            applied.written.push(edit.key.clone());
        }
        tracing::info!(
            dataset = dataset.name(),
            written = applied.written.len(),
            conflicts = applied.conflicts.len(),
            "caption edits applied"
        );
        Ok(applied)
    }
}

/// Builds a find/replace rule: literal text, or a regular expression whose
/// replacement may use `$1` / `${name}`.
pub fn edit_rule(find: &str, replace: &str, regex: bool) -> Result<EditRule> {
    let rule = if regex {
        EditRule::regex(find, replace)
    } else {
        EditRule::literal(find, replace)
    };
    rule.map_err(|e| Error::InvalidEdit(e.to_string()))
}
