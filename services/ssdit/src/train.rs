//! `ssdit train …`: start, watch, inspect and stop training runs on a running
//! trainer service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ssdit_proto::v1::trainer_service_client::TrainerServiceClient;
use ssdit_proto::v1::{Run, RunId, RunSpec, RunState, run_progress};
use ssdit_server::ServiceName;

use crate::client::{AuthChannel, ClientArgs};

/// Training runs on a trainer service.
#[derive(Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    command: TrainCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum TrainCommand {
    /// Start a run on an encoded dataset, then follow it with a progress bar
    /// until it ends (Ctrl-C stops watching, not the run).
    Start {
        /// The dataset to train on (see `ssdit dataset status NAME`).
        dataset: String,
        /// The run's id (a plain name); the trainer derives one when absent.
        #[arg(long)]
        run_id: Option<String>,
        /// Training settings over the trainer's `[train]` section: a TOML
        /// file with keys of that section (`epochs = 10`, `lr = 1e-4`, …).
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// One training setting as `key=value` (TOML value), repeatable;
        /// applied after `--settings`. Example: `--set epochs=3`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Resume from this checkpoint key instead of the run's newest.
        #[arg(long, value_name = "KEY")]
        resume_from: Option<String>,
        /// Return once the run is accepted, without watching it.
        #[arg(long)]
        detach: bool,
    },
    /// Follow a run's progress until it ends.
    Watch { run_id: String },
    /// Print a run's state, step and newest checkpoint.
    Status { run_id: String },
    /// Ask a run to stop at the next step boundary (it saves a checkpoint).
    Stop { run_id: String },
}

/// Runs one `ssdit train` command.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let channel = args.client.connect(ServiceName::Trainer).await?;
        let mut trainer = TrainerServiceClient::new(channel);
        match args.command {
            TrainCommand::Start {
                dataset,
                run_id,
                settings,
                set,
                resume_from,
                detach,
            } => {
                let spec = RunSpec {
                    run_id: run_id.unwrap_or_default(),
                    dataset,
                    config_toml: settings_toml(settings.as_deref(), &set)?,
                    resume_from,
                };
                let run = trainer.start_run(spec).await?.into_inner();
                let id = run_id_of(&run);
                match run.total_steps {
                    // The trainer plans the steps once it has read the dataset.
                    0 => println!("run {id} accepted ({})", state_name(run.state)),
                    steps => println!("run {id} started ({steps} steps planned)"),
                }
                if detach {
                    return Ok(ExitCode::SUCCESS);
                }
                watch(&mut trainer, id).await
            }
            TrainCommand::Watch { run_id } => watch(&mut trainer, run_id).await,
            TrainCommand::Status { run_id } => {
                let run = trainer.get_run(RunId { id: run_id }).await?.into_inner();
                print_run(&run);
                Ok(ExitCode::SUCCESS)
            }
            TrainCommand::Stop { run_id } => {
                let run = trainer.stop_run(RunId { id: run_id }).await?.into_inner();
                print_run(&run);
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The `--settings` file and the `--set key=value` pairs as one TOML text.
fn settings_toml(file: Option<&std::path::Path>, set: &[String]) -> anyhow::Result<String> {
    let mut table = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .parse::<toml::Table>()
            .with_context(|| format!("{} is not TOML", path.display()))?,
        None => toml::Table::new(),
    };
    for pair in set {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--set {pair:?}: expected KEY=VALUE");
        };
        let parsed: toml::Table = format!("v = {value}")
            .parse()
            .or_else(|_| format!("v = {:?}", value).parse())
            .with_context(|| format!("--set {pair:?}: the value is not TOML"))?;
        table.insert(key.trim().to_string(), parsed["v"].clone());
    }
    Ok(table.to_string())
}

fn run_id_of(run: &Run) -> String {
    run.id.as_ref().map(|id| id.id.clone()).unwrap_or_default()
}

fn state_name(state: i32) -> &'static str {
    match RunState::try_from(state).unwrap_or(RunState::Unspecified) {
        RunState::Unspecified => "unknown",
        RunState::Pending => "pending",
        RunState::Running => "running",
        RunState::Stopping => "stopping",
        RunState::Stopped => "stopped",
        RunState::Completed => "completed",
        RunState::Failed => "failed",
    }
}

fn print_run(run: &Run) {
    println!(
        "run {}: {} at step {}/{} (epoch {}), newest checkpoint: {}",
        run_id_of(run),
        state_name(run.state),
        run.step,
        run.total_steps,
        run.epoch,
        run.latest_checkpoint.as_deref().unwrap_or("none"),
    );
    if let Some(error) = &run.error {
        println!("error: {error}");
    }
}

/// Streams the run's progress into a progress bar until it finishes; the
/// exit code says whether it completed (or was stopped) or failed.
async fn watch(
    trainer: &mut TrainerServiceClient<AuthChannel>,
    run_id: String,
) -> anyhow::Result<ExitCode> {
    let run = trainer
        .get_run(RunId { id: run_id.clone() })
        .await?
        .into_inner();
    let bar = ProgressBar::new(run.total_steps);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps ({eta}) {msg}",
        )
        .context("progress bar template")?,
    );
    bar.set_position(run.step);
    let mut stream = trainer.watch_run(RunId { id: run_id }).await?.into_inner();
    while let Some(progress) = stream.message().await? {
        match progress.event {
            Some(run_progress::Event::Step(step)) => {
                bar.set_position(step.step);
                let memory = step
                    .memory_bytes
                    .map(|bytes| format!(" {} MiB", bytes >> 20))
                    .unwrap_or_default();
                bar.set_message(format!(
                    "epoch {} loss {:.4} lr {:.2e} grad {:.3} gate {:.3} {:.1} samples/s{memory}",
                    step.epoch,
                    step.loss,
                    step.lr,
                    step.grad_norm,
                    step.fourier_gate_avg,
                    step.samples_per_second
                ));
            }
            Some(run_progress::Event::CheckpointSaved(saved)) => {
                bar.println(format!("checkpoint saved: {}", saved.key));
            }
            Some(run_progress::Event::Finished(finished)) => {
                bar.finish();
                let state = state_name(finished.state);
                println!("run ended: {state} at step {}", finished.step);
                if let Some(error) = finished.error {
                    println!("error: {error}");
                    return Ok(ExitCode::FAILURE);
                }
                return Ok(if state == "failed" {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                });
            }
            None => {}
        }
    }
    bar.abandon();
    bail!("the trainer closed the progress stream before the run ended")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge_file_and_pairs_with_typed_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("train.toml");
        std::fs::write(&file, "epochs = 10\nlr = 1e-4\n").unwrap();
        let text = settings_toml(
            Some(&file),
            &[
                "epochs=3".into(),
                "loss=huber".into(),
                "ema_decay=0.99".into(),
            ],
        )
        .unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["epochs"].as_integer(), Some(3));
        assert_eq!(table["lr"].as_float(), Some(1e-4));
        assert_eq!(table["loss"].as_str(), Some("huber"));
        assert_eq!(table["ema_decay"].as_float(), Some(0.99));
    }

    #[test]
    fn a_pair_without_equals_is_refused() {
        let error = settings_toml(None, &["epochs".into()]).unwrap_err();
        assert!(error.to_string().contains("expected KEY=VALUE"), "{error}");
    }
}
