//! What the embedded-pipeline tests share: the six photos of the shared
//! sample data, each captioned with the repository's demo caption of the
//! same photo, and a pipeline configuration on a temporary store.

use std::path::{Path, PathBuf};

use ssdit::run::settings::demo_config;
use ssdit_core::Config;
use ssdit_testkit::shared_data;

/// The caption the repository's demo set gives the photo `stem`.
pub fn demo_caption(stem: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../demo/photos")
        .join(format!("{stem}.txt"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("demo caption {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Copies the six photos into `dir`, each with a `.txt` sidecar holding its
/// demo caption; returns `(file name, caption)` in file-name order.
pub fn captioned_photos(dir: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut photos: Vec<PathBuf> = std::fs::read_dir(shared_data("photos"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    photos.sort();
    assert_eq!(photos.len(), 6, "expected six sample photos");
    photos
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let caption = demo_caption(&stem);
            std::fs::copy(path, dir.join(&name)).unwrap();
            std::fs::write(dir.join(format!("{stem}.txt")), format!("{caption}\n")).unwrap();
            (name, caption)
        })
        .collect()
}

/// The demo settings on a store in `store`, with the embedded default's
/// models: the preview codec, the tiny text encoder and the tiny DiT.
pub fn embedded_config(store: &Path) -> Config {
    let mut config = demo_config();
    config.store.url = store.to_str().unwrap().to_string();
    config.models.vae = "preview".into();
    config.models.text_encoder = "tiny".into();
    config.models.dit = "tiny".into();
    config.models.device = "cpu".into();
    config.ingest.workers = 2;
    config
}
