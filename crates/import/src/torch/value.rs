//! The values a `torch.save` pickle can hold, as far as this reader goes:
//! Python scalars, strings, bytes, lists, tuples, (ordered) dicts, and
//! tensors — the latter as references into the archive's storages, read on
//! demand by [`crate::torch::TorchFile::read_f32`].

use std::fmt;

/// A value decoded from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// A `dict` or `OrderedDict`, in insertion order (Python's order).
    Dict(Dict),
    Tensor(TensorRef),
}

/// A dict's entries in insertion order; a repeated key keeps its first
/// position and its last value, as in Python.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dict(pub(crate) Vec<(Value, Value)>);

impl Dict {
    /// The value under the string key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find_map(|(k, v)| match k {
            Value::Str(s) if s == key => Some(v),
            _ => None,
        })
    }

    /// The value under the integer key `key`.
    pub fn get_int(&self, key: i64) -> Option<&Value> {
        self.0.iter().find_map(|(k, v)| match k {
            Value::Int(i) if *i == key => Some(v),
            _ => None,
        })
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys, shown for messages (`'latents', 'height', 3`).
    pub fn key_list(&self) -> String {
        self.0
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Value {
    /// The Python type name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Float(_) => "float",
            Self::Str(_) => "str",
            Self::Bytes(_) => "bytes",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Dict(_) => "dict",
            Self::Tensor(_) => "tensor",
        }
    }

    /// The dict, if this is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The integer, if this is an `int` (not a `bool`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number, if this is an `int` or a `float`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The string, if this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a `list` or a `tuple`.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Self::List(items) | Self::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The tensor reference, if this is a tensor.
    pub fn as_tensor(&self) -> Option<&TensorRef> {
        match self {
            Self::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// A short Python-like rendering for messages (containers are summarised).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => {
                let shown: String = s.chars().take(40).collect();
                write!(f, "{shown:?}")
            }
            Self::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Self::List(items) => write!(f, "<list of {}>", items.len()),
            Self::Tuple(items) => write!(f, "<tuple of {}>", items.len()),
            Self::Dict(d) => write!(f, "<dict of {}>", d.len()),
            Self::Tensor(t) => write!(f, "<{} tensor {:?}>", t.storage.dtype, t.shape),
        }
    }
}

/// Element types of PyTorch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// The dtype of a legacy typed-storage class name (`FloatStorage`…).
    pub(crate) fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F64 => "float64",
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
            Self::I64 => "int64",
            Self::I32 => "int32",
            Self::I16 => "int16",
            Self::I8 => "int8",
            Self::U8 => "uint8",
            Self::Bool => "bool",
        })
    }
}

/// A storage of the archive: `data/<key>` holding `numel` elements of `dtype`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: DType,
    pub numel: usize,
}

/// A tensor: a strided view of a storage. Validated when built: the view
/// lies inside its storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: StorageRef,
    /// Offset of the first element, in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

impl TensorRef {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype
    }

    /// Whether the view is the row-major layout of its shape.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&size, &stride) in self.shape.iter().zip(&self.stride).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected *= size;
        }
        true
    }

    /// Storage indices of the elements, in row-major order of the shape.
    pub(crate) fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        let total = self.numel();
        let mut position = vec![0usize; self.shape.len()];
        let mut index = self.offset;
        (0..total).map(move |n| {
            let current = index;
            if n + 1 < total {
                // Odometer increment over the shape, from the last axis.
                for axis in (0..self.shape.len()).rev() {
                    position[axis] += 1;
                    index += self.stride[axis];
                    if position[axis] < self.shape[axis] {
                        break;
                    }
                    index -= self.stride[axis] * self.shape[axis];
                    position[axis] = 0;
                }
            }
            current
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: Vec<usize>, stride: Vec<usize>, offset: usize) -> TensorRef {
        TensorRef {
            storage: StorageRef {
                key: "0".into(),
                dtype: DType::F32,
                numel: 100,
            },
            offset,
            shape,
            stride,
        }
    }

    #[test]
    fn strided_views_visit_storage_in_row_major_order() {
        let t = tensor(vec![2, 3], vec![3, 1], 0);
        assert!(t.is_contiguous());
        assert_eq!(t.indices().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        // The transpose of a [3, 2] row-major tensor.
        let t = tensor(vec![2, 3], vec![1, 2], 1);
        assert!(!t.is_contiguous());
        assert_eq!(t.indices().collect::<Vec<_>>(), vec![1, 3, 5, 2, 4, 6]);
        let scalar = tensor(vec![], vec![], 7);
        assert_eq!(scalar.indices().collect::<Vec<_>>(), vec![7]);
        let empty = tensor(vec![0, 4], vec![4, 1], 0);
        assert_eq!(empty.indices().count(), 0);
        assert!(tensor(vec![1, 4], vec![99, 1], 0).is_contiguous());
    }

    #[test]
    fn dicts_look_up_by_string_and_integer_keys() {
        let dict = Dict(vec![
            (Value::Str("a".into()), Value::Int(1)),
            (Value::Int(0), Value::Bool(true)),
        ]);
        assert_eq!(dict.get("a"), Some(&Value::Int(1)));
        assert_eq!(dict.get_int(0), Some(&Value::Bool(true)));
        assert_eq!(dict.get("b"), None);
        assert_eq!(dict.key_list(), "\"a\", 0");
        assert_eq!(Value::Bool(true).as_int(), None);
        assert_eq!(Value::Int(3).as_f64(), Some(3.0));
    }
}
