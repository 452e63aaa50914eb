//! Configuration of a deployment's stream and of durable consumers.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::subject::{validate_name, validate_subject};

/// The one stream of a deployment: every event travels on `<prefix>.<event>` and is kept
/// (limits retention) so that a consumer created later still sees earlier events.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// JetStream stream name (`[A-Za-z0-9_-]`).
    pub name: String,
    /// Subject prefix, one or more plain tokens; the stream holds `<prefix>.>`.
    pub prefix: String,
    /// How long events are kept.
    pub max_age: Duration,
    /// Most events kept; the oldest are dropped beyond it.
    pub max_messages: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            name: "SSDIT".into(),
            prefix: "ssdit".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_messages: 10_000_000,
        }
    }
}

impl StreamConfig {
    /// Checks the name, the prefix and the bounds.
    pub fn validate(&self) -> Result<()> {
        validate_name("stream name", &self.name)?;
        validate_subject("subject prefix", &self.prefix, false)?;
        if self.max_messages == 0 || self.max_messages > i64::MAX as u64 {
            return Err(Error::InvalidConfig(format!(
                "stream {}: max_messages {} is out of range",
                self.name, self.max_messages
            )));
        }
        if self.max_age.is_zero() {
            return Err(Error::InvalidConfig(format!(
                "stream {}: max_age must be positive",
                self.name
            )));
        }
        Ok(())
    }

    /// The absolute subject of a relative one.
    pub(crate) fn absolute(&self, relative: &str) -> String {
        format!("{}.{relative}", self.prefix)
    }

    /// The relative subject of an absolute one (unchanged when outside the prefix).
    pub(crate) fn relative<'a>(&self, absolute: &'a str) -> &'a str {
        absolute
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(absolute)
    }
}

/// A durable pull consumer: all handles opened with the same `durable` name share its
/// messages (competing consumers), and its position survives restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// Durable name, shared by the replicas of one stage (`[A-Za-z0-9_-]`).
    pub durable: String,
    /// Relative subject filter (`sample_ingested`, `dead_letter.>`).
    pub subject: String,
    /// How long a delivery may stay unacknowledged before it is redelivered;
    /// [`crate::Delivery::in_progress`] restarts the clock.
    pub ack_wait: Duration,
    /// Deliveries allowed before a message goes to the dead-letter subject.
    pub max_deliver: u32,
    /// Delay before redelivery after a [`crate::Delivery::nak`].
    pub backoff: Backoff,
}

impl ConsumerConfig {
    /// A consumer with default ack wait (30 s), max deliveries (5) and backoff.
    pub fn new(durable: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            durable: durable.into(),
            subject: subject.into(),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: Backoff::default(),
        }
    }

    /// Checks names and bounds.
    pub fn validate(&self) -> Result<()> {
        validate_name("durable name", &self.durable)?;
        validate_subject("subject filter", &self.subject, true)?;
        if self.max_deliver == 0 {
            return Err(Error::InvalidConfig(format!(
                "consumer {}: max_deliver must be at least 1",
                self.durable
            )));
        }
        if self.ack_wait < Duration::from_millis(10) {
            return Err(Error::InvalidConfig(format!(
                "consumer {}: ack_wait {:?} is below 10 ms",
                self.durable, self.ack_wait
            )));
        }
        Ok(())
    }

    /// Relative subject its dead letters are published on.
    pub fn dead_letter_subject(&self) -> String {
        dead_letter_subject(&self.durable)
    }
}

/// Relative dead-letter subject of a durable consumer: `dead_letter.<durable>`.
pub fn dead_letter_subject(durable: &str) -> String {
    use ssdit_proto::Event;
    format!("{}.{durable}", ssdit_proto::v1::DeadLetter::NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_added_and_stripped() {
        let stream = StreamConfig {
            prefix: "prod.ssdit".into(),
            ..StreamConfig::default()
        };
        assert_eq!(
            stream.absolute("sample_ingested"),
            "prod.ssdit.sample_ingested"
        );
        assert_eq!(
            stream.relative("prod.ssdit.sample_ingested"),
            "sample_ingested"
        );
        assert_eq!(stream.relative("other.x"), "other.x");
        assert!(stream.validate().is_ok());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let stream = StreamConfig {
            prefix: "ssdit.>".into(),
            ..StreamConfig::default()
        };
        assert!(stream.validate().is_err());
        let mut consumer = ConsumerConfig::new("vae", "sample_ingested");
        assert!(consumer.validate().is_ok());
        consumer.max_deliver = 0;
        assert!(consumer.validate().is_err());
        let consumer = ConsumerConfig::new("vae.encoder", "sample_ingested");
        assert!(consumer.validate().is_err());
    }
}
