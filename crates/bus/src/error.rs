//! Errors of the event bus.

use std::time::Duration;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stream, prefix, durable or subject name breaks the naming rules.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// What was being named ("durable name", "subject"…).
        what: &'static str,
        /// The offending name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A configuration value is out of range.
    #[error("invalid bus configuration: {0}")]
    InvalidConfig(String),
    /// The NATS server could not be reached at start-up.
    #[error("connecting to nats at {url}: {source}")]
    Connect {
        /// Server URL.
        url: String,
        /// Client error.
        source: async_nats::ConnectError,
    },
    /// A JetStream request (stream or consumer set-up, publish, fetch, ack) failed.
    #[error("nats {operation} on {target}: {message}")]
    Nats {
        /// What was being done ("create stream", "publish"…).
        operation: &'static str,
        /// The stream, consumer or subject concerned.
        target: String,
        /// The client's error, rendered.
        message: String,
    },
    /// Stream set-up kept failing until the start-up deadline.
    #[error("setting up stream {stream}: gave up after {elapsed:?}: {last_error}")]
    SetupTimeout {
        /// Stream name.
        stream: String,
        /// Time spent retrying.
        elapsed: Duration,
        /// The last failure.
        last_error: String,
    },
    /// A delivery's payload did not decode as the expected event.
    #[error("decoding delivery on {subject}: {source}")]
    Decode {
        /// Subject of the delivery.
        subject: String,
        /// Decode error.
        source: ssdit_proto::Error,
    },
}

impl Error {
    /// A NATS failure with its context.
    pub(crate) fn nats(
        operation: &'static str,
        target: impl Into<String>,
        error: impl std::fmt::Display,
    ) -> Self {
        Error::Nats {
            operation,
            target: target.into(),
            message: error.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
