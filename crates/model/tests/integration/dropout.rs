//! Dropout (on the fusion blocks' attention and feed-forward outputs) is
//! active only on an autodiff backend, as burn's `Dropout` is.

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig};
use ssdit_parity::{Fixture, fixtures_root};

fn model<B: Backend>(dropout: f64) -> SingleStreamDiT<B> {
    let dir = fixtures_root().join("dit");
    SingleStreamDiTConfig::from_seed_file(&dir.join("config.json"))
        .unwrap()
        .with_dropout(dropout)
        .init::<B>(&Default::default())
        .unwrap()
        .load_file(&dir.join("dit.safetensors"), None)
        .unwrap()
}

fn velocity<B: Backend>(model: &SingleStreamDiT<B>) -> Vec<f32> {
    let fixture = Fixture::open(&fixtures_root().join("dit")).unwrap();
    let device = Default::default();
    let x = Tensor::<B, 4>::from_data(fixture.tensor("x").unwrap(), &device);
    let t = Tensor::<B, 1>::from_data(fixture.tensor("t").unwrap(), &device);
    let text = Tensor::<B, 3>::from_data(fixture.tensor("text_embeds").unwrap(), &device);
    model.forward(x, t, text).into_data().to_vec().unwrap()
}

#[test]
fn dropout_acts_only_when_training() {
    let plain = velocity(&model::<NdArray<f32>>(0.0));
    assert_eq!(
        velocity(&model::<NdArray<f32>>(0.5)),
        plain,
        "inference ignores dropout"
    );

    type Train = Autodiff<NdArray<f32>>;
    assert_eq!(
        velocity(&model::<Train>(0.0)),
        plain,
        "no dropout, same forward"
    );
    let training = model::<Train>(0.5);
    let first = velocity(&training);
    assert_ne!(first, plain, "training drops");
    assert_ne!(velocity(&training), first, "a fresh mask each forward");
}
