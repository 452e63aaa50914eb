//! The behaviour suite on the in-process bus.

use crate::behaviour_tests;
use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use common::Harness;
use ssdit_bus::{Bus, InProcessBus, StreamConfig};

struct Memory(InProcessBus);

impl Memory {
    fn new() -> Self {
        Self(InProcessBus::new(StreamConfig::default()).expect("in-process bus"))
    }
}

#[async_trait]
impl Harness for Memory {
    async fn connect(&self) -> Arc<dyn Bus> {
        Arc::new(self.0.clone())
    }
}

behaviour_tests!(Memory::new());

#[tokio::test]
async fn retention_limit_drops_the_oldest_events() {
    use ssdit_bus::{BusExt, ConsumerConfig};
    use ssdit_proto::v1::CheckpointSaved;
    use std::time::Duration;

    let bus = InProcessBus::new(StreamConfig {
        max_messages: 2,
        ..StreamConfig::default()
    })
    .unwrap();
    for step in 0..5 {
        bus.publish_event(&CheckpointSaved {
            step,
            ..CheckpointSaved::default()
        })
        .await
        .unwrap();
    }
    let consumer = bus
        .consumer(ConsumerConfig::new("ckpt", "checkpoint_saved"))
        .await
        .unwrap();
    let steps: Vec<u64> = consumer
        .fetch(10, Duration::from_millis(100))
        .await
        .unwrap()
        .iter()
        .map(|d| d.decode::<CheckpointSaved>().unwrap().step)
        .collect();
    assert_eq!(steps, [3, 4]);
}
