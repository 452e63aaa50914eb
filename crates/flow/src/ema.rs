//! Exponential moving average of a model's weights (the seed's
//! `AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))`).
//!
//! The first update copies the weights; later ones move each float parameter
//! towards the live one: `ema ← ema + (1 − decay)·(param − ema)` (PyTorch's
//! `lerp`, i.e. `decay·ema + (1 − decay)·param`). Parameters are matched by
//! their module path, so an EMA restored from a checkpoint pairs with a model
//! loaded separately.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

use crate::error::{Error, Result, invalid};

/// The seed's EMA decay.
pub const DEFAULT_EMA_DECAY: f64 = 0.999;

/// An EMA copy of a module `M` on backend `B` (give it the inner,
/// non-autodiff module: `model.valid()`).
#[derive(Debug, Clone)]
pub struct Ema<B: Backend, M: Module<B>> {
    decay: f64,
    module: Option<M>,
    updates: u64,
    backend: std::marker::PhantomData<B>,
}

impl<B: Backend, M: Module<B>> Ema<B, M> {
    /// An empty average: the first [`update`](Self::update) copies the model.
    pub fn new(decay: f64) -> Result<Self> {
        validate_decay(decay)?;
        Ok(Self {
            decay,
            module: None,
            updates: 0,
            backend: std::marker::PhantomData,
        })
    }

    /// An average restored from a checkpoint: `module` holds the averaged
    /// weights after `updates` updates.
    pub fn restore(module: M, decay: f64, updates: u64) -> Result<Self> {
        validate_decay(decay)?;
        Ok(Self {
            decay,
            module: (updates > 0).then_some(module),
            updates,
            backend: std::marker::PhantomData,
        })
    }

    /// The decay.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// How many updates have been averaged (AveragedModel's `n_averaged`).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The averaged module, once there has been an update.
    pub fn module(&self) -> Option<&M> {
        self.module.as_ref()
    }

    /// Folds the current weights of `model` into the average.
    pub fn update(&mut self, model: &M) -> Result<()> {
        let averaged = match self.module.take() {
            None => {
                tracing::debug!("ema: first update copies the model");
                // Visiting materialises lazily initialised parameters, so the
                // clone copies their values instead of its own initialiser.
                model.visit(&mut Collector::<B>::default());
                model.clone()
            }
            Some(ema) => blend(ema, model, 1.0 - self.decay)?,
        };
        self.module = Some(averaged);
        self.updates += 1;
        Ok(())
    }
}

fn validate_decay(decay: f64) -> Result<()> {
    if (0.0..=1.0).contains(&decay) {
        Ok(())
    } else {
        Err(invalid("ema decay", format!("{decay} is outside [0, 1]")))
    }
}

/// `ema + weight·(model − ema)` for every float parameter, matched by path.
fn blend<B: Backend, M: Module<B>>(ema: M, model: &M, weight: f64) -> Result<M> {
    let mut collector = Collector::<B>::default();
    model.visit(&mut collector);
    let mut blender = Blender {
        live: collector.params,
        path: Vec::new(),
        weight,
        error: None,
    };
    let averaged = ema.map(&mut blender);
    if let Some(error) = blender.error {
        return Err(error);
    }
    if let Some(path) = blender.live.keys().next() {
        return Err(Error::EmaMismatch {
            path: path.clone(),
            reason: "the model has it, the EMA copy does not".into(),
        });
    }
    Ok(averaged)
}

/// The float parameters of the live model by path.
struct Collector<B: Backend> {
    path: Vec<String>,
    params: HashMap<String, (Vec<usize>, TensorPrimitive<B>)>,
}

impl<B: Backend> Default for Collector<B> {
    fn default() -> Self {
        Self {
            path: Vec::new(),
            params: HashMap::new(),
        }
    }
}

impl<B: Backend> ModuleVisitor<B> for Collector<B> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let tensor = param.val();
        self.params.insert(
            self.path.join("."),
            (tensor.dims().to_vec(), tensor.into_primitive()),
        );
    }
}

/// Moves each EMA parameter towards the live one with the same path.
struct Blender<B: Backend> {
    live: HashMap<String, (Vec<usize>, TensorPrimitive<B>)>,
    path: Vec<String>,
    weight: f64,
    error: Option<Error>,
}

impl<B: Backend> ModuleMapper<B> for Blender<B> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, ema, mapper) = param.consume();
        let path = self.path.join(".");
        let blended = match self.live.remove(&path) {
            Some((shape, live)) if shape == ema.dims() => {
                let live = Tensor::<B, D>::from_primitive(live);
                ema.clone() + (live - ema).mul_scalar(self.weight)
            }
            Some((shape, _)) => {
                self.error.get_or_insert(Error::EmaMismatch {
                    path,
                    reason: format!(
                        "shape {:?} in the model, {:?} in the EMA",
                        shape,
                        ema.dims()
                    ),
                });
                ema
            }
            None => {
                self.error.get_or_insert(Error::EmaMismatch {
                    path,
                    reason: "the EMA copy has it, the model does not".into(),
                });
                ema
            }
        };
        Param::from_mapped_value(id, blended, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};

    type B = NdArray<f32>;

    fn weights(linear: &Linear<B>) -> Vec<f32> {
        linear.weight.val().into_data().to_vec().unwrap()
    }

    fn shifted(linear: &Linear<B>, by: f32) -> Linear<B> {
        let mut out = linear.clone();
        out.weight = out.weight.map(|w| w.add_scalar(by));
        out
    }

    #[test]
    fn first_update_copies_then_averages() {
        let device = Default::default();
        let model = LinearConfig::new(3, 2).init::<B>(&device);
        let mut ema = Ema::new(0.9).unwrap();
        assert!(ema.module().is_none());
        ema.update(&model).unwrap();
        assert_eq!(weights(ema.module().unwrap()), weights(&model));

        let moved = shifted(&model, 1.0);
        ema.update(&moved).unwrap();
        ema.update(&moved).unwrap();
        // Two steps towards +1 with decay 0.9: 1 − 0.9² = 0.19.
        for (e, m) in weights(ema.module().unwrap()).iter().zip(weights(&model)) {
            assert!((e - (m + 0.19)).abs() < 1e-6, "{e} vs {m}");
        }
        assert_eq!(ema.updates(), 3);
    }

    #[test]
    fn restored_average_pairs_with_a_separately_built_model() {
        let device = Default::default();
        let model = LinearConfig::new(3, 2).init::<B>(&device);
        // A fresh module has new parameter ids: matching is by path.
        let stored = shifted(&LinearConfig::new(3, 2).init::<B>(&device), 0.0);
        let mut ema = Ema::restore(stored.clone(), 0.5, 10).unwrap();
        ema.update(&model).unwrap();
        let got = weights(ema.module().unwrap());
        let want: Vec<f32> = weights(&stored)
            .iter()
            .zip(weights(&model))
            .map(|(s, m)| s + 0.5 * (m - s))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn mismatched_shapes_and_decays_are_errors() {
        let device = Default::default();
        let mut ema = Ema::restore(LinearConfig::new(3, 2).init::<B>(&device), 0.99, 1).unwrap();
        let error = ema
            .update(&LinearConfig::new(4, 2).init::<B>(&device))
            .unwrap_err();
        assert!(error.to_string().contains("weight"), "{error}");
        assert!(Ema::<B, Linear<B>>::new(1.5).is_err());
    }
}
