//! Hot reload: a bus consumer of `CheckpointSaved` swaps newer checkpoints
//! in without dropping requests.
//!
//! Every sampler replica must see every checkpoint, so each opens its own
//! durable consumer (`sampler-<instance>`) rather than sharing one. Events of
//! the followed run (`sampler.run`; any run when unset) newer than the served
//! checkpoint are loaded — read and verified here, built on the compute
//! thread between two batches, so requests wait for the swap instead of
//! failing. A consumer created after events were published replays them; the
//! served checkpoint is the newest anyway, so older ones are skipped.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ssdit_bus::Delivery;
use ssdit_proto::Event;
use ssdit_proto::v1::CheckpointSaved;
use ssdit_server::consume::{consume, consumer_config};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{self, CheckpointId};
use crate::dispatch::Dispatcher;
use crate::{Error, Result};

/// Events fetched at once.
const FETCH: usize = 16;
/// How long one fetch waits for the first event.
const FETCH_WAIT: Duration = Duration::from_millis(250);

/// Follows `CheckpointSaved` and keeps `served` up to date.
pub struct Reloader {
    pub dispatcher: Dispatcher,
    pub served: Arc<RwLock<CheckpointId>>,
    /// The run followed; `None` follows whichever run saves.
    pub run: Option<String>,
    /// This replica's durable consumer name.
    pub durable: String,
}

impl Reloader {
    /// Consumes events until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let config = &self.dispatcher.ctx.config;
        let consumer = self
            .dispatcher
            .ctx
            .bus
            .consumer(consumer_config(
                config,
                self.durable.clone(),
                CheckpointSaved::NAME,
            ))
            .await?;
        tracing::info!(durable = %self.durable, run = ?self.run, "following checkpoints");
        consume(&consumer, FETCH, FETCH_WAIT, &shutdown, |deliveries| {
            self.handle(deliveries)
        })
        .await;
        Ok(())
    }

    /// Loads the newest followed checkpoint among `deliveries`, then answers them.
    async fn handle(&self, deliveries: Vec<Delivery>) {
        let mut newest: Option<CheckpointId> = None;
        let mut answered = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery.decode::<CheckpointSaved>() {
                Ok(event) => {
                    if let Some(id) = self.candidate(&event)
                        && newest
                            .as_ref()
                            .is_none_or(|n| follows_after(&id, n, self.run.is_none()))
                    {
                        newest = Some(id);
                    }
                    answered.push(delivery);
                }
                Err(error) => log_answer(delivery.term(&error.to_string()).await),
            }
        }
        let outcome = match newest {
            Some(id) => self.swap(id).await,
            None => Ok(()),
        };
        for delivery in answered {
            match &outcome {
                Err(error @ (Error::Store(_) | Error::Bus(_) | Error::Worker(_))) => {
                    log_answer(delivery.nak(&error.to_string()).await)
                }
                _ => log_answer(delivery.ack().await),
            }
        }
    }

    /// The checkpoint an event announces, if it is one to serve.
    fn candidate(&self, event: &CheckpointSaved) -> Option<CheckpointId> {
        if self.run.as_ref().is_some_and(|run| run != &event.run_id) {
            return None;
        }
        let id = CheckpointId::parse_store_key(&event.key)
            .or_else(|_| CheckpointId::of_run(&event.run_id, event.step))
            .ok()?;
        let served = self.served.read().unwrap_or_else(|e| e.into_inner());
        follows_after(&id, &served, self.run.is_none()).then_some(id)
    }

    /// Reads, builds and serves `id`; on failure the served model stays.
    async fn swap(&self, id: CheckpointId) -> Result<()> {
        let started = std::time::Instant::now();
        let dispatcher = &self.dispatcher;
        let result = async {
            let source =
                checkpoint::fetch(&dispatcher.ctx.store, id.clone(), &dispatcher.fallback).await?;
            dispatcher
                .engine
                .run(move |engine| engine.install_served(source))
                .await?
        }
        .await;
        match &result {
            Ok(()) => {
                *self.served.write().unwrap_or_else(|e| e.into_inner()) = id.clone();
                tracing::info!(checkpoint = %id, ms = started.elapsed().as_millis() as u64, "hot-reloaded checkpoint");
            }
            Err(error) => {
                tracing::error!(checkpoint = %id, %error, "hot reload failed; still serving the previous checkpoint")
            }
        }
        result
    }
}

/// Whether `candidate` should replace `current`: a later step of the same
/// run; or, when following any run, a checkpoint of another run (the one that
/// saved most recently) or anything in place of a non-store model.
fn follows_after(candidate: &CheckpointId, current: &CheckpointId, any_run: bool) -> bool {
    match (candidate.run_step(), current.run_step()) {
        (Some((run, step)), Some((current_run, current_step))) if run == current_run => {
            step > current_step
        }
        (Some(_), Some(_)) => any_run,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn log_answer(result: ssdit_bus::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(%error, "answering a checkpoint event failed; it will be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_steps_of_the_followed_run_win() {
        let at = |run: &str, step| CheckpointId::of_run(run, step).unwrap();
        let random = CheckpointId::Random {
            preset: "tiny".into(),
            seed: 0,
        };
        assert!(follows_after(&at("a", 2), &at("a", 1), false));
        assert!(!follows_after(&at("a", 1), &at("a", 2), false));
        assert!(!follows_after(&at("a", 2), &at("a", 2), true));
        assert!(!follows_after(&at("b", 9), &at("a", 1), false));
        assert!(follows_after(&at("b", 1), &at("a", 9), true));
        assert!(follows_after(&at("a", 1), &random, false));
        assert!(!follows_after(&random, &at("a", 1), true));
    }
}
