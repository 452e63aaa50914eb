//! 8-bit AdamW tracks fp32 AdamW on a small overfitting task, with about a
//! quarter of the state memory.

use burn::backend::{Autodiff, NdArray};
use burn::module::{ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use ssdit_optim::{AdamW, AdamWConfig, MomentPrecision};

type Inner = NdArray<f32>;
type AB = Autodiff<Inner>;

#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
    act: Relu,
}

impl<B: Backend> Mlp<B> {
    fn new(device: &Device<B>) -> Self {
        Self {
            hidden: LinearConfig::new(32, 128).init(device),
            out: LinearConfig::new(128, 16).init(device),
            act: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out.forward(self.act.forward(self.hidden.forward(x)))
    }
}

const STEPS: usize = 300;

struct Materialise;

impl<B: Backend> ModuleVisitor<B> for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Trains a copy of `model` on a fixed batch; returns the loss after each step
/// and the optimizer's state bytes.
fn train(
    model: Mlp<AB>,
    x: &Tensor<AB, 2>,
    y: &Tensor<AB, 2>,
    moments: MomentPrecision,
) -> (Vec<f32>, usize) {
    let mut optim: AdamW<AB> = AdamWConfig::new().with_moments(moments).init().unwrap();
    let mut model = model;
    let mut losses = Vec::with_capacity(STEPS);
    for _ in 0..STEPS {
        let loss = (model.forward(x.clone()) - y.clone()).square().mean();
        losses.push(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        eprintln!(
            "grads {} require {}",
            grads.len(),
            model.hidden.weight.val().is_require_grad()
        );
        model = optim.step(3e-3, model, grads).unwrap();
    }
    (losses, optim.state_bytes())
}

#[test]
fn eight_bit_adamw_tracks_fp32_adamw() {
    let device = Default::default();
    Inner::seed(&device, 3);
    let x = Tensor::<AB, 2>::random([64, 32], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<AB, 2>::random([64, 16], Distribution::Normal(0.0, 1.0), &device);
    let model = Mlp::<AB>::new(&device);
    // Materialise the lazily initialised weights, so both runs start from
    // the same ones (a clone of a lazy parameter initialises on its own).
    model.visit(&mut Materialise);

    let (full, full_bytes) = train(model.clone(), &x, &y, MomentPrecision::Fp32);
    let eight_bit = MomentPrecision::Blockwise8Bit {
        block_size: 256,
        min_numel: 1024,
    };
    let (quant, quant_bytes) = train(model, &x, &y, eight_bit);

    let (start, end_full, end_quant) = (full[0], full[STEPS - 1], quant[STEPS - 1]);
    assert_eq!(quant[0], start);
    assert!(end_full < 1e-3 * start, "fp32 AdamW: {start} -> {end_full}");
    assert!(
        end_quant < 0.1 * start,
        "8-bit AdamW: {start} -> {end_quant}"
    );
    // The curves stay together: largest gap relative to the starting loss.
    let gap = full
        .iter()
        .zip(&quant)
        .map(|(a, b)| (a - b).abs() / start)
        .fold(0.0f32, f32::max);
    assert!(
        gap < 0.05,
        "loss curves differ by up to {gap} of the initial loss (fp32 end {end_full}, 8-bit end {end_quant})"
    );

    // 4·2 bytes per parameter in f32, ~2 in 8-bit (+ f32 biases, block maxima).
    let params = 32 * 128 + 128 + 128 * 16 + 16;
    assert_eq!(full_bytes, 8 * params);
    let per_param = quant_bytes as f64 / params as f64;
    assert!(
        per_param < 2.3,
        "8-bit state: {per_param:.3} bytes per parameter"
    );
}
