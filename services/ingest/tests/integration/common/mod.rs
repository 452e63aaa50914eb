//! Helpers shared by the integration tests: captioned copies of the sample
//! photos, a pipeline over a memory store and an in-process bus, event
//! collection.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ssdit_bus::{Bus, ConsumerConfig, InProcessBus, StreamConfig};
use ssdit_core::Config;
use ssdit_ingest::{IngestOptions, IngestReport, Ingester};
use ssdit_proto::Event;
use ssdit_store::Store;
use ssdit_testkit::{PHOTOS, shared_data};

/// Copies `from`'s files (not sub-folders) into `to`, writable.
pub fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let target = to.join(path.file_name().unwrap());
            std::fs::write(&target, std::fs::read(&path).unwrap()).unwrap();
        }
    }
}

/// Caption `n` (1-based) of the flower captions, trimmed.
pub fn flower_caption(n: usize) -> String {
    let path = shared_data("flowers-captions").join(format!("{n}.txt"));
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// A copy of the photos folder with a `.txt` sidecar beside each photo (the
/// flower captions, in order); returns the folder and the captions by file.
pub fn captioned_photos(dir: &Path) -> HashMap<String, String> {
    copy_files(&shared_data("photos"), dir);
    PHOTOS
        .iter()
        .enumerate()
        .map(|(i, photo)| {
            let caption = flower_caption(i + 1);
            let sidecar = dir.join(Path::new(photo.file).with_extension("txt"));
            std::fs::write(sidecar, format!("{caption}\n")).unwrap();
            (photo.file.to_owned(), caption)
        })
        .collect()
}

/// A test configuration: two workers, everything else the defaults.
pub fn config() -> Config {
    let mut config = Config::default();
    config.ingest.workers = 2;
    config
}

/// A pipeline over a fresh memory store and in-process bus.
pub struct Harness {
    pub store: Store,
    pub bus: Arc<InProcessBus>,
    pub ingester: Ingester,
}

impl Harness {
    pub async fn new(config: Config) -> Self {
        let store = Store::open("memory://").await.unwrap();
        let bus = Arc::new(InProcessBus::new(StreamConfig::default()).unwrap());
        let ingester =
            Ingester::from_parts(&config, store.clone(), bus.clone(), &HashMap::new()).unwrap();
        Self {
            store,
            bus,
            ingester,
        }
    }

    /// Ingests the folder `dir` into `dataset`, printing each file's outcome
    /// (what a failing test shows).
    pub async fn ingest(&self, dataset: &str, dir: &Path, options: IngestOptions) -> IngestReport {
        let report = self
            .ingester
            .ingest_folder(dataset, dir, options)
            .await
            .unwrap();
        for outcome in &report.files {
            println!("{}: {:?}", outcome.file, outcome.status);
        }
        report
    }

    /// Every event of type `E` published so far that the durable consumer
    /// `durable` has not seen yet (acked as they are read).
    pub async fn events<E: Event>(&self, durable: &str) -> Vec<E> {
        let consumer = self
            .bus
            .consumer(ConsumerConfig::new(durable, E::NAME))
            .await
            .unwrap();
        let mut events = Vec::new();
        loop {
            let batch = consumer
                .fetch(64, Duration::from_millis(100))
                .await
                .unwrap();
            if batch.is_empty() {
                return events;
            }
            for delivery in batch {
                events.push(delivery.decode::<E>().unwrap());
                delivery.ack().await.unwrap();
            }
        }
    }
}
