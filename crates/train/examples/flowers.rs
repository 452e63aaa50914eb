//! A short CPU training run on the 200 flower captions, end to end through
//! the library API the `ssdit` CLI uses ([`RunRequest`], [`spawn`],
//! [`RunHandle`]).
//!
//! The captions are `../shared/data/flowers-captions/<n>.txt`; the repository
//! has no flower photos, so caption `n` is paired with a crop of photo
//! `n mod 6` of `../shared/data/photos`. Images are encoded with the
//! weight-free preview codec, captions with the tiny text encoder, both
//! written where the encoders would write them; then the run trains, writing
//! the metrics CSV, the plots, the validation sheets and their animation
//! under `<store>/runs/<run>/`.
//!
//! ```text
//! cargo run --release -p ssdit-train --example flowers -- <store dir> [epochs] [dit]
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use image::RgbImage;
use image::imageops::{self, FilterType};
use ssdit_core::Config;
use ssdit_core::backend::ComputeBackend;
use ssdit_dataset::{Bucket, CaptionHash, Dataset, Encodings, SampleRecord, TextEncoding};
use ssdit_store::{F32Tensor, Store, TensorFile};
use ssdit_text::TextEncoder;
use ssdit_train::data::{EMBEDDING_TENSORS, LATENT_TENSORS};
use ssdit_train::{Resume, RunRequest, RunUpdate, TrainContext, TrainEvent, spawn};
use ssdit_vae::{CodecChoice, Sampling, images_to_tensor, load_codec};

const DATASET: &str = "flowers";
const CAPTIONS: usize = 200;
/// Pixel side of every image (a 16×16 latent, 64 tokens at patch 2).
const SIDE: u32 = 128;
/// Caption tokens (bytes, for the tiny encoder's tokenizer).
const TEXT_TOKENS: usize = 64;
/// Images or captions encoded at once.
const CHUNK: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(args.get(1).map_or("/tmp/ssdit-flowers", String::as_str));
    let epochs: usize = args.get(2).map_or(Ok(8), |e| e.parse())?;
    let dit = args.get(3).cloned().unwrap_or_else(|| "small".into());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    std::fs::create_dir_all(&root)?;
    let store = Store::open(root.to_str().context("store path")?).await?;

    let mut config = Config::default();
    config.models.dit = dit.clone();
    config.models.vae = "preview".into();
    config.models.text_encoder = "tiny".into();
    config.encode.max_text_length = TEXT_TOKENS;
    let train = &mut config.train;
    train.epochs = epochs;
    train.batch_size = 8;
    train.accum_steps = 1;
    train.learning_rate = 5e-4;
    train.save_every = epochs.div_ceil(2);
    train.validate_every = epochs.div_ceil(4).max(1);
    train.validate_steps = 20;
    train.validate_cfg = 3.0;
    train.validate_prompts = 4;

    let encodings = encode_dataset(&store, &data).await?;
    let run_id = format!("flowers-{dit}");
    let mut request = RunRequest::from_config(&run_id, DATASET, &config);
    request.encodings = Some(encodings);
    request.resume = Resume::Fresh;
    let ctx = TrainContext {
        store: store.clone(),
        bus: None,
        runtime: tokio::runtime::Handle::current(),
    };
    let handle = spawn(ctx, request)?;
    let mut updates = handle.subscribe();
    loop {
        match updates.recv().await {
            Ok(RunUpdate::Event(TrainEvent::Step(s))) if s.step % 10 == 0 => {
                println!(
                    "step {:>5} epoch {:>3} loss {:.4} lr {:.2e} gate {:.4} {:.1} samples/s",
                    s.step, s.epoch, s.loss, s.lr, s.gate, s.samples_per_second
                );
            }
            Ok(RunUpdate::Event(TrainEvent::Validated { step, sheet, .. })) => {
                println!("validated at step {step}: {sheet}");
            }
            Ok(RunUpdate::Event(TrainEvent::CheckpointSaved { step, key })) => {
                println!("checkpoint at step {step}: {key}");
            }
            Ok(RunUpdate::Finished(status)) => {
                println!("finished: {status:?}");
                break;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(error) => anyhow::bail!("progress channel: {error}"),
        }
    }
    println!(
        "outputs under {}",
        root.join("runs").join(&run_id).display()
    );
    Ok(())
}

/// Writes the 200 samples (records, latents, embeddings) and returns their encodings.
async fn encode_dataset(store: &Store, data: &Path) -> anyhow::Result<Encodings> {
    let device = Default::default();
    let codec = load_codec::<ComputeBackend>(&CodecChoice::Preview, &device)?;
    let text = TextEncoder::<ComputeBackend>::tiny(TEXT_TOKENS, &device)?;
    let encodings = Encodings {
        vae: codec.fingerprint().to_string(),
        text: TextEncoding {
            encoder: text.fingerprint().to_string(),
            tokenizer: text.tokenizer_fingerprint().to_string(),
            max_length: TEXT_TOKENS as u32,
        },
    };
    let mut photos: Vec<PathBuf> = std::fs::read_dir(data.join("photos"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    photos.sort();
    let photos: Vec<RgbImage> = photos
        .iter()
        .map(|path| {
            Ok(image::open(path)
                .with_context(|| path.display().to_string())?
                .to_rgb8())
        })
        .collect::<anyhow::Result<_>>()?;
    let dataset = Dataset::new(store.clone(), DATASET)?;
    let bucket = Bucket {
        width: SIDE,
        height: SIDE,
    };
    for first in (1..=CAPTIONS).step_by(CHUNK) {
        let numbers: Vec<usize> = (first..first + CHUNK).collect();
        let captions: Vec<String> = numbers
            .iter()
            .map(|n| {
                let path = data.join("flowers-captions").join(format!("{n}.txt"));
                Ok(std::fs::read_to_string(&path)
                    .with_context(|| path.display().to_string())?
                    .trim()
                    .to_string())
            })
            .collect::<anyhow::Result<_>>()?;
        let images: Vec<RgbImage> = numbers
            .iter()
            .map(|&n| crop(&photos[n % photos.len()], n))
            .collect();
        let latents = codec.encode(images_to_tensor(&images, &device)?, &Sampling::Mean)?;
        let embeddings = text.encode(&captions)?.embeddings;
        let [_, c, h, w] = latents.dims();
        let [_, l, d] = embeddings.dims();
        for (i, &n) in numbers.iter().enumerate() {
            let id = format!("flower{n:04}");
            let latent = latents.clone().slice(i..i + 1).reshape([c, h, w]);
            let embedding = embeddings.clone().slice(i..i + 1).reshape([l, d]);
            put(
                store,
                &encodings.latent_key(&id, bucket)?,
                LATENT_TENSORS[0],
                latent,
            )
            .await?;
            put(
                store,
                &encodings.embedding_key(&CaptionHash::of(&captions[i]))?,
                EMBEDDING_TENSORS[0],
                embedding,
            )
            .await?;
            let mut png = std::io::Cursor::new(Vec::new());
            images[i].write_to(&mut png, image::ImageFormat::Png)?;
            let record = SampleRecord {
                id: id.clone(),
                source: format!("{n}.txt"),
                image_key: String::new(),
                caption_key: None,
                bucket,
                original_size: [SIDE, SIDE],
                label: None,
            };
            dataset
                .add_sample(
                    record,
                    Bytes::from(png.into_inner()),
                    "png",
                    Some(&captions[i]),
                )
                .await?;
        }
        println!("encoded samples {first}..{}", first + CHUNK - 1);
    }
    Ok(encodings)
}

/// A square crop of `photo` whose size and position vary with `n`, resized
/// to `SIDE`; odd `n` are mirrored.
fn crop(photo: &RgbImage, n: usize) -> RgbImage {
    let (w, h) = photo.dimensions();
    let side = w.min(h) * (70 + (n as u32 * 7) % 31) / 100;
    let x = (w - side) * ((n as u32 * 13) % 11) / 10;
    let y = (h - side) * ((n as u32 * 5) % 7) / 6;
    let cropped = imageops::crop_imm(photo, x, y, side, side).to_image();
    let resized = imageops::resize(&cropped, SIDE, SIDE, FilterType::Lanczos3);
    if n % 2 == 1 {
        imageops::flip_horizontal(&resized)
    } else {
        resized
    }
}

/// Stores `tensor` as the one tensor `name` of a safetensors file at `key`.
async fn put<const D: usize>(
    store: &Store,
    key: &ssdit_store::Key,
    name: &str,
    tensor: burn::tensor::Tensor<ComputeBackend, D>,
) -> anyhow::Result<()> {
    let shape = tensor.dims().to_vec();
    let values = tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut file = TensorFile::new();
    file.insert(name, F32Tensor::new(values, shape)?);
    store.put_tensors(key, file).await?;
    Ok(())
}
