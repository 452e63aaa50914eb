//! `ssdit dataset stats`: the latent statistics the seed's
//! `scripts/calculate_cache_statistics.py` computes, and more — in f64:
//!
//! - per channel, the mean and standard deviation of every latent value of
//!   the dataset pooled (population std, ddof 0, as numpy's default), merged
//!   sample by sample with Chan et al.'s parallel formula so no sum of
//!   squares loses precision;
//! - the same over all channels;
//! - the seed's own two numbers: the mean of per-sample means and the mean
//!   of per-sample standard deviations (unbiased, as `torch.Tensor.std`) —
//!   what it tells you to copy into `Config.dataset_mean/std`;
//! - the bucket histogram and the caption-length histogram (in words).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures::{StreamExt, TryStreamExt};
use image::RgbImage;
use ssdit_dataset::{Bucket, Dataset, SampleRecord};
use ssdit_render::{BarChart, Histogram, canvas, colors};
use ssdit_store::layout;

use crate::tensors::{LATENT_NAMES, read};
use crate::{Error, Result};

/// Latent files read at once.
const CONCURRENCY: usize = 8;

/// Running count, mean and sum of squared deviations (Welford / Chan).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    /// Σ (x − mean)².
    pub m2: f64,
}

impl Moments {
    /// The moments of `values`, two-pass in f64.
    pub fn of(values: impl Iterator<Item = f64> + Clone) -> Self {
        let (count, sum) = values.clone().fold((0u64, 0.0), |(n, s), v| (n + 1, s + v));
        if count == 0 {
            return Self::default();
        }
        let mean = sum / count as f64;
        let m2 = values.map(|v| (v - mean) * (v - mean)).sum();
        Self { count, mean, m2 }
    }

    /// Both sets pooled (Chan et al. 1979).
    pub fn merge(self, other: Self) -> Self {
        if self.count == 0 {
            return other;
        }
        if other.count == 0 {
            return self;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        let mean = self.mean + delta * other.count as f64 / count as f64;
        let m2 = self.m2
            + other.m2
            + delta * delta * (self.count as f64 * other.count as f64) / count as f64;
        Self { count, mean, m2 }
    }

    /// Population standard deviation (ddof 0).
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2 / self.count as f64).sqrt()
        }
    }

    /// Sample standard deviation (ddof 1), as `torch.Tensor.std()`.
    pub fn unbiased_std(&self) -> f64 {
        if self.count < 2 {
            f64::NAN
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

/// Statistics of one dataset's latents and captions.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetStats {
    pub dataset: String,
    /// The VAE whose latents were read.
    pub vae: String,
    /// Samples whose latent was read.
    pub samples: usize,
    /// Samples without a latent of this VAE.
    pub without_latent: usize,
    /// Per channel, over every value of every sample.
    pub channels: Vec<Moments>,
    /// Over every value.
    pub overall: Moments,
    /// The seed's `dataset_mean`: the mean of per-sample means.
    pub seed_mean: f64,
    /// The seed's `dataset_std`: the mean of per-sample unbiased stds.
    pub seed_std: f64,
    /// Samples per bucket (all samples of the dataset).
    pub buckets: BTreeMap<Bucket, usize>,
    /// Words in each caption, for samples that have one.
    pub caption_words: Vec<u64>,
    /// Samples without a caption.
    pub without_caption: usize,
}

/// What one sample contributes.
struct SampleStats {
    channels: Vec<Moments>,
    overall: Moments,
}

/// Computes the statistics of `dataset`'s latents of VAE `vae`.
pub async fn dataset_stats(dataset: &Dataset, vae: &str) -> Result<DatasetStats> {
    let samples = dataset.samples().await?;
    let mut buckets: BTreeMap<Bucket, usize> = BTreeMap::new();
    for sample in &samples {
        *buckets.entry(sample.bucket).or_default() += 1;
    }
    let present = latent_keys(dataset, vae, &samples).await?;
    let per_sample: Vec<SampleStats> = futures::stream::iter(present.iter())
        .map(|(sample, key)| async move {
            let latent = read(dataset.store(), key, &LATENT_NAMES, 3, &sample.id, "latent").await?;
            Ok::<_, Error>(sample_stats(latent.shape(), latent.data()))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let channel_count = per_sample.first().map_or(0, |s| s.channels.len());
    if let Some((index, _)) = per_sample
        .iter()
        .enumerate()
        .find(|(_, s)| s.channels.len() != channel_count)
    {
        let (sample, key) = &present[index];
        return Err(Error::SampleData {
            sample_id: sample.id.clone(),
            what: "latent",
            key: key.to_string(),
            reason: format!(
                "{} channels where the dataset's other latents have {channel_count}",
                per_sample[index].channels.len()
            ),
        });
    }
    let mut channels = vec![Moments::default(); channel_count];
    let mut overall = Moments::default();
    let (mut mean_sum, mut std_sum) = (0.0, 0.0);
    for sample in &per_sample {
        for (total, part) in channels.iter_mut().zip(&sample.channels) {
            *total = total.merge(*part);
        }
        overall = overall.merge(sample.overall);
        mean_sum += sample.overall.mean;
        std_sum += sample.overall.unbiased_std();
    }
    let n = per_sample.len().max(1) as f64;
    let mut caption_words = Vec::new();
    let mut without_caption = 0;
    for sample in &samples {
        match dataset.caption(sample).await? {
            Some(text) => caption_words.push(text.split_whitespace().count() as u64),
            None => without_caption += 1,
        }
    }
    Ok(DatasetStats {
        dataset: dataset.name().to_string(),
        vae: vae.to_string(),
        samples: per_sample.len(),
        without_latent: samples.len() - per_sample.len(),
        channels,
        overall,
        seed_mean: if per_sample.is_empty() {
            f64::NAN
        } else {
            mean_sum / n
        },
        seed_std: if per_sample.is_empty() {
            f64::NAN
        } else {
            std_sum / n
        },
        buckets,
        caption_words,
        without_caption,
    })
}

/// The samples that have a latent of `vae`, with its key.
async fn latent_keys<'a>(
    dataset: &Dataset,
    vae: &str,
    samples: &'a [SampleRecord],
) -> Result<Vec<(&'a SampleRecord, ssdit_store::Key)>> {
    let listed: std::collections::BTreeSet<String> = dataset
        .store()
        .list(&layout::latents_prefix(vae)?)
        .await?
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    let mut present = Vec::new();
    for sample in samples {
        let key = layout::latent(&sample.id, vae, sample.bucket.width, sample.bucket.height)?;
        if listed.contains(key.as_str()) {
            present.push((sample, key));
        }
    }
    Ok(present)
}

fn sample_stats(shape: &[usize], data: &[f32]) -> SampleStats {
    let plane = shape[1] * shape[2];
    let channels = data
        .chunks(plane.max(1))
        .map(|c| Moments::of(c.iter().map(|&v| f64::from(v))))
        .collect();
    SampleStats {
        channels,
        overall: Moments::of(data.iter().map(|&v| f64::from(v))),
    }
}

impl DatasetStats {
    /// The printed report.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "dataset {}: {} samples with latents of VAE {}, {} without",
            self.dataset, self.samples, self.vae, self.without_latent
        );
        let _ = writeln!(
            out,
            "all values: mean {:.6}, std {:.6} (population, {} values)",
            self.overall.mean,
            self.overall.std(),
            self.overall.count
        );
        let _ = writeln!(
            out,
            "the seed's calculate_cache_statistics.py: dataset_mean = {:.6}, dataset_std = {:.6}",
            self.seed_mean, self.seed_std
        );
        let _ = writeln!(out, "{:>7}  {:>12}  {:>12}", "channel", "mean", "std");
        for (index, channel) in self.channels.iter().enumerate() {
            let _ = writeln!(
                out,
                "{index:>7}  {:>12.6}  {:>12.6}",
                channel.mean,
                channel.std()
            );
        }
        let _ = writeln!(out, "buckets (width x height):");
        for (bucket, count) in &self.buckets {
            let _ = writeln!(out, "  {:>9}  {count}", bucket.to_string());
        }
        if self.caption_words.is_empty() {
            let _ = writeln!(out, "captions: none");
        } else {
            let mut words = self.caption_words.clone();
            words.sort_unstable();
            let _ = writeln!(
                out,
                "caption length (words): min {}, median {}, max {}; {} samples without a caption",
                words[0],
                words[words.len() / 2],
                words[words.len() - 1],
                self.without_caption
            );
        }
        out
    }

    /// The charts: per-channel mean ± std, buckets, caption lengths.
    pub fn render(&self) -> Result<RgbImage> {
        let mut charts = Vec::new();
        if !self.channels.is_empty() {
            let mut chart = BarChart::new(format!(
                "{}: latent mean +/- std per channel (VAE {})",
                self.dataset, self.vae
            ))
            .x_label("channel")
            .y_label("value");
            for (index, channel) in self.channels.iter().enumerate() {
                chart = chart.bar_with_spread(index.to_string(), channel.mean, channel.std());
            }
            charts.push(chart.render()?);
        }
        if !self.buckets.is_empty() {
            let mut chart = BarChart::new(format!("{}: samples per bucket", self.dataset))
                .x_label("bucket (width x height)")
                .y_label("samples");
            for (bucket, count) in &self.buckets {
                chart = chart.bar(bucket.to_string(), *count as f64);
            }
            charts.push(chart.render()?);
        }
        if !self.caption_words.is_empty() {
            let histogram = Histogram::of_integers(&self.caption_words, 20)?;
            let title = format!(
                "{}: caption length ({} without caption)",
                self.dataset, self.without_caption
            );
            charts.push(histogram.bar_chart(title, "words").render()?);
        }
        if charts.is_empty() {
            return Err(Error::Input(format!(
                "dataset {} has no samples to chart",
                self.dataset
            )));
        }
        Ok(canvas::stack_vertical(&charts, 8, colors::WHITE)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_moments_equal_the_moments_of_the_union() {
        let a = [1.0, 2.0, 4.0];
        let b = [-3.0, 0.5];
        let merged = Moments::of(a.iter().copied()).merge(Moments::of(b.iter().copied()));
        let all = Moments::of(a.iter().chain(&b).copied());
        assert_eq!(merged.count, 5);
        assert!((merged.mean - all.mean).abs() < 1e-15);
        assert!((merged.m2 - all.m2).abs() < 1e-12);
        assert!((all.std() - (all.m2 / 5.0).sqrt()).abs() < 1e-15);
        assert!((all.unbiased_std() - (all.m2 / 4.0).sqrt()).abs() < 1e-15);
        assert_eq!(Moments::default().merge(all), all);
        assert!(Moments::of([1.0].into_iter()).unbiased_std().is_nan());
    }

    #[test]
    fn per_sample_stats_split_channels() {
        let data = [1.0f32, 3.0, 10.0, 10.0];
        let stats = sample_stats(&[2, 1, 2], &data);
        assert_eq!(stats.channels.len(), 2);
        assert_eq!(stats.channels[0].mean, 2.0);
        assert_eq!(stats.channels[1].std(), 0.0);
        assert_eq!(stats.overall.mean, 6.0);
    }
}
