//! `ssdit ingest SOURCE --dataset NAME`: a client of a running
//! captioning-ingest server. A local folder is uploaded (a streamed `Ingest`
//! call, see `ssdit_ingest::FolderUpload`); an object-store prefix
//! (`s3://…`, `gs://…`, `az://…`), a `file://` URL, or a folder with
//! `--on-server` is read by the server itself (`IngestUri`). Prints what
//! happened to each file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ssdit_ingest::{FolderUpload, FolderUploadOptions};
use ssdit_proto::v1::ingest_service_client::IngestServiceClient;
use ssdit_proto::v1::{CaptionSource, IngestReply, IngestUriRequest};
use ssdit_server::ServiceName;

use crate::client::ClientArgs;

/// Send images to a running captioning-ingest server.
#[derive(Args)]
pub struct IngestArgs {
    /// A local folder to upload, or a source the server reads itself:
    /// `s3://bucket/prefix`, `gs://…`, `az://…`, `file:///path`.
    source: String,
    /// The dataset the samples join.
    #[arg(long)]
    dataset: String,
    /// Include sub-folders (sub-prefixes).
    #[arg(long)]
    recursive: bool,
    /// Have the server read SOURCE, a folder on the server's machine, instead
    /// of uploading it.
    #[arg(long)]
    on_server: bool,
    /// Send each image's folder name as its category label (uploads; the
    /// server derives labels itself for sources it reads).
    #[arg(long)]
    folder_labels: bool,
    /// Where captions come from, for sources the server reads (uploads use
    /// the server's configured source); default: the server's.
    #[arg(long, value_enum)]
    captions: Option<Captions>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Caption sources a request may name.
#[derive(Clone, Copy, ValueEnum)]
enum Captions {
    /// A `.txt` / `.caption` file beside each image.
    Sidecar,
    /// The vision-language model, with the folder label as a hint.
    Vlm,
    /// The folder name is the caption.
    FolderLabel,
}

impl From<Captions> for CaptionSource {
    fn from(captions: Captions) -> Self {
        match captions {
            Captions::Sidecar => Self::Sidecar,
            Captions::Vlm => Self::Vlm,
            Captions::FolderLabel => Self::FolderLabel,
        }
    }
}

/// Runs `ssdit ingest`.
pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(ingest(args))
}

async fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let server_reads = args.on_server || args.source.contains("://");
    if !server_reads && args.captions.is_some() {
        bail!(
            "--captions applies to sources the server reads (--on-server or a URI); uploads use the server's caption source"
        );
    }
    let channel = args.client.connect(ServiceName::Ingest).await?;
    let mut client = IngestServiceClient::new(channel);
    let reply = if server_reads {
        let request = IngestUriRequest {
            uri: args.source.clone(),
            dataset: args.dataset.clone(),
            recursive: args.recursive,
            caption_source: args.captions.map_or(CaptionSource::Unspecified, Into::into) as i32,
        };
        client
            .ingest_uri(request)
            .await
            .with_context(|| format!("ingesting {}", args.source))?
            .into_inner()
    } else {
        let options = FolderUploadOptions {
            recursive: args.recursive,
            folder_labels: args.folder_labels,
        };
        let upload = FolderUpload::scan(&args.dataset, Path::new(&args.source), options)
            .await
            .with_context(|| format!("listing {}", args.source))?;
        println!(
            "uploading {} files from {} ({} others skipped)",
            upload.files().len(),
            args.source,
            upload.skipped()
        );
        let (stream, failures) = upload.into_stream();
        let reply = client.ingest(stream).await;
        let failures = failures.take();
        if !failures.is_empty() {
            bail!("the upload stopped early: {}", failures.join("; "));
        }
        reply
            .with_context(|| format!("uploading {}", args.source))?
            .into_inner()
    };
    print!("{}", render(&reply));
    Ok(ExitCode::SUCCESS)
}

/// One line per file, then the totals.
fn render(reply: &IngestReply) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut present = 0;
    for sample in &reply.samples {
        let what = if sample.already_present {
            present += 1;
            "present "
        } else {
            "accepted"
        };
        let _ = writeln!(
            out,
            "{what} {} (sample {})",
            sample.file_name, sample.sample_id
        );
    }
    for rejection in &reply.rejected {
        let _ = writeln!(
            out,
            "rejected {}: {}",
            rejection.file_name, rejection.reason
        );
    }
    let _ = writeln!(
        out,
        "dataset {}: {} new, {present} already present, {} rejected",
        reply.dataset,
        reply.samples.len() - present,
        reply.rejected.len()
    );
    out
}
