//! Tensor files: named `f32` tensors with string metadata, stored as safetensors so that
//! Python tools read them too.
//!
//! Reading trusts nothing: the safetensors header is parsed and validated (header length,
//! JSON, offsets contiguous and inside the file, byte counts matching shape × dtype, total
//! size matching the file) before any tensor is decoded, and decoding allocates at most
//! the size of the file itself. A bad file is an [`Error::TensorFile`] naming the key and
//! the reason; never a panic.

use std::collections::{BTreeMap, HashMap};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};

/// Largest tensor file read (4 GiB).
pub const MAX_TENSOR_FILE_BYTES: u64 = 4 << 30;

/// A dense row-major `f32` tensor whose element count matches its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl F32Tensor {
    /// A tensor of `shape` holding `data`; errors when the counts differ.
    pub fn new(data: Vec<f32>, shape: Vec<usize>) -> Result<Self> {
        let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if expected != Some(data.len()) {
            return Err(Error::TensorFile {
                key: "<new>".into(),
                reason: format!("{} values do not fill shape {shape:?}", data.len()),
            });
        }
        Ok(Self { shape, data })
    }

    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Values and shape.
    pub fn into_parts(self) -> (Vec<f32>, Vec<usize>) {
        (self.data, self.shape)
    }
}

/// Named tensors and string metadata: the contents of one safetensors file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorFile {
    tensors: BTreeMap<String, F32Tensor>,
    metadata: BTreeMap<String, String>,
    /// Where it was read from, for error messages (not part of the contents).
    source: String,
}

/// The name safetensors reserves for the metadata map.
const METADATA_KEY: &str = "__metadata__";

impl TensorFile {
    /// An empty file.
    pub fn new() -> Self {
        Self {
            source: "<new>".into(),
            ..Self::default()
        }
    }

    /// Adds (or replaces) tensor `name`.
    pub fn insert(&mut self, name: impl Into<String>, tensor: F32Tensor) -> &mut Self {
        self.tensors.insert(name.into(), tensor);
        self
    }

    /// Sets metadata `key` to `value`.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The tensors by name.
    pub fn tensors(&self) -> &BTreeMap<String, F32Tensor> {
        &self.tensors
    }

    /// The metadata map.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Tensor `name`, which must exist and have exactly `shape`.
    pub fn require(&self, name: &str, shape: &[usize]) -> Result<&F32Tensor> {
        let tensor = self.tensors.get(name).ok_or_else(|| {
            self.error(format!(
                "missing tensor {name:?} (has {:?})",
                self.tensors.keys().collect::<Vec<_>>()
            ))
        })?;
        if tensor.shape != shape {
            return Err(self.error(format!(
                "tensor {name:?} has shape {:?}, expected {shape:?}",
                tensor.shape
            )));
        }
        Ok(tensor)
    }

    /// Metadata `key`, which must exist.
    pub fn require_metadata(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.error(format!("missing metadata {key:?}")))
    }

    fn error(&self, reason: String) -> Error {
        Error::TensorFile {
            key: self.source.clone(),
            reason,
        }
    }

    /// The safetensors encoding (tensors in name order, little-endian `F32`).
    pub fn to_bytes(&self, destination: &str) -> Result<Vec<u8>> {
        let fail = |reason: String| Error::TensorFile {
            key: destination.to_owned(),
            reason,
        };
        if self.tensors.contains_key(METADATA_KEY) {
            return Err(fail(format!("{METADATA_KEY:?} is not a valid tensor name")));
        }
        let encoded: Vec<(&str, &[usize], Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.as_str(), t.shape.as_slice(), bytes)
            })
            .collect();
        let views = encoded
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.to_vec(), bytes)
                    .map(|view| (*name, view))
                    .map_err(|e| fail(format!("tensor {name:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let metadata = (!metadata.is_empty()).then_some(metadata);
        safetensors::serialize(views, metadata).map_err(|e| fail(e.to_string()))
    }

    /// Parses and validates a safetensors file read from `source` (used in errors).
    /// `F32` tensors are read as is; `F16` and `BF16` are widened exactly; any other dtype
    /// is an error.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        let fail = |reason: String| Error::TensorFile {
            key: source.to_owned(),
            reason,
        };
        if bytes.len() as u64 > MAX_TENSOR_FILE_BYTES {
            return Err(fail(format!(
                "{} bytes exceeds the limit of {MAX_TENSOR_FILE_BYTES}",
                bytes.len()
            )));
        }
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| fail(format!("invalid safetensors header: {e}")))?;
        let parsed = SafeTensors::deserialize(bytes)
            .map_err(|e| fail(format!("invalid safetensors: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in parsed.iter() {
            let data = decode(view.dtype(), view.data()).ok_or_else(|| {
                fail(format!(
                    "tensor {name:?} has dtype {:?}, expected F32",
                    view.dtype()
                ))
            })?;
            tensors.insert(
                name.to_owned(),
                F32Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        let metadata = header
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Self {
            tensors,
            metadata,
            source: source.to_owned(),
        })
    }
}

/// Little-endian floats of `dtype` widened to `f32`; `None` for other dtypes.
fn decode(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    match dtype {
        Dtype::F32 => Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Dtype::F16 => Some(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        Dtype::BF16 => Some(
            bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TensorFile {
        let mut file = TensorFile::new();
        file.insert(
            "latents",
            F32Tensor::new(
                (0..24).map(|i| i as f32 * 0.5 - 3.0).collect(),
                vec![2, 3, 4],
            )
            .unwrap(),
        )
        .insert("scale", F32Tensor::new(vec![0.3611], vec![]).unwrap())
        .set_metadata("sample_id", "abc")
        .set_metadata("vae_fingerprint", "f00d");
        file
    }

    /// A safetensors file written by hand: `header` JSON then `data`.
    fn raw(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn round_trip_keeps_tensors_and_metadata() {
        let file = sample();
        let bytes = file.to_bytes("k").unwrap();
        let back = TensorFile::from_bytes(&bytes, "k").unwrap();
        assert_eq!(back.tensors(), file.tensors());
        assert_eq!(back.metadata(), file.metadata());
        assert_eq!(back.require("latents", &[2, 3, 4]).unwrap().data()[1], -2.5);
        assert_eq!(back.require_metadata("sample_id").unwrap(), "abc");
    }

    #[test]
    fn files_written_by_python_tools_read_back() {
        // safetensors.torch.save_file({"x": torch.tensor([1.0, -2.0])}, …) writes this layout.
        let header = r#"{"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let data: Vec<u8> = [1.0f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let file = TensorFile::from_bytes(&raw(header, &data), "py").unwrap();
        assert_eq!(file.require("x", &[2]).unwrap().data(), [1.0, -2.0]);
        assert_eq!(file.require_metadata("format").unwrap(), "pt");
    }

    #[test]
    fn half_precision_is_widened() {
        let data: Vec<u8> = [bf16::from_f32(1.5), bf16::from_f32(-4.0)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let header = r#"{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#;
        let file = TensorFile::from_bytes(&raw(header, &data), "bf16").unwrap();
        assert_eq!(file.require("x", &[2]).unwrap().data(), [1.5, -4.0]);
    }

    #[test]
    fn malformed_files_are_clear_errors() {
        let good = sample().to_bytes("k").unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("short header length", vec![1, 2, 3]),
            ("header longer than file", {
                let mut bytes = 100u64.to_le_bytes().to_vec();
                bytes.extend_from_slice(b"{}");
                bytes
            }),
            ("huge header length", u64::MAX.to_le_bytes().to_vec()),
            ("not json", raw("not json", &[])),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("trailing bytes", good.iter().copied().chain([0]).collect()),
            (
                "offsets out of range",
                raw(
                    r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}"#,
                    &[0; 8],
                ),
            ),
            (
                "shape and size disagree",
                raw(
                    r#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
            ),
            (
                "forged huge shape",
                raw(
                    r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
            ),
            (
                "wrong dtype",
                raw(
                    r#"{"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
            ),
        ];
        for (what, bytes) in cases {
            let err = TensorFile::from_bytes(&bytes, "cache/x.safetensors")
                .err()
                .unwrap_or_else(|| panic!("{what}: accepted"));
            let message = err.to_string();
            assert!(
                message.starts_with("tensor file cache/x.safetensors:"),
                "{what}: {message}"
            );
        }
        let wrong_dtype = raw(
            r#"{"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
            &[0; 8],
        );
        let err = TensorFile::from_bytes(&wrong_dtype, "k").unwrap_err();
        assert!(err.to_string().contains("I64"), "{err}");
    }

    #[test]
    fn required_names_and_shapes_are_checked() {
        let file = TensorFile::from_bytes(&sample().to_bytes("k").unwrap(), "k").unwrap();
        let err = file.require("latents", &[2, 12]).unwrap_err().to_string();
        assert!(
            err.contains("[2, 3, 4]") && err.contains("[2, 12]"),
            "{err}"
        );
        assert!(file.require("missing", &[1]).is_err());
        assert!(file.require_metadata("nope").is_err());
    }

    #[test]
    fn inconsistent_tensors_cannot_be_built_or_written() {
        assert!(F32Tensor::new(vec![1.0; 5], vec![2, 3]).is_err());
        assert!(F32Tensor::new(vec![], vec![usize::MAX, 2]).is_err());
        let mut file = TensorFile::new();
        file.insert(METADATA_KEY, F32Tensor::new(vec![1.0], vec![1]).unwrap());
        assert!(file.to_bytes("k").is_err());
    }
}
