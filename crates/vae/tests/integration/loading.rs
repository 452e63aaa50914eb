//! Loading the VAE from diffusers-format directories, and every error a user
//! can meet doing it. The weights are a small random model saved in
//! diffusers' file and tensor names (the shared fixture is loaded by the
//! parity tests).

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::Distribution;
use ssdit_vae::{
    AutoencoderKlConfig, CONFIG_FILE, Error, LatentCodec, Sampling, WEIGHTS_FILE, load_vae,
    save_autoencoder,
};
use ssdit_weights::ModelSource;

type B = NdArray<f32>;

fn small() -> AutoencoderKlConfig {
    AutoencoderKlConfig::new(vec![8, 16])
        .with_layers_per_block(1)
        .with_norm_num_groups(4)
}

fn saved(dir: &Path) -> ssdit_vae::AutoencoderKl<B> {
    let config = small();
    let model = config.init::<B>(&Default::default());
    save_autoencoder(&model, &config, dir).unwrap();
    model
}

fn source(dir: &Path) -> ModelSource {
    ModelSource::Local(dir.to_path_buf())
}

/// Rewrites the weight file through `edit` (name → (shape, f32 values)).
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut BTreeMap<String, (Vec<usize>, Vec<f32>)>)) {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect();
    edit(&mut tensors);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raw
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn saved_model_loads_back_identically_with_diffusers_names() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let original = saved(dir.path());

    let names: Vec<String> = ssdit_weights::Checkpoint::open(dir.path())
        .unwrap()
        .names()
        .map(str::to_string)
        .collect();
    for expected in [
        "encoder.down_blocks.0.resnets.0.norm1.weight",
        "encoder.down_blocks.0.downsamplers.0.conv.weight",
        "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
        "encoder.mid_block.attentions.0.to_out.0.weight",
        "encoder.conv_norm_out.bias",
        "decoder.up_blocks.0.upsamplers.0.conv.bias",
        "decoder.up_blocks.1.resnets.1.conv2.weight",
        "decoder.mid_block.attentions.0.group_norm.weight",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|n| n.contains("gamma") || n.contains("beta"))
    );

    let vae = load_vae::<B>(&source(dir.path()), &device).unwrap();
    assert_eq!(vae.config(), &small());
    let images = Tensor::<B, 4>::random([1, 3, 8, 6], Distribution::Uniform(-1.0, 1.0), &device);
    let want = original.encode(images.clone()).unwrap();
    let got = vae.model().encode(images).unwrap();
    got.mean
        .into_data()
        .assert_approx_eq::<f32>(&want.mean.into_data(), Default::default());
    let latent = Tensor::<B, 4>::random([1, 16, 3, 2], Distribution::Normal(0.0, 1.0), &device);
    let want = original.decode(latent.clone()).unwrap();
    let got = vae.model().decode(latent).unwrap();
    got.into_data()
        .assert_approx_eq::<f32>(&want.into_data(), Default::default());
}

#[test]
fn fingerprint_follows_the_files() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let first = load_vae::<B>(&source(dir.path()), &device).unwrap();
    let again = load_vae::<B>(&source(dir.path()), &device).unwrap();
    assert_eq!(first.fingerprint(), again.fingerprint());
    assert_eq!(first.fingerprint().len(), 16);

    edit_weights(dir.path(), |t| {
        t.get_mut("decoder.conv_out.bias").unwrap().1[0] += 1.0;
    });
    let edited = load_vae::<B>(&source(dir.path()), &device).unwrap();
    assert_ne!(edited.fingerprint(), first.fingerprint());

    let shifted = edited.with_scaling(ssdit_vae::VaeScaling {
        scaling_factor: 0.3611,
        shift_factor: 0.1159,
    });
    assert!(shifted.fingerprint().contains("shift0.1159"), "{shifted}");
}

#[test]
fn missing_files_are_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
    let err = load_vae::<B>(&source(dir.path()), &device).unwrap_err();
    assert!(err.to_string().contains(WEIGHTS_FILE), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = load_vae::<B>(&source(empty.path()), &device).unwrap_err();
    assert!(err.to_string().contains(CONFIG_FILE), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    edit_weights(dir.path(), |t| {
        t.remove("decoder.mid_block.attentions.0.to_out.0.weight");
    });
    let err = load_vae::<B>(&source(dir.path()), &device).unwrap_err();
    assert!(
        matches!(&err, Error::Weights(ssdit_weights::Error::MissingTensors { names, .. })
            if names == &["decoder.mid_block.attentions.0.to_out.0.weight"]),
        "{err}"
    );
}

#[test]
fn surplus_tensor_is_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    edit_weights(dir.path(), |t| {
        t.insert(
            "quant_conv.weight".into(),
            (vec![32, 32, 1, 1], vec![0.0; 1024]),
        );
    });
    let err = load_vae::<B>(&source(dir.path()), &device).unwrap_err();
    assert!(
        matches!(&err, Error::Weights(ssdit_weights::Error::UnexpectedTensors { names, .. })
            if names == &["quant_conv.weight"]),
        "{err}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    // The config now says 8 latent channels; the weights hold 16.
    let config = small().with_latent_channels(8);
    std::fs::write(dir.path().join(CONFIG_FILE), config.to_diffusers_json()).unwrap();
    let err = load_vae::<B>(&source(dir.path()), &device).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Weights(ssdit_weights::Error::ShapeMismatch { name, .. })
            if name == "encoder.conv_out.weight" || name == "encoder.conv_out.bias"
                || name == "decoder.conv_in.weight"),
        "{text}"
    );
}

#[test]
fn unsupported_config_value_is_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let path = dir.path().join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"use_quant_conv\": false", "\"use_quant_conv\": true"),
    )
    .unwrap();
    let err = load_vae::<B>(&source(dir.path()), &device).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unsupported {
                field: "use_quant_conv",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn vae_codec_scales_and_samples() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let vae = load_vae::<B>(&source(dir.path()), &device).unwrap();
    assert_eq!(vae.latent_channels(), 16);
    assert_eq!(vae.downsample_factor(), 2);
    let images = Tensor::<B, 4>::random([2, 3, 6, 4], Distribution::Uniform(-1.0, 1.0), &device);

    let mean = vae.encode(images.clone(), &Sampling::Mean).unwrap();
    let posterior = vae.model().encode(images.clone()).unwrap();
    mean.clone()
        .into_data()
        .assert_approx_eq::<f32>(&(posterior.mean * 0.3611).into_data(), Default::default());

    let sampled = vae
        .encode(images.clone(), &Sampling::Seeds(vec![1, 2]))
        .unwrap();
    let again = vae
        .encode(images.clone(), &Sampling::Seeds(vec![1, 2]))
        .unwrap();
    sampled.to_data().assert_eq(&again.to_data(), true);
    let [b, c, h, w] = sampled.dims();
    assert_eq!([b, c, h, w], [2, 16, 3, 2]);
    let first_alone = vae
        .encode(
            images.clone().slice([0..1, 0..3, 0..6, 0..4]),
            &Sampling::Seeds(vec![1]),
        )
        .unwrap();
    first_alone.into_data().assert_approx_eq::<f32>(
        &sampled.slice([0..1, 0..c, 0..h, 0..w]).into_data(),
        Default::default(),
    );
    assert!(vae.encode(images, &Sampling::Seeds(vec![1])).is_err());

    let decoded = LatentCodec::decode(&vae, mean.clone()).unwrap();
    let direct = vae.model().decode(mean / 0.3611).unwrap();
    decoded
        .into_data()
        .assert_approx_eq::<f32>(&direct.into_data(), Default::default());
}
