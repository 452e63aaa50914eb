//! The seed's initialisation scheme, and seeding it. One test: the backend
//! RNG is global, so the draws must not interleave with another test's.

use burn::backend::NdArray;
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig};

type B = NdArray<f32>;

fn small() -> SingleStreamDiTConfig {
    SingleStreamDiTConfig::new()
        .with_hidden_size(64)
        .with_num_heads(4)
        .with_depth(2)
        .with_refiner_depth(1)
        .with_text_embed_dim(48)
        .with_max_token_length(10)
}

/// Every tensor of the model, by checkpoint name.
fn tensors(model: &SingleStreamDiT<B>) -> Vec<(String, Vec<f32>)> {
    let checkpoint = model.state_dict().unwrap();
    checkpoint
        .names()
        .map(|n| {
            (
                n.to_string(),
                checkpoint.tensor(n).unwrap().to_vec::<f32>().unwrap(),
            )
        })
        .collect()
}

fn std_dev(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|v| *v as f64).sum::<f64>() / n;
    (values
        .iter()
        .map(|v| (*v as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

#[test]
fn seeded_init_is_reproducible_and_follows_the_seed_scheme() {
    let device = Default::default();
    let first = tensors(&small().init_seeded::<B>(&device, 7).unwrap());
    let again = tensors(&small().init_seeded::<B>(&device, 7).unwrap());
    let other = tensors(&small().init_seeded::<B>(&device, 8).unwrap());
    assert_eq!(first, again, "same seed, same weights");
    assert_ne!(first, other, "another seed, other weights");

    let xavier_bound = |fan_in: usize, fan_out: usize| (6.0 / (fan_in + fan_out) as f64).sqrt();
    for (name, values) in &first {
        let all = |v: f32| values.iter().all(|x| *x == v);
        let within = |bound: f64| values.iter().all(|x| (*x as f64).abs() <= bound);
        let normal_002 = || (std_dev(values) - 0.02).abs() < 0.004;
        let ok = if name.ends_with("norm1.weight")
            || name.contains("norm_q")
            || name.contains("norm_k")
            || name.contains("fourier_norm")
            || name.starts_with("final_norm")
            || name.starts_with("cap_embedder.0")
        {
            all(1.0)
        } else if name.contains("adaLN_modulation") || name.starts_with("final_layer") {
            all(0.0)
        } else if name.ends_with("fourier_filter.gate") {
            all(0.1)
        } else if name.contains("freq_mlp.2") || name.ends_with("local_bias.conv.bias") {
            all(0.0)
        } else if name.ends_with("freq_mlp.0.weight") {
            within(xavier_bound(128, 96)) && std_dev(values) > 0.05
        } else if name.ends_with("freq_mlp.0.bias") {
            within(1.0 / 128f64.sqrt()) && std_dev(values) > 0.02
        } else if name == "x_embedder.bias" {
            within(1.0 / 64f64.sqrt()) && std_dev(values) > 0.02
        } else if name.ends_with(".bias") {
            all(0.0) // cap_embedder.1, t_embedder.0/2
        } else {
            // every other weight, the embeddings and the pad tokens; the
            // SwiGLU and local-bias weights included (the seed's later
            // normal(0.02) loop overwrites their earlier init).
            normal_002()
        };
        assert!(
            ok,
            "{name}: std {} over {} values",
            std_dev(values),
            values.len()
        );
    }
    assert!(
        first
            .iter()
            .any(|(n, _)| n == "blocks.1.feed_forward.w3.weight")
    );
    assert!(
        first
            .iter()
            .any(|(n, _)| n == "noise_refiner.0.local_bias.conv.weight")
    );
}
