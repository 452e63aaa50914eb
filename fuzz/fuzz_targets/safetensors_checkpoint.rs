//! Any bytes as a safetensors checkpoint (what `ssdit_weights::Checkpoint`
//! reads from a model directory or the hub): opening and reading every
//! tensor must end in a value or an error, never a panic or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssdit_weights::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(checkpoint) = Checkpoint::from_safetensors_bytes(data.to_vec(), "fuzz.safetensors")
    else {
        return;
    };
    let names: Vec<String> = checkpoint.names().map(str::to_string).collect();
    for name in names {
        let _ = checkpoint.shape(&name);
        let _ = checkpoint.dtype(&name);
        let _ = checkpoint.tensor(&name);
    }
});
