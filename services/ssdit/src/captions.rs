//! `ssdit captions edit` and `ssdit captions stats`: the caption tools of
//! `ssdit-caption` on a dataset in the object store (`--dataset`, through
//! `ssdit_ingest::captions`) or on a folder of `.txt` / `.caption` files
//! (`--folder`, before ingesting).
//!
//! Caption embeddings are cached by the caption's text, so an edited caption
//! has none until a text encoder encodes it: `edit --apply` on a dataset has
//! that done ([`encode`]: announced on the NATS bus, or encoded in this
//! process with the embedded bus).

mod encode;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use ssdit_caption::{CaptionSet, CaptionStats, Edit, StatsOptions};
use ssdit_core::Config;
use ssdit_data::sidecar::DEFAULT_MAX_CAPTION_BYTES;
use ssdit_dataset::Dataset;
use ssdit_ingest::captions::{DatasetCaptions, edit_rule};

/// Find/replace across captions, and caption statistics.
#[derive(Args)]
pub struct CaptionsArgs {
    #[command(subcommand)]
    command: CaptionsCommand,
}

#[derive(Subcommand)]
enum CaptionsCommand {
    /// Find/replace (literal or regex) across captions: lists every change
    /// (a dry run) and writes only with --apply.
    ///
    /// In a dataset, --apply also has the new captions encoded (embeddings
    /// are cached by caption text): with bus.kind = "nats" the edited samples
    /// are announced to the deployment's text encoders; with the embedded bus
    /// this command encodes them itself with models.text_encoder, so the
    /// dataset stays ready to train. The old captions' embeddings stay in the
    /// cache (other samples may share them).
    Edit(EditArgs),
    /// Length histograms in words and tokens, vocabulary, and the captions
    /// over the word and token limits.
    Stats(StatsArgs),
}

/// Which captions a command works on.
#[derive(Args)]
struct Target {
    /// A dataset in the object store (`store.url` of --config).
    #[arg(long, required_unless_present = "folder", conflicts_with = "folder")]
    dataset: Option<String>,
    /// A folder of `.txt` / `.caption` files instead (not recursive).
    #[arg(long, value_name = "DIR")]
    folder: Option<PathBuf>,
    /// The ssdit configuration file (TOML), for the store URL.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct EditArgs {
    #[command(flatten)]
    target: Target,
    /// Text to find (a regular expression with --regex).
    #[arg(long)]
    find: String,
    /// Replacement; with --regex it may use `$1` / `${name}`.
    #[arg(long)]
    replace: String,
    /// Treat --find as a regular expression.
    #[arg(long)]
    regex: bool,
    /// Write the changes (without it nothing is written).
    #[arg(long)]
    apply: bool,
}

#[derive(Args)]
struct StatsArgs {
    #[command(flatten)]
    target: Target,
    /// A `tokenizer.json` (the text encoder's) for token lengths; without it
    /// only word statistics are shown.
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Captions with more tokens are listed: the text encoder truncates them
    /// (the seed's 128).
    #[arg(long, default_value_t = 128)]
    token_limit: usize,
    /// Captions with more words are listed (the captioning rules' limit).
    #[arg(long, default_value_t = ssdit_caption::MAX_WORDS)]
    max_words: usize,
    /// Most frequent words shown.
    #[arg(long, default_value_t = 30)]
    top_words: usize,
}

/// Captions loaded from a dataset (with the configuration it was found
/// with) or a folder.
enum Loaded {
    Dataset(Box<Config>, Dataset, DatasetCaptions),
    Folder(CaptionSet),
}

impl Loaded {
    async fn load(target: &Target) -> anyhow::Result<Self> {
        if let Some(folder) = &target.folder {
            let (set, rejects) = CaptionSet::load_dir(folder, DEFAULT_MAX_CAPTION_BYTES)
                .with_context(|| format!("reading the captions in {}", folder.display()))?;
            for reject in rejects {
                eprintln!("skipped: {reject}");
            }
            return Ok(Self::Folder(set));
        }
        let name = target
            .dataset
            .as_deref()
            .context("name a --dataset or a --folder")?;
        let env: HashMap<String, String> = std::env::vars().collect();
        let config =
            Config::load(target.config.as_deref(), &env).context("loading the configuration")?;
        let store = ssdit_server::open_store(&config.store)
            .await
            .with_context(|| format!("opening the store {}", config.store.url))?;
        let dataset = Dataset::new(store, name)?;
        let captions = DatasetCaptions::load(&dataset)
            .await
            .with_context(|| format!("reading the captions of dataset {name}"))?;
        for (sample, reason) in &captions.unreadable {
            eprintln!("skipped sample {sample}: {reason}");
        }
        Ok(Self::Dataset(Box::new(config), dataset, captions))
    }

    fn entries(&self) -> Vec<(&str, &str)> {
        match self {
            Self::Dataset(_, _, captions) => captions.entries().collect(),
            Self::Folder(set) => set.entries().collect(),
        }
    }

    /// Writes the edits (in a dataset, then has the new captions encoded);
    /// returns (written, conflicts).
    async fn apply(&mut self, edits: &[Edit]) -> anyhow::Result<(usize, usize)> {
        match self {
            Self::Dataset(config, dataset, captions) => {
                let applied = captions.apply(dataset, edits).await?;
                encode::encode_edited(config, dataset, &applied.written).await?;
                Ok((applied.written.len(), applied.conflicts.len()))
            }
            Self::Folder(set) => Ok((set.apply(edits)?, 0)),
        }
    }
}

/// Runs `ssdit captions …`.
pub fn run(args: CaptionsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match args.command {
            CaptionsCommand::Edit(args) => edit(args).await,
            CaptionsCommand::Stats(args) => stats(args).await,
        }
    })
}

async fn edit(args: EditArgs) -> anyhow::Result<ExitCode> {
    let rule = edit_rule(&args.find, &args.replace, args.regex)?;
    let mut loaded = Loaded::load(&args.target).await?;
    let entries = loaded.entries();
    let total = entries.len();
    let edits = ssdit_caption::plan_edits(entries, &rule);
    print!("{}", ssdit_caption::diff_listing(&edits, total));
    if !args.apply {
        if !edits.is_empty() {
            println!("dry run: nothing written (add --apply to write)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (written, conflicts) = loaded.apply(&edits).await?;
    println!("written: {written}");
    if conflicts > 0 {
        println!("skipped: {conflicts} changed since they were read; run again");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let options = StatsOptions {
        max_words: args.max_words,
        token_limit: args.token_limit,
        top_words: args.top_words,
        ..StatsOptions::default()
    };
    let token_len = match &args.tokenizer {
        Some(path) => Some(token_counter(path, args.token_limit)?),
        None => None,
    };
    let loaded = Loaded::load(&args.target).await?;
    let stats = ssdit_caption::caption_stats(
        loaded.entries(),
        &options,
        token_len.as_ref().map(|f| f as &dyn Fn(&str) -> usize),
    );
    print!("{}", render(&stats, &options));
    Ok(ExitCode::SUCCESS)
}

/// A caption's length in tokens (special tokens included), counted up to
/// four times the limit: enough to tell and rank the captions over it.
fn token_counter(path: &Path, limit: usize) -> anyhow::Result<impl Fn(&str) -> usize> {
    let cap = limit.saturating_mul(4).max(1);
    let tokenizer = ssdit_text::HfTokenizer::from_file(path, cap)
        .with_context(|| format!("loading the tokenizer {}", path.display()))?;
    Ok(move |text: &str| {
        tokenizer
            .encode(&[text.to_owned()])
            .map(|batch| {
                batch
                    .attention_mask
                    .first()
                    .map_or(0, |mask| mask.iter().filter(|&&m| m == 1).count())
            })
            .unwrap_or(0)
    })
}

/// The report: counts, histograms, captions over the limits, vocabulary.
fn render(stats: &CaptionStats, options: &StatsOptions) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "captions: {}", stats.count);
    let w = &stats.words;
    let _ = writeln!(
        out,
        "\nwords per caption (min {}, mean {:.1}, max {}):",
        w.min, w.mean, w.max
    );
    out.push_str(&w.render());
    if let Some(t) = &stats.tokens {
        let _ = writeln!(
            out,
            "\ntokens per caption (min {}, mean {:.1}, max {}; counted up to {}):",
            t.min,
            t.mean,
            t.max,
            options.token_limit.saturating_mul(4)
        );
        out.push_str(&t.render());
        let _ = writeln!(
            out,
            "\nover the token limit of {} (truncated by the text encoder): {}",
            options.token_limit,
            stats.over_token_limit.len()
        );
        for (key, tokens) in &stats.over_token_limit {
            let _ = writeln!(out, "  {key}: {tokens} tokens");
        }
    }
    let _ = writeln!(
        out,
        "\nover {} words: {}",
        options.max_words,
        stats.over_word_limit.len()
    );
    for (key, words) in &stats.over_word_limit {
        let _ = writeln!(out, "  {key}: {words} words");
    }
    let _ = writeln!(
        out,
        "\nvocabulary: {} distinct words; most frequent:",
        stats.distinct_words
    );
    for (word, count) in &stats.vocabulary {
        let _ = writeln!(out, "  {count:>6} {word}");
    }
    out
}
