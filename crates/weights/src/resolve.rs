use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where a model's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory on disk holding `config.json` and the weights.
    Local(PathBuf),
    /// A Hugging Face repository id such as `diffusers/FLUX.1-vae`, fetched
    /// through the standard hub cache (`HF_HOME`, `HF_TOKEN`).
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

impl ModelSource {
    /// Reads a user's model argument: an existing path is local; `owner/name`
    /// or `owner/name@revision` that is not a path is a hub id.
    pub fn parse(spec: &str) -> Self {
        let path = Path::new(spec);
        if path.exists()
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.split('/').count() != 2
        {
            return Self::Local(path.to_path_buf());
        }
        match spec.split_once('@') {
            Some((repo, revision)) => Self::Hub {
                repo: repo.to_string(),
                revision: Some(revision.to_string()),
            },
            None => Self::Hub {
                repo: spec.to_string(),
                revision: None,
            },
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Hub {
                repo,
                revision: None,
            } => write!(f, "{repo}"),
            Self::Hub {
                repo,
                revision: Some(rev),
            } => write!(f, "{repo}@{rev}"),
        }
    }
}

/// Makes `files` of a model available on disk and returns the directory
/// holding them. A local directory is checked, never modified; a hub repo is
/// downloaded into (or read from) the hub cache. Files whose names end in
/// `?` are optional (e.g. `"model.safetensors.index.json?"`).
pub fn resolve(source: &ModelSource, files: &[&str]) -> Result<PathBuf> {
    match source {
        ModelSource::Local(dir) => {
            for file in files.iter().filter(|f| !f.ends_with('?')) {
                if !dir.join(file).is_file() {
                    return Err(Error::Resolve {
                        id: dir.display().to_string(),
                        reason: format!("{file} not found in the model directory"),
                    });
                }
            }
            Ok(dir.clone())
        }
        ModelSource::Hub { repo, revision } => download(repo, revision.as_deref(), files),
    }
}

fn download(repo: &str, revision: Option<&str>, files: &[&str]) -> Result<PathBuf> {
    let id = repo.to_string();
    let hub_error = |reason: String| Error::Resolve {
        id: id.clone(),
        reason: format!(
            "{reason} (no network? download it elsewhere and pass the local directory instead)"
        ),
    };
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| hub_error(e.to_string()))?;
    let repo = match revision {
        Some(rev) => {
            hf_hub::Repo::with_revision(repo.to_string(), hf_hub::RepoType::Model, rev.to_string())
        }
        None => hf_hub::Repo::model(repo.to_string()),
    };
    let api = api.repo(repo);
    let mut dir = None;
    for file in files {
        let (name, optional) = match file.strip_suffix('?') {
            Some(name) => (name, true),
            None => (*file, false),
        };
        match api.get(name) {
            Ok(path) => dir = path.parent().map(Path::to_path_buf),
            Err(_) if optional => {}
            Err(e) => return Err(hub_error(format!("fetching {name}: {e}"))),
        }
    }
    dir.ok_or_else(|| hub_error("no files fetched".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_ids_and_paths() {
        assert_eq!(
            ModelSource::parse("diffusers/FLUX.1-vae"),
            ModelSource::Hub {
                repo: "diffusers/FLUX.1-vae".into(),
                revision: None
            }
        );
        assert_eq!(
            ModelSource::parse("google/t5gemma-2-1b-1b@main"),
            ModelSource::Hub {
                repo: "google/t5gemma-2-1b-1b".into(),
                revision: Some("main".into())
            }
        );
        assert_eq!(
            ModelSource::parse("./models/vae"),
            ModelSource::Local("./models/vae".into())
        );
        assert_eq!(
            ModelSource::parse("/abs/vae"),
            ModelSource::Local("/abs/vae".into())
        );
    }

    #[test]
    fn local_directory_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&ModelSource::Local(dir.path().into()), &["config.json"]).unwrap_err();
        assert!(err.to_string().contains("config.json not found"), "{err}");
    }
}
