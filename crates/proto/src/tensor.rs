//! Validated conversions between [`Tensor`] records and `f32` / `u8` buffers.
//!
//! A tensor on the wire is `dtype + shape + little-endian bytes`. Nothing is trusted: every
//! read checks the dtype, the rank, that shape × dtype size neither overflows nor exceeds
//! [`MAX_TENSOR_BYTES`], and that the byte length matches exactly — a mismatch is an
//! [`Error`], never a panic or an oversized allocation.

use bytes::Bytes;
use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::v1::{Dtype, Tensor};

/// Largest tensor accepted, in bytes (1 GiB): far above any latent or embedding batch,
/// low enough that a forged shape cannot make a reader allocate unbounded memory.
pub const MAX_TENSOR_BYTES: usize = 1 << 30;

/// Largest rank accepted.
pub const MAX_RANK: usize = 8;

impl Dtype {
    /// Size of one element in bytes; `None` for [`Dtype::Unspecified`].
    pub fn size_bytes(self) -> Option<usize> {
        match self {
            Dtype::Unspecified => None,
            Dtype::F32 => Some(4),
            Dtype::F16 | Dtype::Bf16 => Some(2),
            Dtype::U8 => Some(1),
        }
    }

    /// Short lowercase name used in error messages (`f32`, `bf16`…).
    pub fn short_name(self) -> &'static str {
        match self {
            Dtype::Unspecified => "unspecified",
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::U8 => "u8",
        }
    }
}

impl Tensor {
    /// An `f32` tensor of `shape` holding `values` (row-major), little-endian on the wire.
    pub fn from_f32(values: &[f32], shape: &[usize]) -> Result<Self> {
        check_value_count(values.len(), shape)?;
        let mut data = Vec::with_capacity(values.len() * 4);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Self::from_parts(Dtype::F32, shape, data.into())
    }

    /// A `u8` tensor of `shape` holding `values` (masks, 8-bit images).
    pub fn from_u8(values: impl Into<Bytes>, shape: &[usize]) -> Result<Self> {
        let data = values.into();
        check_value_count(data.len(), shape)?;
        Self::from_parts(Dtype::U8, shape, data)
    }

    /// The tensor's dtype, rejecting unspecified and unknown values.
    pub fn checked_dtype(&self) -> Result<Dtype> {
        match Dtype::try_from(self.dtype) {
            Ok(Dtype::Unspecified) | Err(_) => Err(Error::UnknownDType(self.dtype)),
            Ok(dtype) => Ok(dtype),
        }
    }

    /// Checks dtype, rank, size bounds and byte length; returns the shape as `usize`s.
    pub fn validate(&self) -> Result<Vec<usize>> {
        let dtype = self.checked_dtype()?;
        let (shape, expected) = byte_size(&self.shape, dtype)?;
        if self.data.len() != expected {
            return Err(Error::ByteLength {
                shape: self.shape.clone(),
                dtype: dtype.short_name(),
                expected,
                actual: self.data.len(),
            });
        }
        Ok(shape)
    }

    /// Number of elements (product of the shape), after validation.
    pub fn numel(&self) -> Result<usize> {
        Ok(self.validate()?.iter().product())
    }

    /// The values as `f32` with the shape; `f16` and `bf16` are widened exactly.
    pub fn to_f32(&self) -> Result<(Vec<f32>, Vec<usize>)> {
        let shape = self.validate()?;
        let bytes = self.data.as_ref();
        let values = match self.checked_dtype()? {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::DTypeMismatch {
                    actual: other.short_name(),
                    wanted: "f32",
                });
            }
        };
        Ok((values, shape))
    }

    /// The values of a `u8` tensor with the shape (no copy of the bytes).
    pub fn to_u8(&self) -> Result<(Bytes, Vec<usize>)> {
        let shape = self.validate()?;
        match self.checked_dtype()? {
            Dtype::U8 => Ok((self.data.clone(), shape)),
            other => Err(Error::DTypeMismatch {
                actual: other.short_name(),
                wanted: "u8",
            }),
        }
    }

    fn from_parts(dtype: Dtype, shape: &[usize], data: Bytes) -> Result<Self> {
        let tensor = Tensor {
            dtype: dtype as i32,
            shape: shape.iter().map(|&d| d as u64).collect(),
            data,
        };
        tensor.validate()?;
        Ok(tensor)
    }
}

/// The shape as `usize`s and its size in bytes for `dtype`, bounded.
fn byte_size(shape: &[u64], dtype: Dtype) -> Result<(Vec<usize>, usize)> {
    if shape.len() > MAX_RANK {
        return Err(Error::RankTooLarge {
            rank: shape.len(),
            max: MAX_RANK,
        });
    }
    let overflow = || Error::ShapeOverflow {
        shape: shape.to_vec(),
    };
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| overflow()))
        .collect::<Result<_>>()?;
    let element_size = dtype
        .size_bytes()
        .ok_or(Error::UnknownDType(dtype as i32))?;
    let bytes = dims
        .iter()
        .try_fold(element_size, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    if bytes > MAX_TENSOR_BYTES {
        return Err(Error::TooLarge {
            shape: shape.to_vec(),
            bytes,
            max: MAX_TENSOR_BYTES,
        });
    }
    Ok((dims, bytes))
}

fn check_value_count(values: usize, shape: &[usize]) -> Result<()> {
    let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match expected {
        Some(expected) if expected == values => Ok(()),
        Some(expected) => Err(Error::ValueCount {
            shape: shape.to_vec(),
            expected,
            values,
        }),
        None => Err(Error::ShapeOverflow {
            shape: shape.iter().map(|&d| d as u64).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_round_trip_keeps_values_shape_and_little_endian_layout() {
        let values = [1.0f32, -2.5, 3.25, 0.0, f32::MIN_POSITIVE, 1e30];
        let tensor = Tensor::from_f32(&values, &[2, 3]).unwrap();
        assert_eq!(tensor.shape, vec![2, 3]);
        assert_eq!(&tensor.data[..4], &1.0f32.to_le_bytes());
        let (back, shape) = tensor.to_f32().unwrap();
        assert_eq!(back, values);
        assert_eq!(shape, vec![2, 3]);
    }

    #[test]
    fn half_precision_tensors_widen_to_f32() {
        let halves = [f16::from_f32(0.5), f16::from_f32(-3.0)];
        let data: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        let tensor = Tensor {
            dtype: Dtype::F16 as i32,
            shape: vec![2],
            data: data.into(),
        };
        assert_eq!(tensor.to_f32().unwrap().0, vec![0.5, -3.0]);

        let data: Vec<u8> = [bf16::from_f32(2.0), bf16::from_f32(-0.25)]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let tensor = Tensor {
            dtype: Dtype::Bf16 as i32,
            shape: vec![1, 2],
            data: data.into(),
        };
        assert_eq!(tensor.to_f32().unwrap(), (vec![2.0, -0.25], vec![1, 2]));
    }

    #[test]
    fn scalar_shape_holds_one_element() {
        let tensor = Tensor::from_f32(&[7.0], &[]).unwrap();
        assert_eq!(tensor.numel().unwrap(), 1);
        assert!(Tensor::from_f32(&[], &[]).is_err());
    }

    #[test]
    fn u8_mask_round_trip() {
        let tensor = Tensor::from_u8(vec![1u8, 1, 0, 0], &[2, 2]).unwrap();
        let (mask, shape) = tensor.to_u8().unwrap();
        assert_eq!(&mask[..], &[1, 1, 0, 0]);
        assert_eq!(shape, vec![2, 2]);
        assert!(matches!(
            tensor.to_f32(),
            Err(Error::DTypeMismatch { wanted: "f32", .. })
        ));
    }

    #[test]
    fn value_count_must_match_shape() {
        let err = Tensor::from_f32(&[1.0, 2.0, 3.0], &[2, 2]).unwrap_err();
        assert!(matches!(
            err,
            Error::ValueCount {
                expected: 4,
                values: 3,
                ..
            }
        ));
    }

    #[test]
    fn byte_length_mismatch_is_an_error() {
        let mut tensor = Tensor::from_f32(&[1.0, 2.0], &[2]).unwrap();
        tensor.data = tensor.data.slice(..7);
        let err = tensor.to_f32().unwrap_err();
        assert!(
            matches!(
                err,
                Error::ByteLength {
                    expected: 8,
                    actual: 7,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_and_unspecified_dtypes_are_rejected() {
        for dtype in [0, 99] {
            let tensor = Tensor {
                dtype,
                shape: vec![1],
                data: Bytes::from_static(&[0; 4]),
            };
            assert!(matches!(tensor.validate(), Err(Error::UnknownDType(d)) if d == dtype));
        }
    }

    #[test]
    fn forged_shapes_fail_without_allocating() {
        let huge = Tensor {
            dtype: Dtype::F32 as i32,
            shape: vec![u64::MAX, 2],
            data: Bytes::new(),
        };
        assert!(matches!(huge.validate(), Err(Error::ShapeOverflow { .. })));

        let big = Tensor {
            dtype: Dtype::F32 as i32,
            shape: vec![1 << 20, 1 << 10],
            data: Bytes::new(),
        };
        assert!(matches!(big.validate(), Err(Error::TooLarge { .. })));

        let deep = Tensor {
            dtype: Dtype::U8 as i32,
            shape: vec![1; MAX_RANK + 1],
            data: Bytes::from_static(&[0]),
        };
        assert!(matches!(deep.validate(), Err(Error::RankTooLarge { .. })));
    }
}
