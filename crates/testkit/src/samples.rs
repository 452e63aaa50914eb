//! Samples as ingest leaves them: files and records in a dataset of the
//! store, and the `SampleIngested` event announcing each.

use bytes::Bytes;
use ssdit_dataset::{Bucket, Dataset, SampleRecord};
use ssdit_proto::v1::SampleIngested;
use ssdit_store::Store;

/// A sample id (hex, as ingest makes them) from a small number.
pub fn sample_id(n: u32) -> String {
    format!("{n:064x}")
}

/// Stores sample `id` of `dataset` — its bucket-sized image file holding
/// `image`, and `caption` if any — and returns its event.
pub async fn store_sample(
    store: &Store,
    dataset: &str,
    id: &str,
    image: Bytes,
    bucket: Bucket,
    caption: Option<&str>,
) -> SampleIngested {
    let record = SampleRecord {
        id: id.into(),
        source: format!("{id}.png"),
        image_key: String::new(),
        caption_key: None,
        bucket,
        original_size: [bucket.width, bucket.height],
        label: None,
    };
    let dataset = Dataset::new(store.clone(), dataset).unwrap();
    let record = dataset
        .add_sample(record, image, "png", caption)
        .await
        .unwrap();
    dataset.announcement(&record)
}
