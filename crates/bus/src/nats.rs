//! The NATS JetStream bus.
//!
//! One stream per deployment holds `<prefix>.>` (limits retention, file storage), so every
//! stage sees every event whenever it starts. A stage is a durable pull consumer with
//! explicit ack filtered on one subject; its replicas open the same durable name and share
//! the messages. The server's own max-deliver is left unlimited: the max-deliveries rule is
//! applied by [`crate::Consumer`] so that a message is never dropped without first being
//! published to the dead-letter subject.
//!
//! Set-up is idempotent: creating the stream or a consumer that already exists with the
//! same configuration succeeds (from any number of processes at once); a stream whose
//! configuration changed is updated. The client reconnects forever with exponential
//! backoff and jitter, logging each disconnect and reconnect.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::pull::Config as PullConfig;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{
    ConsumerInfoErrorKind, CreateStreamErrorKind, GetStreamErrorKind,
};
use async_nats::jetstream::message::{AckKind, Acker as NatsAcker};
use async_nats::jetstream::stream::{
    Config as NatsStreamConfig, DiscardPolicy, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, Context};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;

use crate::Bus;
use crate::backoff::Backoff;
use crate::config::{ConsumerConfig, StreamConfig};
use crate::consumer::{Acker, Consumer, ConsumerBackend, RawDelivery};
use crate::error::{Error, Result};
use crate::subject::validate_subject;

/// Shortest pull-request expiry sent to the server.
const MIN_EXPIRES: Duration = Duration::from_millis(10);
/// How long past its expiry a pull request may stay open before it is
/// abandoned (see `NatsConsumer::collect`).
const PULL_GRACE: Duration = Duration::from_secs(5);
/// How long the check after a failed fetch (`NatsConsumer::restore`) may take.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach NATS and which stream to use.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The deployment's stream.
    pub stream: StreamConfig,
    /// Client name shown by the server (`ssdit-vae-encoder`).
    pub client_name: String,
    /// Timeout of one JetStream API request (set-up, publish ack, ack confirmation).
    pub request_timeout: Duration,
    /// How long start-up keeps retrying stream creation while the server is unreachable.
    pub startup_timeout: Duration,
    /// Delay between reconnection attempts (retried forever).
    pub reconnect: Backoff,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: StreamConfig::default(),
            client_name: "ssdit".into(),
            request_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(60),
            reconnect: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(10),
                multiplier: 2.0,
                jitter: 0.2,
            },
        }
    }
}

/// A [`Bus`] on NATS JetStream; clones share the connection.
#[derive(Clone)]
pub struct NatsBus {
    js: Context,
    stream: Arc<StreamConfig>,
}

impl NatsBus {
    /// Connects (retrying in the background while the server is down), then creates or
    /// updates the deployment's stream, retrying transient failures until
    /// `startup_timeout`.
    pub async fn connect(config: NatsConfig) -> Result<Self> {
        config.stream.validate()?;
        let reconnect = config.reconnect.clone();
        let client = async_nats::ConnectOptions::new()
            .name(&config.client_name)
            .max_reconnects(None)
            .retry_on_initial_connect()
            .reconnect_delay_callback(move |attempts| {
                reconnect.delay(u32::try_from(attempts).unwrap_or(u32::MAX))
            })
            .event_callback({
                let url = config.url.clone();
                move |event| {
                    let url = url.clone();
                    async move { log_event(&url, &event) }
                }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|source| Error::Connect {
                url: config.url.clone(),
                source,
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client);
        let bus = Self {
            js,
            stream: Arc::new(config.stream),
        };
        bus.ensure_stream(config.startup_timeout, &config.reconnect)
            .await?;
        Ok(bus)
    }

    /// The deployment's stream configuration.
    pub fn stream(&self) -> &StreamConfig {
        &self.stream
    }

    fn stream_config(&self) -> NatsStreamConfig {
        NatsStreamConfig {
            name: self.stream.name.clone(),
            subjects: vec![self.stream.absolute(">")],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: self.stream.max_age,
            max_messages: i64::try_from(self.stream.max_messages).unwrap_or(i64::MAX),
            ..NatsStreamConfig::default()
        }
    }

    async fn ensure_stream(&self, startup_timeout: Duration, retry: &Backoff) -> Result<()> {
        let name = self.stream.name.clone();
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let error = match self.js.create_stream(self.stream_config()).await {
                Ok(_) => {
                    tracing::info!(stream = %name, prefix = %self.stream.prefix, "stream ready");
                    return Ok(());
                }
                Err(error) => error,
            };
            match error.kind() {
                CreateStreamErrorKind::JetStream(e) if e.kind() == ErrorCode::STREAM_NAME_EXIST => {
                    return self.update_stream().await;
                }
                CreateStreamErrorKind::JetStream(e)
                    if e.kind() == ErrorCode::STREAM_SUBJECT_OVERLAP =>
                {
                    // A process creating the same stream at the same moment
                    // makes the server see our subjects as another stream's.
                    if self.js.get_stream(&name).await.is_ok() {
                        return self.update_stream().await;
                    }
                    return Err(Error::nats("create stream", name, error));
                }
                CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => {
                    let elapsed = started.elapsed();
                    if elapsed >= startup_timeout {
                        return Err(Error::SetupTimeout {
                            stream: name,
                            elapsed,
                            last_error: error.to_string(),
                        });
                    }
                    let delay = retry.delay(attempt);
                    tracing::warn!(stream = %name, %error, ?delay, "stream set-up failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(Error::nats("create stream", name, error)),
            }
        }
    }

    async fn update_stream(&self) -> Result<()> {
        let name = &self.stream.name;
        self.js
            .update_stream(self.stream_config())
            .await
            .map_err(|e| Error::nats("update stream", name.clone(), e))?;
        tracing::info!(stream = %name, "stream configuration updated");
        Ok(())
    }

    async fn create_consumer(&self, pull: &PullConfig) -> Result<PullConsumer> {
        let durable = pull.durable_name.clone().unwrap_or_default();
        self.js
            .create_consumer_on_stream(pull.clone(), self.stream.name.as_str())
            .await
            .map_err(|e| Error::nats("create consumer", durable, e))
    }

    /// Re-creates the stream and the durable consumer if the server no longer
    /// has them (a broker that crashed before writing them to disk comes back
    /// without them); the new consumer, or `None` if it still existed.
    async fn recreate_if_lost(&self, pull: &PullConfig) -> Result<Option<PullConsumer>> {
        let name = self.stream.name.as_str();
        let durable = pull.durable_name.as_deref().unwrap_or_default();
        let stream = match self.js.get_stream(name).await {
            Ok(stream) => stream,
            Err(error) if is_stream_not_found(&error) => {
                tracing::warn!(stream = %name, "the server lost the stream; re-creating it");
                self.js
                    .create_stream(self.stream_config())
                    .await
                    .map_err(|e| Error::nats("re-create stream", name, e))?
            }
            Err(error) => return Err(Error::nats("stream info", name, error)),
        };
        match stream.consumer_info(durable).await {
            Ok(_) => Ok(None),
            Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
                tracing::warn!(
                    stream = %name,
                    consumer = %durable,
                    "the server lost the consumer; re-creating it"
                );
                self.create_consumer(pull).await.map(Some)
            }
            Err(error) => Err(Error::nats("consumer info", durable, error)),
        }
    }
}

/// Logs a connection event of the client of the server at `url` (the URL
/// says which server is meant when one cannot be reached).
fn log_event(url: &str, event: &async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => tracing::info!(url, "nats connected"),
        Event::Disconnected => tracing::warn!(url, "nats disconnected; reconnecting"),
        Event::LameDuckMode => tracing::warn!(url, "nats server entered lame duck mode"),
        Event::SlowConsumer(sid) => tracing::warn!(url, sid, "nats slow consumer"),
        Event::Draining | Event::Closed => tracing::info!(url, %event, "nats connection"),
        Event::ServerError(error) => tracing::error!(url, %error, "nats server error"),
        Event::ClientError(error) => {
            tracing::error!(url, %error, "nats client error")
        }
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<()> {
        validate_subject("subject", subject, false)?;
        let absolute = self.stream.absolute(subject);
        let ack = self
            .js
            .publish(absolute.clone(), payload)
            .await
            .map_err(|e| Error::nats("publish", absolute.clone(), e))?;
        ack.await
            .map_err(|e| Error::nats("publish ack", absolute, e))?;
        Ok(())
    }

    async fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let pull = PullConfig {
            durable_name: Some(config.durable.clone()),
            filter_subject: self.stream.absolute(&config.subject),
            ack_policy: AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            deliver_policy: DeliverPolicy::All,
            ..PullConfig::default()
        };
        let consumer = self.create_consumer(&pull).await?;
        tracing::info!(
            stream = %self.stream.name,
            consumer = %config.durable,
            subject = %config.subject,
            "consumer ready"
        );
        let backend = NatsConsumer {
            bus: self.clone(),
            durable: config.durable.clone(),
            pull,
            consumer: Mutex::new(consumer),
        };
        Ok(Consumer::new(
            Box::new(backend),
            config,
            Arc::new(self.clone()),
        ))
    }
}

fn is_stream_not_found(error: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND
    )
}

/// One durable pull consumer. After a failed fetch it checks that the server
/// still has the consumer, so a broker that lost it in a crash does not leave
/// the stage fetching from nothing forever.
struct NatsConsumer {
    bus: NatsBus,
    durable: String,
    /// How to re-create it.
    pull: PullConfig,
    consumer: Mutex<PullConsumer>,
}

impl NatsConsumer {
    /// The consumer fetches go to (replaced by [`Self::restore`]).
    fn current(&self) -> MutexGuard<'_, PullConsumer> {
        self.consumer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a failed fetch: re-creates the consumer if the server lost it.
    /// Bounded by [`RESTORE_TIMEOUT`], as the server may still be down.
    async fn restore(&self) {
        let check = tokio::time::timeout(RESTORE_TIMEOUT, self.bus.recreate_if_lost(&self.pull));
        match check.await {
            Ok(Ok(Some(consumer))) => *self.current() = consumer,
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                tracing::debug!(consumer = %self.durable, %error, "consumer check failed")
            }
            Err(_) => tracing::debug!(consumer = %self.durable, "consumer check timed out"),
        }
    }

    /// Takes what is available; if nothing, waits for one message (a pull request of one
    /// that expires at the timeout), then tops the batch up with what arrived meanwhile.
    /// Every pull request is read to its end, so no message is left in a dropped inbox.
    async fn fetch_from_server(&self, max: usize, timeout: Duration) -> Result<Vec<RawDelivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut out = self.fetch_now(max).await?;
        if !out.is_empty() || timeout.is_zero() {
            return Ok(out);
        }
        out = self.wait_one(timeout).await?;
        if !out.is_empty() && max > 1 {
            out.extend(self.fetch_now(max - 1).await?);
        }
        Ok(out)
    }

    /// Collects one pull request's messages, giving up after `expires` +
    /// [`PULL_GRACE`]: a request the server never ends (it restarted while
    /// the request was open) would otherwise wait forever. Messages of an
    /// abandoned request are unacked and come back after the ack wait.
    async fn collect(
        &self,
        batch: async_nats::jetstream::consumer::pull::Batch,
        expires: Duration,
    ) -> Result<Vec<RawDelivery>> {
        let limit = expires + PULL_GRACE;
        let messages: Vec<_> =
            tokio::time::timeout(limit, batch.collect())
                .await
                .map_err(|_| Error::Nats {
                    operation: "fetch",
                    target: self.durable.clone(),
                    message: format!(
                        "the pull request was not ended within {limit:?} (did the server restart?)"
                    ),
                })?;
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            let message = message.map_err(|e| Error::nats("fetch", self.durable.clone(), e))?;
            let delivered = message
                .info()
                .map_err(|e| Error::nats("read delivery info", self.durable.clone(), e))?
                .delivered;
            let (message, acker) = message.split();
            out.push(RawDelivery {
                subject: self
                    .bus
                    .stream
                    .relative(message.subject.as_str())
                    .to_owned(),
                payload: message.payload,
                delivered: u32::try_from(delivered).unwrap_or(u32::MAX),
                acker: Box::new(NatsMessageAcker {
                    acker,
                    durable: self.durable.clone(),
                }),
            });
        }
        Ok(out)
    }

    /// What is available now, without waiting.
    async fn fetch_now(&self, max: usize) -> Result<Vec<RawDelivery>> {
        let consumer = self.current().clone();
        let batch = consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| Error::nats("fetch", self.durable.clone(), e))?;
        self.collect(batch, Duration::ZERO).await
    }

    /// One message, waiting up to `timeout` for it.
    async fn wait_one(&self, timeout: Duration) -> Result<Vec<RawDelivery>> {
        let expires = timeout.max(MIN_EXPIRES);
        let consumer = self.current().clone();
        let batch = consumer
            .batch()
            .max_messages(1)
            .expires(expires)
            .messages()
            .await
            .map_err(|e| Error::nats("fetch", self.durable.clone(), e))?;
        self.collect(batch, expires).await
    }
}

#[async_trait]
impl ConsumerBackend for NatsConsumer {
    /// See `fetch_from_server`; a failed fetch is followed by [`NatsConsumer::restore`].
    async fn fetch(&self, max: usize, timeout: Duration) -> Result<Vec<RawDelivery>> {
        let fetched = self.fetch_from_server(max, timeout).await;
        if fetched.is_err() {
            self.restore().await;
        }
        fetched
    }
}

/// Answers for one JetStream delivery; every answer waits for the server's confirmation.
struct NatsMessageAcker {
    acker: NatsAcker,
    durable: String,
}

impl NatsMessageAcker {
    async fn send(&self, kind: AckKind, operation: &'static str) -> Result<()> {
        self.acker
            .double_ack_with(kind)
            .await
            .map_err(|e| Error::nats(operation, self.durable.clone(), e))
    }
}

#[async_trait]
impl Acker for NatsMessageAcker {
    async fn ack(&self) -> Result<()> {
        self.send(AckKind::Ack, "ack").await
    }

    async fn nak(&self, delay: Duration) -> Result<()> {
        self.send(AckKind::Nak(Some(delay)), "nak").await
    }

    async fn in_progress(&self) -> Result<()> {
        self.send(AckKind::Progress, "in-progress").await
    }

    async fn term(&self) -> Result<()> {
        self.send(AckKind::Term, "term").await
    }
}
