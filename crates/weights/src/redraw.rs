//! Weights drawn instead of loaded: the seeded stand-in models (`tiny`
//! encoders, random DiTs) replace every parameter by values computed from
//! the parameter's path and shape alone, so the same model comes out in every
//! process and on every backend, whatever the backend's global generator or
//! the order of initialisation.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;

/// `module` with every float parameter replaced by `rule(path, dims)`: its
/// values in row-major order, where `path` is the parameter's dotted name
/// (`blocks.0.attention_q.weight`, as checkpoints name it) and `dims` its
/// shape.
///
/// # Panics
/// If `rule` returns a number of values other than the shape holds.
pub fn redraw<B, M, F>(module: M, rule: F) -> M
where
    B: Backend,
    M: Module<B>,
    F: FnMut(&str, &[usize]) -> Vec<f32>,
{
    module.map(&mut Redraw {
        rule,
        path: Vec::new(),
    })
}

struct Redraw<F> {
    rule: F,
    path: Vec<String>,
}

impl<B, F> ModuleMapper<B> for Redraw<F>
where
    B: Backend,
    F: FnMut(&str, &[usize]) -> Vec<f32>,
{
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let path = self.path.join(".");
        let shape = param.lazy_shape();
        let device = param.lazy_device();
        let values = (self.rule)(&path, &shape.to_vec());
        assert_eq!(
            values.len(),
            shape.num_elements(),
            "redraw: the rule gave {} values for {path} of shape {:?}",
            values.len(),
            shape.to_vec()
        );
        let tensor = Tensor::from_data(TensorData::new(values, shape), &device);
        Param::initialized(param.id, tensor)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    type B = NdArray<f32>;

    #[derive(Module, Debug)]
    struct Pair<B: Backend> {
        first: Linear<B>,
        second: Vec<Linear<B>>,
    }

    #[test]
    fn the_rule_sees_each_parameter_by_path_and_shape() {
        let device = Default::default();
        let pair = Pair::<B> {
            first: LinearConfig::new(3, 2).init(&device),
            second: vec![LinearConfig::new(2, 1).with_bias(false).init(&device)],
        };
        let mut seen = Vec::new();
        let pair = redraw(pair, |path, dims| {
            seen.push((path.to_string(), dims.to_vec()));
            let count = dims.iter().product::<usize>();
            (0..count).map(|i| (seen.len() * 100 + i) as f32).collect()
        });
        assert_eq!(
            seen,
            [
                ("first.weight".to_string(), vec![3, 2]),
                ("first.bias".to_string(), vec![2]),
                ("second.0.weight".to_string(), vec![2, 1]),
            ]
        );
        let values = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().unwrap();
        assert_eq!(
            values(pair.first.weight.val()),
            [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
        );
        assert_eq!(values(pair.second[0].weight.val()), [300.0, 301.0]);
    }

    #[test]
    #[should_panic(expected = "redraw: the rule gave 1 values for weight of shape [3, 2]")]
    fn a_rule_giving_the_wrong_count_is_a_bug_named_by_path() {
        let device = Default::default();
        let linear: Linear<B> = LinearConfig::new(3, 2).with_bias(false).init(&device);
        redraw(linear, |_, _| vec![0.0]);
    }
}
