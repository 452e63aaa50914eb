//! AdamW against an independent f64 transcription of `torch.optim.AdamW`,
//! global clipping, and bit-exact save/restore of the state.

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, StandardNormal};
use ssdit_optim::{AdamWConfig, MomentPrecision, OptimizerState, clip_grad_norm, float_params};

type B = NdArray<f32>;
type AB = Autodiff<B>;

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Inputs and targets drawn from their own generator seeded with `seed`
/// (not burn's global one, which the tests running beside it also draw from).
fn batch(seed: u64, inputs: usize) -> (Tensor<AB, 2>, Tensor<AB, 2>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = |shape: [usize; 2]| {
        let values: Vec<f32> = (0..shape[0] * shape[1])
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    };
    (normal([8, inputs]), normal([8, 4]))
}

fn loss_grads(model: &Linear<AB>, seed: u64) -> GradientsParams {
    let (x, y) = batch(seed, 6);
    let loss = (model.forward(x) - y).square().mean();
    GradientsParams::from_grads(loss.backward(), model)
}

/// PyTorch's `_single_tensor_adam` with decoupled weight decay, in f64.
struct Reference {
    m: Vec<f64>,
    v: Vec<f64>,
    step: i32,
}

impl Reference {
    fn step(&mut self, p: &mut [f64], g: &[f64], lr: f64, wd: f64) {
        self.step += 1;
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let bc1 = 1.0 - b1.powi(self.step);
        let bc2 = 1.0 - b2.powi(self.step);
        for i in 0..p.len() {
            p[i] *= 1.0 - lr * wd;
            self.m[i] += (1.0 - b1) * (g[i] - self.m[i]);
            self.v[i] = self.v[i] * b2 + (1.0 - b2) * g[i] * g[i];
            let denom = self.v[i].sqrt() / bc2.sqrt() + eps;
            p[i] -= lr / bc1 * self.m[i] / denom;
        }
    }
}

#[test]
fn fp32_adamw_follows_the_pytorch_update() {
    let device = Default::default();
    let mut model = LinearConfig::new(6, 4).init::<AB>(&device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.05)
        .init::<AB>()
        .unwrap();
    let mut want = values(model.weight.val().inner());
    let n = want.len();
    let mut reference = Reference {
        m: vec![0.0; n],
        v: vec![0.0; n],
        step: 0,
    };
    for step in 0..5 {
        let grads = loss_grads(&model, step);
        let g = values(grads.get::<B, 2>(model.weight.id).unwrap());
        let lr = 1e-2 * (step + 1) as f64;
        reference.step(&mut want, &g, lr, 0.05);
        model = optim.step(lr, model, grads).unwrap();
        let got = values(model.weight.val().inner());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "step {step}: {a} vs {b}");
        }
    }
    assert_eq!(optim.steps(), 5);
    assert!(model.weight.val().is_require_grad());
}

#[test]
fn clipping_scales_to_the_max_norm_and_reports_the_total() {
    let device = Default::default();
    let model = LinearConfig::new(6, 4).init::<AB>(&device);
    let grads = loss_grads(&model, 7);
    let all: Vec<f64> = values(grads.get::<B, 2>(model.weight.id).unwrap())
        .into_iter()
        .chain(values(
            grads.get::<B, 1>(model.bias.as_ref().unwrap().id).unwrap(),
        ))
        .collect();
    let total = all.iter().map(|g| g * g).sum::<f64>().sqrt();

    let mut loose = loss_grads(&model, 7);
    let reported = clip_grad_norm(&model, &mut loose, total * 2.0).unwrap();
    assert!((reported - total).abs() < 1e-5 * total);
    let unchanged = values(loose.get::<B, 2>(model.weight.id).unwrap());
    assert_eq!(
        unchanged,
        values(grads.get::<B, 2>(model.weight.id).unwrap())
    );

    let mut tight = loss_grads(&model, 7);
    let max_norm = total / 4.0;
    clip_grad_norm(&model, &mut tight, max_norm).unwrap();
    let clipped: Vec<f64> = values(tight.get::<B, 2>(model.weight.id).unwrap())
        .into_iter()
        .chain(values(
            tight.get::<B, 1>(model.bias.as_ref().unwrap().id).unwrap(),
        ))
        .collect();
    let norm = clipped.iter().map(|g| g * g).sum::<f64>().sqrt();
    assert!(
        (norm - max_norm).abs() < 1e-5 * max_norm,
        "{norm} vs {max_norm}"
    );
    for (c, g) in clipped.iter().zip(&all) {
        assert!((c - g * max_norm / (total + 1e-6)).abs() < 1e-6);
    }
    assert!(clip_grad_norm(&model, &mut tight, 0.0).is_err());
}

/// Gives every parameter a fresh id, as a model rebuilt and reloaded would have.
struct FreshIds;

impl<Bk: Backend> ModuleMapper<Bk> for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let (_, tensor, _) = param.consume();
        Param::initialized(ParamId::new(), tensor)
    }
}

fn resume_is_bit_exact(moments: MomentPrecision, inputs: usize) {
    let device = Default::default();
    let config = AdamWConfig::new().with_moments(moments);
    let mut model = LinearConfig::new(inputs, 4).init::<AB>(&device);
    let mut optim = config.init::<AB>().unwrap();
    let step = |model: Linear<AB>, optim: &mut ssdit_optim::AdamW<AB>, seed: u64| {
        let (x, y) = batch(seed, inputs);
        let loss = (model.forward(x) - y).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-2, model, grads).unwrap()
    };
    for seed in 0..3 {
        model = step(model, &mut optim, seed);
    }
    let saved = optim.state(&model).unwrap();
    let bytes = saved.to_safetensors().unwrap();
    let json = saved.meta_json().unwrap();

    let mut resumed_model = model.clone().map(&mut FreshIds);
    let mut resumed = config.init::<AB>().unwrap();
    let restored = OptimizerState::from_parts(&bytes, &json).unwrap();
    resumed
        .load_state(&resumed_model, &restored, &device)
        .unwrap();
    assert_eq!(resumed.steps(), 3);
    for seed in 3..6 {
        model = step(model, &mut optim, seed);
        resumed_model = step(resumed_model, &mut resumed, seed);
    }
    assert_eq!(
        values(model.weight.val().inner()),
        values(resumed_model.weight.val().inner()),
        "{moments:?}"
    );
    assert_eq!(optim.state_bytes(), resumed.state_bytes());
}

#[test]
fn fp32_state_resumes_bit_for_bit() {
    resume_is_bit_exact(MomentPrecision::Fp32, 6);
}

#[test]
fn blockwise_8bit_state_resumes_bit_for_bit() {
    resume_is_bit_exact(
        MomentPrecision::Blockwise8Bit {
            block_size: 256,
            min_numel: 1024,
        },
        300,
    );
}

#[test]
fn state_for_another_model_is_refused() {
    let device = Default::default();
    let model = LinearConfig::new(6, 4).init::<AB>(&device);
    let mut optim = AdamWConfig::new().init::<AB>().unwrap();
    let grads = loss_grads(&model, 1);
    let model = optim.step(1e-3, model, grads).unwrap();
    let saved = optim.state(&model).unwrap();
    assert_eq!(saved.meta.params.len(), 2);
    assert_eq!(saved.tensors.len(), 4);

    let other = LinearConfig::new(5, 4).init::<AB>(&device);
    let mut fresh = AdamWConfig::new().init::<AB>().unwrap();
    let error = fresh.load_state(&other, &saved, &device).unwrap_err();
    assert!(error.to_string().contains("weight"), "{error}");

    let eight_bit = AdamWConfig::new().with_moments(MomentPrecision::Blockwise8Bit {
        block_size: 4,
        min_numel: 1,
    });
    let mut mismatched = eight_bit.init::<AB>().unwrap();
    assert!(mismatched.load_state(&model, &saved, &device).is_err());
    assert!(OptimizerState::from_parts(b"not safetensors", &saved.meta_json().unwrap()).is_err());
}

#[test]
fn paths_name_parameters() {
    let device = Default::default();
    let model = LinearConfig::new(6, 4).init::<B>(&device);
    let paths: Vec<String> = float_params(&model).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, vec!["weight", "bias"]);
}
