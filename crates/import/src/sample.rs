//! One sample of the seed's cache: what its `preprocess.py` saves with
//! `torch.save` for each image —
//! `{"latents": [16, h, w], "text_embeds": [L, D], "width": int, "height": int}`,
//! bf16 by default (`Config.dtype`), f32 possible — read and validated.

use ssdit_dataset::Bucket;
use ssdit_store::F32Tensor;

use crate::Result;
use crate::error::content;
use crate::torch::{DType, Dict, Limits, TensorRef, TorchFile, Value};

/// Latent channels of the FLUX VAE, the only VAE the seed encodes with.
pub const LATENT_CHANNELS: usize = 16;
/// Spatial downsampling of the FLUX VAE (`Config.vae_downsample_factor`).
pub const DOWNSAMPLE: u32 = 8;
/// Largest bucket side accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Longest caption embedding accepted, in tokens (the seed uses 128).
pub const MAX_TOKENS: usize = 4096;
/// Widest caption embedding accepted (T5Gemma2-4B is 2560).
pub const MAX_TEXT_DIM: usize = 16_384;

/// The keys every sample file holds.
const REQUIRED_KEYS: [&str; 4] = ["latents", "text_embeds", "height", "width"];

/// A validated seed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedSample {
    /// `[16, height/8, width/8]`, cache space (`latent · 0.3611`).
    pub latents: F32Tensor,
    /// `[L, D]`: the text encoder's last hidden state, padding included.
    pub text_embeds: F32Tensor,
    /// The bucket the image was resized to.
    pub bucket: Bucket,
    /// How the latents were stored.
    pub dtype: DType,
}

impl SeedSample {
    /// Parses and validates a sample file's bytes; `origin` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, origin: &str) -> Result<Self> {
        let mut file = TorchFile::from_bytes(bytes, origin, Limits::sample())?;
        let root = file.root().clone();
        let Some(dict) = root.as_dict() else {
            return Err(content(
                origin,
                format!("holds a {}, not the seed's sample dict", root.kind()),
            ));
        };
        check_keys(dict, origin)?;
        let height = side(dict, "height", origin)?;
        let width = side(dict, "width", origin)?;
        let latents_ref = tensor(dict, "latents", origin)?;
        let expected = [
            LATENT_CHANNELS,
            (height / DOWNSAMPLE) as usize,
            (width / DOWNSAMPLE) as usize,
        ];
        if latents_ref.shape != expected {
            return Err(content(
                origin,
                format!(
                    "latents have shape {:?}, expected {expected:?} for a {width}x{height} bucket",
                    latents_ref.shape
                ),
            ));
        }
        let embeds_ref = tensor(dict, "text_embeds", origin)?;
        match embeds_ref.shape.as_slice() {
            [tokens, dim]
                if (1..=MAX_TOKENS).contains(tokens) && (1..=MAX_TEXT_DIM).contains(dim) => {}
            shape => {
                return Err(content(
                    origin,
                    format!(
                        "text_embeds have shape {shape:?}, expected [tokens, width] with 1–{MAX_TOKENS} tokens of 1–{MAX_TEXT_DIM} values"
                    ),
                ));
            }
        }
        let latents = read_finite(&mut file, &latents_ref, "latents", origin)?;
        let text_embeds = read_finite(&mut file, &embeds_ref, "text_embeds", origin)?;
        Ok(Self {
            latents,
            text_embeds,
            bucket: Bucket { width, height },
            dtype: latents_ref.dtype(),
        })
    }

    /// `(tokens, width)` of the caption embedding.
    pub fn text_shape(&self) -> (usize, usize) {
        let shape = self.text_embeds.shape();
        (shape[0], shape[1])
    }
}

fn check_keys(dict: &Dict, origin: &str) -> Result<()> {
    let missing: Vec<&str> = REQUIRED_KEYS
        .into_iter()
        .filter(|k| dict.get(k).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(content(
        origin,
        format!(
            "missing key {} (the file has {})",
            missing.join(", "),
            dict.key_list()
        ),
    ))
}

/// A bucket side: a positive int, a multiple of 8, at most [`MAX_SIDE`].
fn side(dict: &Dict, key: &str, origin: &str) -> Result<u32> {
    let value = &dict.get(key).expect("keys were checked");
    let Some(number) = value.as_int() else {
        return Err(content(
            origin,
            format!("{key} is a {} ({value}), expected an int", value.kind()),
        ));
    };
    let valid = number > 0 && number <= i64::from(MAX_SIDE) && number % i64::from(DOWNSAMPLE) == 0;
    if !valid {
        return Err(content(
            origin,
            format!(
                "{key} is {number}, expected a positive multiple of {DOWNSAMPLE} up to {MAX_SIDE}"
            ),
        ));
    }
    Ok(number as u32)
}

fn tensor(dict: &Dict, key: &str, origin: &str) -> Result<TensorRef> {
    match dict.get(key).expect("keys were checked") {
        Value::Tensor(t) if matches!(t.dtype(), DType::F32 | DType::BF16 | DType::F16) => {
            Ok(t.clone())
        }
        Value::Tensor(t) => Err(content(
            origin,
            format!(
                "{key} is a {} tensor, expected float32, bfloat16 or float16",
                t.dtype()
            ),
        )),
        other => Err(content(
            origin,
            format!("{key} is a {} ({other}), expected a tensor", other.kind()),
        )),
    }
}

fn read_finite(
    file: &mut TorchFile,
    tensor: &TensorRef,
    key: &str,
    origin: &str,
) -> Result<F32Tensor> {
    let values = file.read_f32(tensor)?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(content(
            origin,
            format!(
                "{key} hold a non-finite value ({}) at flat index {index}",
                values[index]
            ),
        ));
    }
    F32Tensor::new(values, tensor.shape.clone()).map_err(|e| content(origin, e.to_string()))
}
