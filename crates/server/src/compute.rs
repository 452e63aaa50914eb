use std::panic::{AssertUnwindSafe, catch_unwind};

use ssdit_core::panic_message;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

type Job<M> = Box<dyn FnOnce(&mut M) + Send>;

/// A dedicated OS thread owning a model `M` (built on that thread), running
/// jobs sent from async code one at a time. Model compute never runs on the
/// async executor; the bounded queue gives callers back-pressure.
pub struct ComputeWorker<M> {
    name: String,
    jobs: mpsc::Sender<Job<M>>,
}

impl<M> Clone for ComputeWorker<M> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            jobs: self.jobs.clone(),
        }
    }
}

/// The worker thread is gone, or the job panicked (the worker survives a
/// panicking job; the panic message is kept).
#[derive(Debug, thiserror::Error)]
#[error("compute worker {worker}: {reason}")]
pub struct WorkerGone {
    pub worker: String,
    pub reason: String,
}

impl<M: 'static> ComputeWorker<M> {
    /// Starts the thread and builds the model on it with `init`; returns once
    /// the model is ready, or with `init`'s error.
    pub async fn spawn<E: std::fmt::Display + Send + 'static>(
        name: &str,
        queue: usize,
        init: impl FnOnce() -> std::result::Result<M, E> + Send + 'static,
    ) -> Result<Self> {
        let (jobs, mut receiver) = mpsc::channel::<Job<M>>(queue.max(1));
        let (ready_tx, ready_rx) = oneshot::channel::<std::result::Result<(), String>>();
        let thread_name = name.to_string();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut model = match init() {
                    Ok(model) => {
                        let _ = ready_tx.send(Ok(()));
                        model
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                while let Some(job) = receiver.blocking_recv() {
                    job(&mut model);
                }
                tracing::debug!(worker = thread_name, "compute worker stopped");
            })
            .map_err(|e| worker_error(name, e.to_string()))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(Self {
                name: name.to_string(),
                jobs,
            }),
            Ok(Err(reason)) => Err(worker_error(name, reason)),
            Err(_) => Err(worker_error(
                name,
                "the thread panicked while loading".into(),
            )),
        }
    }

    /// Runs `job` on the worker's model and returns its result.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut M) -> R + Send + 'static,
    ) -> std::result::Result<R, WorkerGone> {
        let (result_tx, result_rx) = oneshot::channel();
        let job: Job<M> = Box::new(move |model| {
            let outcome = catch_unwind(AssertUnwindSafe(|| job(model)));
            let _ = result_tx.send(outcome.map_err(|panic| panic_message(&*panic)));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| self.gone("the thread has stopped"))?;
        match result_rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(self.gone(&format!("job panicked: {panic}"))),
            Err(_) => Err(self.gone("the thread dropped the job")),
        }
    }

    fn gone(&self, reason: &str) -> WorkerGone {
        WorkerGone {
            worker: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

fn worker_error(name: &str, reason: String) -> Error {
    Error::Worker {
        name: name.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_own_thread_and_survives_panics() {
        let worker = ComputeWorker::spawn("counter", 4, || Ok::<_, String>(0u32))
            .await
            .unwrap();
        let caller = std::thread::current().id();
        let (count, thread) = worker
            .run(|n| {
                *n += 1;
                (*n, std::thread::current().id())
            })
            .await
            .unwrap();
        assert_eq!(count, 1);
        assert_ne!(thread, caller);

        let err = worker.run(|_| panic!("bad input")).await.unwrap_err();
        assert!(err.to_string().contains("bad input"), "{err}");
        assert_eq!(
            worker.run(|n| *n).await.unwrap(),
            1,
            "state survives a panicking job"
        );
    }

    #[tokio::test]
    async fn init_errors_are_reported() {
        let err = ComputeWorker::<u32>::spawn("broken", 1, || Err("no weights"))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("no weights"), "{err}");
    }
}
