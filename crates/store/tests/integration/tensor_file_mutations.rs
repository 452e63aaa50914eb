//! The short mutation campaign CI runs on tensor files (`cargo fuzz run
//! tensor_file` is the long one): mutants of valid latent and embedding
//! files, as the trainer and sampler read them back from the store, end in
//! tensors whose values fill their shapes or in an error, never a panic.

use ssdit_store::{F32Tensor, TensorFile};

/// A latent and its scale with string metadata, as the VAE encoder writes them.
fn latent_file() -> Vec<u8> {
    let mut file = TensorFile::new();
    file.insert(
        "latents",
        F32Tensor::new(
            (0..48).map(|i| i as f32 / 8.0 - 3.0).collect(),
            vec![3, 4, 4],
        )
        .unwrap(),
    )
    .insert("scale", F32Tensor::new(vec![0.3611], vec![]).unwrap())
    .set_metadata("sample_id", "abc")
    .set_metadata("vae_fingerprint", "f00d");
    file.to_bytes("latent").unwrap()
}

/// A BF16 embedding written by a Python tool (`safetensors.torch.save_file`).
fn bf16_embedding_file() -> Vec<u8> {
    let header = r#"{"__metadata__":{"format":"pt"},"embedding":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend((0u8..12).map(|i| i.wrapping_mul(37)));
    bytes
}

/// Reads `bytes` and checks every tensor's values fill its shape.
fn read(bytes: &[u8]) -> ssdit_store::Result<usize> {
    let file = TensorFile::from_bytes(bytes, "mutant/latent.safetensors")?;
    let mut values = 0;
    for (name, tensor) in file.tensors() {
        let filled = tensor
            .shape()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d));
        assert_eq!(
            filled,
            Some(tensor.data().len()),
            "{name}: values do not fill the shape"
        );
        values += tensor.data().len();
    }
    Ok(values)
}

#[test]
fn mutated_tensor_files_never_panic() {
    let valid = vec![latent_file(), bf16_embedding_file()];
    let outcome = ssdit_mutate::campaign("tensor_file", &valid, 50_000, 11, read);
    assert!(
        outcome.accepted > valid.len() && outcome.refused > 0,
        "mutants should reach both the readers and the refusals: {outcome:?}"
    );
}
