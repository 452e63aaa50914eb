//! Captions for ssdit training data.
//!
//! - [`rules`]: the seed's caption rules (one line, at most 50 words,
//!   comma-separated phrases in a fixed order) as a checker.
//! - [`clean`]: the cleaner that repairs quotes, markdown, line breaks and
//!   whitespace, and reports what it cannot repair.
//! - [`prompt`]: our botanical captioning instruction and the user turn.
//! - [`labels`]: category labels from folder names or a labels file.
//! - [`vlm`]: captioning through an OpenAI-compatible chat endpoint, with
//!   concurrency and rate limits, timeouts, retries and rule enforcement.
//! - [`edit`], [`stats`], [`set`]: caption-set tools (find/replace with a
//!   dry-run listing, length and vocabulary statistics), which the CLI wraps.

pub mod clean;
pub mod edit;
mod error;
pub mod labels;
pub mod prompt;
pub mod rules;
pub mod set;
pub mod stats;
pub mod vlm;

pub use clean::{Cleaned, Fix, clean, truncate_to_words};
pub use edit::{Edit, EditRule, diff_listing, plan_edits};
pub use error::{Error, Result};
pub use labels::{Labels, label_from_folder};
pub use prompt::{BOTANICAL_INSTRUCTION, load_prompt};
pub use rules::{CaptionRules, Issue, MAX_WORDS, Section, Severity, check};
pub use set::{CaptionFile, CaptionSet};
pub use stats::{CaptionStats, Histogram, StatsOptions, caption_stats};
pub use vlm::{CaptionOutcome, CaptionRequest, Captioner, OverlongPolicy, VlmConfig};
