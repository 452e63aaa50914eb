//! FLUX.1's `AutoencoderKL` in burn, identical to diffusers', and a
//! weight-free preview codec with the same interface.
//!
//! - [`AutoencoderKl`] reproduces diffusers'
//!   [`AutoencoderKL`](https://github.com/huggingface/diffusers/blob/main/src/diffusers/models/autoencoders/autoencoder_kl.py)
//!   (with `Encoder`/`Decoder` from `autoencoders/vae.py`, blocks from
//!   `unets/unet_2d_blocks.py`, `ResnetBlock2D` from `resnet.py`, the
//!   mid-block `Attention` from `attention_processor.py`) in the FLUX.1 layout
//!   of [`diffusers/FLUX.1-vae`](https://huggingface.co/diffusers/FLUX.1-vae):
//!   16 latent channels, no quant convs. Weights load from diffusers' own
//!   files and tensor names ([`load_vae`]); the golden fixture in
//!   `shared/fixtures/vae` pins the numerics (see `ssdit-parity`).
//! - [`Vae`] adds the seed's latent conventions ([`VaeScaling`],
//!   [`DatasetNormalization`]), tiled decoding for large images ([`Tiling`])
//!   and a fingerprint for cache keys.
//! - [`PreviewCodec`] is a deterministic DCT transform with the same shape
//!   contract (8× down, 16 channels), a stand-in where the real weights are
//!   not available. It is not a VAE.
//! - [`tiny_vae`] is the same model at a small size with seeded weights, for
//!   offline demos and tests (`--vae tiny`). Its latents are not meaningful.
//! - [`LatentCodec`] is what services use, whichever of the two is chosen
//!   ([`CodecChoice`], [`load_codec`]).
//! - [`images_to_tensor`] / [`tensor_to_images`] convert 8-bit RGB images
//!   with the seed's arithmetic.
//!
//! Models are generic over the burn backend and its float type; statistics
//! (GroupNorm) and the attention softmax are computed in at least f32, as
//! PyTorch does for half-precision inputs.

mod attention;
mod autoencoder;
mod blocks;
mod codec;
mod config;
mod conv;
mod decoder;
mod encoder;
mod error;
mod latents;
mod loader;
mod ops;
mod pixels;
mod preview;
mod resnet;
mod tiling;
mod tiny;
mod vae;

pub use autoencoder::{AutoencoderKl, DiagonalGaussian, seeded_normal};
pub use codec::{CodecChoice, LatentCodec, PREVIEW_CHOICE, Sampling, TINY_CHOICE, load_codec};
pub use config::AutoencoderKlConfig;
pub use error::{Error, Result};
pub use latents::{DatasetNormalization, VaeScaling};
pub use loader::{
    CONFIG_FILE, WEIGHTS_FILE, key_map, load_autoencoder, load_vae, save_autoencoder,
};
pub use pixels::{images_to_tensor, tensor_to_images};
pub use preview::{
    BLOCK, CHROMA_COEFFICIENTS, COEFFICIENT_STD, LUMA_COEFFICIENTS, PREVIEW_CHANNELS,
    PREVIEW_FINGERPRINT, PreviewCodec, zigzag,
};
pub use tiling::Tiling;
pub use tiny::{TINY_VAE_SEED, tiny_vae, tiny_vae_fingerprint};
pub use vae::Vae;
