//! Any text as a model `config.json`: the DiT's (seed layout), the FLUX.1
//! VAE's (diffusers) and T5Gemma2's (transformers). Parsing and validation
//! must end in a config or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssdit_model::SingleStreamDiTConfig;
use ssdit_text::t5gemma2::T5Gemma2EncoderConfig;
use ssdit_vae::AutoencoderKlConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = SingleStreamDiTConfig::from_seed_json(text) {
        let _ = config.validate();
    }
    let _ = AutoencoderKlConfig::from_json(text, "fuzz/config.json");
    if let Ok(config) = T5Gemma2EncoderConfig::from_hf_json(text, "fuzz/config.json") {
        let _ = config.validate("fuzz/config.json");
    }
});
