//! Which implementation an operation takes, decided from the backend type
//! and the tensors' dtype, and the conversions between burn's tensors and
//! the CPU kernels' arrays once it is decided.
//!
//! Rust has no specialisation, so the backend is recognised by `TypeId` and
//! its tensor primitives are recovered by a checked downcast: no `unsafe`,
//! and any backend not named here takes the composite path.

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorPrimitive};
use ndarray::{ArcArray, ArrayD, IxDyn};

/// The CPU backend the kernels serve.
pub(crate) type Cpu = NdArray<f32>;

/// A float tensor of [`Cpu`] under autodiff: its value and its graph node.
pub(crate) type TrackedTensor = FloatTensor<Autodiff<Cpu>>;

/// An f32 array of the CPU backend.
pub(crate) type CpuArray = ArcArray<f32, IxDyn>;

/// The implementation an operation takes.
pub(crate) enum Path {
    /// The CPU kernels, no gradient.
    Cpu,
    /// The CPU kernels recorded on the autodiff graph with their backward
    /// pass, under the backend's checkpointing strategy.
    Tracked(Strategy),
    /// burn's tensor ops.
    Composite,
}

/// The autodiff checkpointing strategies of the CPU training backends.
pub(crate) enum Strategy {
    None,
    Balanced,
}

impl Path {
    /// The path for an operation of backend `B` on tensors of `dtypes`.
    pub fn of<B: Backend>(dtypes: &[DType]) -> Self {
        if dtypes.iter().any(|&dtype| dtype != DType::F32) {
            return Self::Composite;
        }
        let backend = TypeId::of::<B>();
        if TypeId::of::<FloatTensor<B>>() == TypeId::of::<NdArrayTensor>() {
            Self::Cpu
        } else if backend == TypeId::of::<Autodiff<Cpu, NoCheckpointing>>() {
            Self::Tracked(Strategy::None)
        } else if backend == TypeId::of::<Autodiff<Cpu, BalancedCheckpointing>>() {
            Self::Tracked(Strategy::Balanced)
        } else {
            Self::Composite
        }
    }
}

/// Converts `value` to `U`, which [`Path::of`] has established it is.
pub(crate) fn cast<T: 'static, U: 'static>(value: T) -> U {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
        .expect("the path was chosen for this tensor type")
}

/// The primitive of a float tensor, as type `P`.
pub(crate) fn primitive<P: 'static, B: Backend, const D: usize>(tensor: Tensor<B, D>) -> P {
    cast(tensor.into_primitive().tensor())
}

/// The float tensor of backend `B` holding primitive `P`.
pub(crate) fn tensor<B: Backend, P: 'static, const D: usize>(primitive: P) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(cast(primitive)))
}

/// The f32 array of a CPU tensor.
pub(crate) fn array(tensor: NdArrayTensor) -> CpuArray {
    match tensor {
        NdArrayTensor::F32(storage) => storage.into_shared(),
        _ => unreachable!("the path was chosen for f32 tensors"),
    }
}

/// A CPU tensor holding `array`.
pub(crate) fn cpu_tensor<D: ndarray::Dimension>(array: ndarray::Array<f32, D>) -> NdArrayTensor {
    array.into_dyn().into_shared().into()
}

/// Hands the gradients computed for each input of `ops` to the inputs that
/// are tracked.
pub(crate) fn register<S, const N: usize>(
    ops: &Ops<S, N>,
    grads: &mut Gradients,
    values: [NdArrayTensor; N],
) {
    register_on::<Cpu, S, N>(ops, grads, values);
}

/// [`register`] for an operation recorded on `Autodiff<B, _>`, any `B`.
pub(crate) fn register_on<B: Backend, S, const N: usize>(
    ops: &Ops<S, N>,
    grads: &mut Gradients,
    values: [FloatTensor<B>; N],
) {
    for (parent, value) in ops.parents.iter().zip(values) {
        if let Some(node) = parent {
            grads.register::<B>(node.id, value);
        }
    }
}

/// `array` in row-major layout (itself when it already is).
pub(crate) fn row_major(array: CpuArray) -> CpuArray {
    if array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned().into_shared()
    }
}

/// The values of a row-major array.
pub(crate) fn values(array: &CpuArray) -> &[f32] {
    array.as_slice().expect("a row-major array")
}

/// A CPU tensor of `shape` holding `values` in row-major order.
pub(crate) fn shaped(values: Vec<f32>, shape: &[usize]) -> NdArrayTensor {
    cpu_tensor(
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("as many values as the shape holds"),
    )
}
