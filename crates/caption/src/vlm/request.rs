//! The chat-completions request body and the reading of its answer.

use base64::Engine;
use serde_json::{Value, json};

/// The data URL of an image: `data:<mime>;base64,<bytes>`. The MIME type is
/// detected from the content (PNG when unknown, which servers still try).
pub fn image_data_url(image: &[u8]) -> String {
    let mime = image::guess_format(image).map_or("image/png", |f| f.to_mime_type());
    let encoded = base64::engine::general_purpose::STANDARD.encode(image);
    format!("data:{mime};base64,{encoded}")
}

/// The request body: the system instruction, then a user turn with the
/// label text and the image as a base64 data URL.
pub fn request_body(
    model: &str,
    system: &str,
    user_text: &str,
    image_url: &str,
    max_tokens: u32,
    temperature: f32,
) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": [
                {"type": "text", "text": user_text},
                {"type": "image_url", "image_url": {"url": image_url}},
            ]},
        ],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": false,
    })
}

/// The text of the first choice of a chat completion. The content is a
/// string in the OpenAI schema; some servers send a list of text parts.
pub fn completion_text(body: &Value) -> Result<String, String> {
    let content = body
        .pointer("/choices/0/message/content")
        .ok_or_else(|| "no choices[0].message.content".to_owned())?;
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("")),
        other => Err(format!("content is {other}, not text")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_url_has_the_sniffed_mime_type() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0];
        assert!(image_data_url(&png).starts_with("data:image/png;base64,iVBORw0KGgo"));
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0];
        assert!(image_data_url(&jpeg).starts_with("data:image/jpeg;base64,"));
    }

    #[test]
    fn completion_text_reads_strings_and_parts() {
        let s = json!({"choices": [{"message": {"content": "A rose"}}]});
        assert_eq!(completion_text(&s).unwrap(), "A rose");
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "A "}, {"type": "text", "text": "rose"}]}}]});
        assert_eq!(completion_text(&parts).unwrap(), "A rose");
        assert!(completion_text(&json!({"error": "x"})).is_err());
    }
}
