//! Model directories written the way transformers writes them, for tests.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::NdArray;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use ssdit_text::loader::key_map;
use ssdit_text::t5gemma2::{LayerType, T5Gemma2EncoderConfig};
use ssdit_text::tiny::{tiny_config, tiny_encoder};

pub type B = NdArray<f32>;

/// One tensor of a safetensors file: element type, shape, bytes.
pub type Stored = (Dtype, Vec<usize>, Vec<u8>);

/// `config.json` of a `T5Gemma2ForConditionalGeneration` whose encoder text
/// config is `config` (the decoder and vision sizes are irrelevant to us).
pub fn hf_config_json(config: &T5Gemma2EncoderConfig) -> String {
    let layer_types: Vec<&str> = config
        .layer_types
        .iter()
        .map(|t| match t {
            LayerType::Sliding => "sliding_attention",
            LayerType::Full => "full_attention",
        })
        .collect();
    let text = serde_json::json!({
        "model_type": "t5gemma2_text",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.layer_types.len(),
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.num_key_value_heads,
        "head_dim": config.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "attn_logit_softcapping": null,
        "query_pre_attn_scalar": config.query_pre_attn_scalar,
        "rms_norm_eps": config.rms_norm_eps,
        "sliding_window": config.sliding_window,
        "layer_types": layer_types,
        "rope_parameters": {
            "sliding_attention": {"rope_type": "default", "rope_theta": config.rope_sliding.theta},
            "full_attention": {"rope_type": "default", "rope_theta": config.rope_full.theta},
        },
    });
    serde_json::json!({
        "model_type": "t5gemma2",
        "eoi_token_index": config.eoi_token_index,
        "encoder": {"model_type": "t5gemma2_encoder", "text_config": text},
        "decoder": {"model_type": "t5gemma2_decoder"},
    })
    .to_string()
}

/// The tiny encoder's weights under their checkpoint names
/// (`model.encoder.*`, PyTorch layouts), plus a vision-tower and a decoder
/// tensor as a full checkpoint has them.
pub fn tiny_checkpoint() -> BTreeMap<String, Stored> {
    let model = tiny_encoder::<B>(&Default::default());
    let bytes = ssdit_weights::save_safetensors(&model, &key_map(), BTreeMap::new()).unwrap();
    let mut tensors = read(&bytes);
    for name in [
        "model.encoder.vision_tower.vision_model.post_layernorm.weight",
        "model.encoder.multi_modal_projector.mm_soft_emb_norm.weight",
        "model.decoder.norm.weight",
    ] {
        tensors.insert(name.into(), f32_tensor(&[3], &[1.0, 2.0, 3.0]));
    }
    tensors
}

pub fn f32_tensor(shape: &[usize], values: &[f32]) -> Stored {
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    (Dtype::F32, shape.to_vec(), bytes)
}

pub fn read(bytes: &[u8]) -> BTreeMap<String, Stored> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
            )
        })
        .collect()
}

pub fn write(path: &Path, tensors: &BTreeMap<String, Stored>) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// A word-level `tokenizer.json` (`<pad>` 0, `<eos>` 1, `<bos>` 2, `<unk>` 3,
/// then `words`), whitespace pre-tokenizer, `<bos>` prepended.
pub fn word_tokenizer_json(words: &[&str]) -> String {
    let mut vocab = serde_json::Map::new();
    for (id, token) in ["<pad>", "<eos>", "<bos>", "<unk>"]
        .iter()
        .chain(words)
        .enumerate()
    {
        vocab.insert(token.to_string(), id.into());
    }
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                           "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "<pad>"), special(1, "<eos>"), special(2, "<bos>"), special(3, "<unk>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
    .to_string()
}

/// A complete model directory: the tiny encoder's weights as a full
/// T5Gemma2 checkpoint, its config, and a word-level tokenizer.
pub fn tiny_model_dir(dir: &Path) {
    std::fs::write(dir.join("config.json"), hf_config_json(&tiny_config())).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        word_tokenizer_json(&["a", "red", "blue", "flower", "petal"]),
    )
    .unwrap();
    write(&dir.join("model.safetensors"), &tiny_checkpoint());
}
