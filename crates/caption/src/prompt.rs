//! The captioning instruction sent to the VLM as its system message, and the
//! user turn that carries the image and its category label.
//!
//! [`BOTANICAL_INSTRUCTION`] is ours, written to the rules of the seed's
//! Qwen3-VL instruction (its README): one line, at most 50 words,
//! comma-separated phrases in the order view → flower name and state →
//! petals → centre → stem/leaves → background → lighting/focus, precise
//! botanical terms, and the category label treated as a hint to verify.
//! A different instruction can be loaded from a file with [`load_prompt`].

use std::path::Path;

use crate::error::{Error, Result};

/// The default system instruction for botanical captioning.
pub const BOTANICAL_INSTRUCTION: &str = "\
You write captions of flower photographs for a text-to-image training set. Describe only what \
is visible in the image; never add anything you cannot see (place, season, smell, meaning).

Each image comes with a category label taken from the dataset's folders or label file. The \
label is a hint to verify, not a fact:
- If the flower matches the label, name it with the label.
- If the image clearly shows a different flower, use the correct common name instead.
- If the species cannot be told from the image, describe its visible features without naming a species.
- If there is no label, name the flower only when you can identify it with confidence.

Write ONE line of at most 50 words: short descriptive phrases separated by commas, with no \
quotation marks, no markdown, no line breaks and no preamble such as \"Caption:\". Keep this order:
1. Shot type, then the flower name and its state: \"A macro shot of a fully blooming rose\". \
Shot types: extreme close-up, macro shot, eye-level shot, top-down view.
2. Petals: exact colours (\"pale pink fading to white at the edges\", \"vibrant magenta\", \
\"speckled purple\"), patterns (veining, spots, stripes, gradients), edges (serrated, smooth, \
ruffled), texture (velvety, waxy, delicate), arrangement (overlapping, sparse, symmetrical): \
\"having ... petals ...\".
3. The centre when visible, in botanical terms (stamen, pistil, anthers, pollen, cone, disk): \
\"the center is ...\".
4. Stem and leaves when visible: shape (lance-shaped, oval), arrangement, surface (glossy, \
hairy, thorny).
5. The background as seen: \"the background is blurred green foliage\", \"studio black \
background\", \"dirt ground\".
6. Lighting and focus: natural lighting, dappled sunlight, harsh shadows, studio lighting, \
shallow depth of field, bokeh, sharp focus, soft focus.
Mention the flower's condition where it shows: closed bud, drooping petals, withered edges, \
covered in dew droplets.

Example: A macro shot of a sunflower in full bloom, having bright yellow petals with smooth \
edges, the center is a dark brown disk dense with florets, the background is a clear blue sky, \
natural sunlight, sharp focus";

/// Loads a system instruction from a UTF-8 text file (trimmed, not empty).
pub fn load_prompt(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Config {
            what: "prompt file",
            reason: format!("{} is empty", path.display()),
        });
    }
    Ok(text.to_owned())
}

/// The text of the user turn that goes with the image: the category label
/// as the instruction describes it, or a note that there is none.
pub fn user_text(label: Option<&str>) -> String {
    match label.map(str::trim).filter(|l| !l.is_empty()) {
        Some(label) => format!(
            "Category label: {label}\nVerify the label against the image, then write the caption."
        ),
        None => "Category label: none\nWrite the caption.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_states_the_seed_rules() {
        for needle in [
            "50 words",
            "commas",
            "no quotation marks",
            "label",
            "the center is",
        ] {
            assert!(BOTANICAL_INSTRUCTION.contains(needle), "{needle}");
        }
    }

    #[test]
    fn user_text_carries_the_label() {
        assert!(user_text(Some(" sunflower ")).contains("Category label: sunflower\n"));
        assert!(user_text(Some("")).contains("Category label: none"));
        assert!(user_text(None).contains("Category label: none"));
    }

    #[test]
    fn prompt_files_load_trimmed_and_empty_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.txt");
        std::fs::write(&path, "\n Caption the image.\n").unwrap();
        assert_eq!(load_prompt(&path).unwrap(), "Caption the image.");
        std::fs::write(&path, " \n").unwrap();
        assert!(load_prompt(&path).is_err());
        assert!(load_prompt(&dir.path().join("missing.txt")).is_err());
    }
}
