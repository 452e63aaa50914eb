//! Streamed samples (`train.load_entire_dataset = false`: read from the
//! store per batch) give the same batches — the same order and the same
//! tensors for a seed — as samples held in RAM, and train the same.
//!
//! Alone in its test binary: a training running beside it on the same
//! backend (another test) makes the comparison inexact.

mod common;

use common::{AB, Fixture};
use ssdit_core::config::TrainConfig;
use ssdit_dataset::Bucket;
use ssdit_train::Trainer;
use ssdit_train::data::{BatchOptions, assemble, epoch_batches};
use ssdit_train::rng::{Purpose, Streams};
use ssdit_train::synthetic::SyntheticDataset;

#[test]
fn streamed_samples_give_the_same_batches_as_samples_in_ram() {
    let mut spec = SyntheticDataset::tiny("streamed", 5);
    spec.buckets.push(Bucket {
        width: 80,
        height: 48,
    });
    let fixture = Fixture::new(spec);
    let (ram, streamed) = (fixture.training_set(true), fixture.training_set(false));
    assert!(ram.in_ram() && !streamed.in_ram());
    assert_eq!(ram.samples(), streamed.samples());
    let buckets = ram.buckets(0..ram.len());
    assert_eq!(buckets, streamed.buckets(0..streamed.len()));

    let streams = Streams::new(7);
    let options = BatchOptions {
        latent_mean: 0.1,
        latent_std: 0.9,
        flip: true,
        text_dropout: 0.5,
    };
    for epoch in 0..2 {
        for (index, batch) in epoch_batches(&buckets, 2, &streams, epoch)
            .iter()
            .enumerate()
        {
            let from_ram = ram.tensors(batch).unwrap();
            let from_store = streamed.tensors(batch).unwrap();
            assert_eq!(from_ram, from_store, "epoch {epoch}, batch {index}");
            let rng = || streams.rng(Purpose::Batch, epoch, index as u64);
            assert_eq!(
                assemble(&from_ram, &options, &mut rng()),
                assemble(&from_store, &options, &mut rng()),
                "epoch {epoch}, batch {index}"
            );
        }
    }

    let config = TrainConfig {
        epochs: 2,
        batch_size: 2,
        accum_steps: 1,
        dropout: 0.0,
        flip: true,
        ..TrainConfig::default()
    };
    let mut in_ram: Trainer<AB> = fixture.trainer_on(&config, None, ram);
    let mut from_store: Trainer<AB> = fixture.trainer_on(&config, None, streamed);
    while !in_ram.finished() {
        let (a, b) = (in_ram.step().unwrap(), from_store.step().unwrap());
        assert_eq!((a.step, a.samples), (b.step, b.samples));
        assert!(
            (a.loss - b.loss).abs() <= 1e-6 * a.loss.abs().max(1.0),
            "step {}: loss {} in RAM, {} streamed",
            a.step,
            a.loss,
            b.loss
        );
    }
    assert!(from_store.finished());
}
