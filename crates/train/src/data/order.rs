//! The seed's `BucketBatchSampler`: each epoch, the indices of every bucket
//! are shuffled and cut into full batches (a partial last batch is dropped),
//! then the batches of all buckets are shuffled together. Batches never mix
//! buckets, so every batch has one latent size.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use ssdit_dataset::Bucket;

use crate::rng::{Purpose, Streams};

/// Full batches per epoch: `Σ ⌊bucket size / batch_size⌋` (the sampler's `len`).
pub fn batches_per_epoch(buckets: &BTreeMap<Bucket, Vec<usize>>, batch_size: usize) -> usize {
    buckets.values().map(|b| b.len() / batch_size).sum()
}

/// The batches of `epoch`, in training order; drawn from the epoch's own
/// stream, so any epoch's order can be recomputed on resume.
pub fn epoch_batches(
    buckets: &BTreeMap<Bucket, Vec<usize>>,
    batch_size: usize,
    streams: &Streams,
    epoch: u64,
) -> Vec<Vec<usize>> {
    let mut rng = streams.rng(Purpose::DataOrder, epoch, 0);
    let mut batches = Vec::new();
    for indices in buckets.values() {
        let mut indices = indices.clone();
        indices.shuffle(&mut rng);
        batches.extend(indices.chunks_exact(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn buckets() -> BTreeMap<Bucket, Vec<usize>> {
        let b = |w, h| Bucket {
            width: w,
            height: h,
        };
        BTreeMap::from([
            (b(448, 448), (0..10).collect()),
            (b(512, 384), (10..17).collect()),
            (b(384, 512), vec![17, 18]),
        ])
    }

    #[test]
    fn batches_are_full_single_bucket_and_disjoint() {
        let buckets = buckets();
        let streams = Streams::new(7);
        let batches = epoch_batches(&buckets, 3, &streams, 0);
        assert_eq!(batches.len(), batches_per_epoch(&buckets, 3));
        assert_eq!(batches.len(), 3 + 2);
        let mut seen = BTreeSet::new();
        for batch in &batches {
            assert_eq!(batch.len(), 3);
            let bucket_of = |i: usize| buckets.iter().find(|(_, v)| v.contains(&i)).unwrap().0;
            assert!(batch.iter().all(|&i| bucket_of(i) == bucket_of(batch[0])));
            assert!(batch.iter().all(|&i| seen.insert(i)), "an index twice");
        }
    }

    #[test]
    fn order_is_reproducible_per_epoch_and_changes_across_epochs() {
        let buckets = buckets();
        let streams = Streams::new(7);
        let first = epoch_batches(&buckets, 2, &streams, 3);
        assert_eq!(first, epoch_batches(&buckets, 2, &streams, 3));
        assert_ne!(first, epoch_batches(&buckets, 2, &streams, 4));
        let orders: BTreeSet<Vec<Vec<usize>>> = (0..5)
            .map(|e| epoch_batches(&buckets, 2, &streams, e))
            .collect();
        assert!(orders.len() > 1);
    }
}
