//! The float parameters of a module: id, dotted path and shape.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

/// One float parameter of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// Its id in this module instance.
    pub id: ParamId,
    /// Its dotted module path (`blocks.0.attn.qkv.weight`), stable across runs.
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every float parameter of `module`, in visiting order.
pub fn float_params<B: Backend, M: Module<B>>(module: &M) -> Vec<ParamInfo> {
    let mut lister = Lister {
        path: Vec::new(),
        params: Vec::new(),
    };
    module.visit(&mut lister);
    lister.params
}

struct Lister {
    path: Vec<String>,
    params: Vec<ParamInfo>,
}

impl<B: Backend> ModuleVisitor<B> for Lister {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.params.push(ParamInfo {
            id: param.id,
            path: self.path.join("."),
            shape: param.lazy_shape().to_vec(),
        });
    }
}
