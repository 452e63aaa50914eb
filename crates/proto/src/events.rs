//! Event-bus payloads and the subjects they travel on.
//!
//! Every event is a protobuf message from `proto/ssdit/v1/events.proto`. The [`Event`] trait
//! ties each one to its subject suffix, so publishers and consumers agree on
//! `<prefix>.<NAME>` without string literals scattered through the services.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::v1::{
    CheckpointSaved, DatasetUpdated, DeadLetter, LatentEncoded, SampleIngested, SampleRejected,
    TextEncoded,
};

/// A protobuf message published on the event bus under a fixed subject suffix.
pub trait Event: prost::Message + Default + Sized {
    /// Subject suffix (one NATS token, lowercase): the event travels on `<prefix>.<NAME>`.
    const NAME: &'static str;

    /// The encoded payload.
    fn to_bytes(&self) -> Bytes {
        self.encode_to_vec().into()
    }

    /// Decodes a payload, naming the event in the error.
    fn from_bytes(payload: &[u8]) -> Result<Self> {
        Self::decode(payload).map_err(|source| Error::DecodeEvent {
            event: Self::NAME,
            source,
        })
    }
}

impl Event for SampleIngested {
    const NAME: &'static str = "sample_ingested";
}

impl Event for LatentEncoded {
    const NAME: &'static str = "latent_encoded";
}

impl Event for TextEncoded {
    const NAME: &'static str = "text_encoded";
}

impl Event for SampleRejected {
    const NAME: &'static str = "sample_rejected";
}

impl Event for CheckpointSaved {
    const NAME: &'static str = "checkpoint_saved";
}

impl Event for DatasetUpdated {
    const NAME: &'static str = "dataset_updated";
}

/// Dead letters travel on `<prefix>.dead_letter.<consumer>`; subscribe to
/// `dead_letter.>` for all of them.
impl Event for DeadLetter {
    const NAME: &'static str = "dead_letter";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_bytes() {
        let event = SampleIngested {
            dataset: "flowers".into(),
            sample_id: "abc".into(),
            image_key: "datasets/flowers/images/abc.png".into(),
            caption_key: "datasets/flowers/captions/abc.txt".into(),
            bucket_width: 448,
            bucket_height: 448,
        };
        let back = SampleIngested::from_bytes(&event.to_bytes()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn garbage_payload_names_the_event() {
        let err = CheckpointSaved::from_bytes(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.to_string().contains("checkpoint_saved"), "{err}");
    }

    #[test]
    fn subject_suffixes_are_single_distinct_tokens() {
        let names = [
            SampleIngested::NAME,
            LatentEncoded::NAME,
            TextEncoded::NAME,
            SampleRejected::NAME,
            CheckpointSaved::NAME,
            DatasetUpdated::NAME,
            DeadLetter::NAME,
        ];
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
