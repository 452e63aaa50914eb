//! Any bytes as a cached latent or embedding (`ssdit_store::TensorFile`,
//! what the trainer and sampler read back from the store).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssdit_store::TensorFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = TensorFile::from_bytes(data, "fuzz/latent.safetensors") {
        for tensor in file.tensors().values() {
            let _ = tensor.shape().iter().product::<usize>();
        }
    }
});
