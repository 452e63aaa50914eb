//! Loading the VAE from diffusers' files: `config.json` and
//! `diffusion_pytorch_model.safetensors`, from a model directory or a hub id.

use std::path::Path;

use burn::prelude::*;
use ssdit_weights::{
    Checkpoint, KeyMap, ModelSource, fingerprint_files, resolve, save_safetensors,
};

use crate::{AutoencoderKl, AutoencoderKlConfig, Error, Result, Vae};

/// diffusers' configuration file name.
pub const CONFIG_FILE: &str = "config.json";
/// diffusers' weight file name.
pub const WEIGHTS_FILE: &str = "diffusion_pytorch_model.safetensors";

/// The renames between diffusers' tensor names and this crate's parameter
/// paths. Every other name is identical, because the modules' fields are
/// named after diffusers' attributes:
///
/// | diffusers | here | why |
/// |-----------|------|-----|
/// | `….attentions.N.to_out.0.{weight,bias}` | `….attentions.N.to_out.{weight,bias}` | `to_out` is `nn.Sequential(Linear, Dropout)` in diffusers; the dropout has no weights and the VAE runs without it |
/// | `…{norm1,norm2,group_norm,conv_norm_out}.weight` | `….gamma` | burn's `GroupNorm` calls its scale `gamma` |
/// | `…{norm1,norm2,group_norm,conv_norm_out}.bias` | `….beta` | and its shift `beta` |
///
/// The GroupNorm names are mapped here rather than left to burn-store's
/// PyTorch adapter: the adapter finds `weight` when burn asks for `gamma`, but
/// then reports `weight` as unused, which strict loading rejects. Linear
/// weights' transposed layout is still the adapter's job.
pub fn key_map() -> KeyMap {
    const NORMS: &str = "norm1|norm2|group_norm|conv_norm_out";
    KeyMap::new()
        .rename(r"\.to_out\.0\.", ".to_out.", r"\.to_out\.", ".to_out.0.")
        .rename(
            &format!(r"\.({NORMS})\.weight$"),
            ".$1.gamma",
            &format!(r"\.({NORMS})\.gamma$"),
            ".$1.weight",
        )
        .rename(
            &format!(r"\.({NORMS})\.bias$"),
            ".$1.beta",
            &format!(r"\.({NORMS})\.beta$"),
            ".$1.bias",
        )
}

/// Reads `config.json` and the weights of the model directory `dir` into an
/// [`AutoencoderKl`], strictly: a missing, surplus or wrong-shaped tensor is
/// an error naming it.
pub fn load_autoencoder<B: Backend>(
    dir: &Path,
    device: &Device<B>,
) -> Result<(AutoencoderKl<B>, AutoencoderKlConfig)> {
    let config = AutoencoderKlConfig::from_file(&dir.join(CONFIG_FILE))?;
    let checkpoint = Checkpoint::open(&dir.join(WEIGHTS_FILE))?;
    let model = checkpoint.load_into(config.init(device), &key_map())?;
    Ok((model, config))
}

/// Loads the FLUX VAE from a model directory or a Hugging Face repo id
/// (e.g. `diffusers/FLUX.1-vae`), with the seed's latent convention, default
/// decode tiling, and the fingerprint of its config and weight files.
pub fn load_vae<B: Backend>(source: &ModelSource, device: &Device<B>) -> Result<Vae<B>> {
    let dir = resolve(source, &[CONFIG_FILE, WEIGHTS_FILE])?;
    let (model, config) = load_autoencoder(&dir, device)?;
    let fingerprint = fingerprint_files(&[&dir.join(CONFIG_FILE), &dir.join(WEIGHTS_FILE)])?;
    tracing::info!(
        source = %source,
        dir = %dir.display(),
        fingerprint = %fingerprint,
        blocks = ?config.block_out_channels,
        "loaded vae"
    );
    Ok(Vae::new(model, config, fingerprint))
}

/// Writes a model as diffusers' `save_pretrained` does (`config.json` and
/// `diffusion_pytorch_model.safetensors` in `dir`), e.g. a randomly
/// initialised [`AutoencoderKlConfig::tiny`] for offline demos.
pub fn save_autoencoder<B: Backend>(
    model: &AutoencoderKl<B>,
    config: &AutoencoderKlConfig,
    dir: &Path,
) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| {
            Error::Weights(ssdit_weights::Error::Save {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })
    };
    let metadata = [("format".to_string(), "pt".to_string())].into();
    let weights = save_safetensors(model, &key_map(), metadata)?;
    write(CONFIG_FILE, config.to_diffusers_json().as_bytes())?;
    write(WEIGHTS_FILE, &weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_out_is_renamed_both_ways() {
        let keys = key_map();
        let ckpt = "decoder.mid_block.attentions.0.to_out.0.weight";
        let module = keys.module_path(ckpt);
        assert_eq!(module, "decoder.mid_block.attentions.0.to_out.weight");
        assert_eq!(keys.checkpoint_name(&module), ckpt);
        let norm = "encoder.down_blocks.0.resnets.0.norm1.weight";
        let module = keys.module_path(norm);
        assert_eq!(module, "encoder.down_blocks.0.resnets.0.norm1.gamma");
        assert_eq!(keys.checkpoint_name(&module), norm);
        let bias = "decoder.mid_block.attentions.0.group_norm.bias";
        assert_eq!(
            keys.module_path(bias),
            "decoder.mid_block.attentions.0.group_norm.beta"
        );
        let conv = "encoder.conv_norm_out.weight";
        assert_eq!(keys.module_path(conv), "encoder.conv_norm_out.gamma");
        let untouched = "encoder.down_blocks.0.resnets.0.conv1.weight";
        assert_eq!(keys.module_path(untouched), untouched);
        assert_eq!(keys.checkpoint_name(untouched), untouched);
    }
}
