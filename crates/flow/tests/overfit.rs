//! End to end on the CPU: a small DiT trained with flow matching on one fixed
//! latent/caption pair (AdamW, clipping, warmup schedule) drives its velocity
//! loss below a tenth of the start, and Euler sampling from fixed noise then
//! lands near that latent.

use std::ops::ControlFlow;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use ssdit_flow::{
    Loss, Sampler, SamplerConfig, interpolate, sample_noise, sample_timesteps, velocity_target,
};
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig};
use ssdit_optim::{AdamWConfig, CosineWithWarmup, clip_grad_norm};

type Inner = NdArray<f32>;
type Train = Autodiff<Inner>;

const BATCH: usize = 8;
const STEPS: u64 = 300;
const LR: f64 = 6e-3;
const LATENT: [usize; 4] = [1, 16, 8, 8];

fn small_dit() -> SingleStreamDiTConfig {
    SingleStreamDiTConfig::new()
        .with_hidden_size(64)
        .with_depth(2)
        .with_num_heads(4)
        .with_refiner_depth(1)
        .with_text_embed_dim(32)
        .with_max_token_length(8)
        .with_dropout(0.0)
}

/// Velocity MSE over a fixed set of (noise, t) draws: a deterministic yardstick.
fn eval_loss(
    model: &SingleStreamDiT<Inner>,
    data: &Tensor<Inner, 4>,
    text: &Tensor<Inner, 3>,
    noise: &Tensor<Inner, 4>,
    t: &Tensor<Inner, 1>,
) -> f32 {
    let x_t = interpolate(noise.clone(), data.clone(), t.clone());
    let v = model.forward(x_t, t.clone(), text.clone());
    Loss::Mse
        .compute(v, velocity_target(noise.clone(), data.clone()))
        .into_scalar()
}

#[test]
fn small_dit_overfits_one_pair_and_samples_it_back() {
    let device = Default::default();
    let mut model = small_dit().init_seeded::<Train>(&device, 7).unwrap();
    Inner::seed(&device, 11);
    let latent = Tensor::<Train, 4>::random(LATENT, Distribution::Normal(0.0, 1.0), &device);
    let caption = Tensor::<Train, 3>::random([1, 8, 32], Distribution::Normal(0.0, 1.0), &device);
    let data = latent.clone().repeat_dim(0, BATCH); // [BATCH, 16, 8, 8]
    let text = caption.clone().repeat_dim(0, BATCH); // [BATCH, 8, 32]

    let eval_noise =
        Tensor::<Inner, 4>::random([BATCH, 16, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let eval_t = Tensor::<Inner, 1>::from_floats(
        std::array::from_fn::<f32, BATCH, _>(|i| (i as f32 + 0.5) / BATCH as f32),
        &device,
    );
    let (eval_data, eval_text) = (data.clone().inner(), text.clone().inner());
    let before = eval_loss(&model.valid(), &eval_data, &eval_text, &eval_noise, &eval_t);

    let schedule = CosineWithWarmup::new(LR, 15, STEPS).unwrap();
    let mut optim = AdamWConfig::new().init::<Train>().unwrap();
    for step in 0..STEPS {
        let t = sample_timesteps::<Train>(BATCH, 1.0, &device).unwrap();
        let noise = sample_noise::<Train>([BATCH, 16, 8, 8], 0.0, &device).unwrap();
        let x_t = interpolate(noise.clone(), data.clone(), t.clone());
        let prediction = model.forward(x_t, t, text.clone());
        let loss = Loss::Mse.compute(prediction, velocity_target(noise, data.clone()));
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_grad_norm(&model, &mut grads, 1.0).unwrap();
        model = optim.step(schedule.lr(step), model, grads).unwrap();
    }
    let trained = model.valid();
    let after = eval_loss(&trained, &eval_data, &eval_text, &eval_noise, &eval_t);
    eprintln!("velocity loss {before} -> {after}");
    assert!(
        after < 0.1 * before,
        "velocity loss {before} -> {after} after {STEPS} steps"
    );

    let sampler = Sampler::new(&SamplerConfig::new().with_steps(30).with_cfg(1.0)).unwrap();
    let guidance = sampler.guidance(caption.inner()).unwrap();
    Inner::seed(&device, 99);
    let x0 = Tensor::<Inner, 4>::random(LATENT, Distribution::Normal(0.0, 1.0), &device);
    let velocity = |x, t, text| trained.forward(x, t, text);
    let sample = sampler
        .sample(&velocity, x0.clone(), &guidance, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let target = latent.inner();
    let relative = |x: Tensor<Inner, 4>| -> f32 {
        let diff: f32 = (x - target.clone()).square().sum().sqrt().into_scalar();
        diff / target.clone().square().sum().sqrt().into_scalar()
    };
    let (start, end) = (relative(x0), relative(sample));
    eprintln!("relative distance to the latent: noise {start}, sample {end}");
    // Measured: noise starts at relative distance ≈ 1.39, the sample lands at ≈ 0.37
    // after 300 steps (≈ 0.29 after 600); an untrained model stays near the noise.
    assert!(
        end < 0.5,
        "Euler sample lands at relative L2 distance {end} from the training latent \
         (noise started at {start}); velocity loss {before} -> {after}"
    );
}
