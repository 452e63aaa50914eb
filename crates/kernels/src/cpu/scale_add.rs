//! `y ⊙ scale + offset` over `batch` groups of rows, the scale one row per
//! group, the offset one row per group or one per row; rows in blocks, one
//! block per task, reductions one group per task.

use rayon::prelude::*;

/// Rows per task.
const ROWS_PER_TASK: usize = 32;

/// `batch` groups of `rows` rows of `features` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub batch: usize,
    pub rows: usize,
    pub features: usize,
}

/// The offset's values and where they vary.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Offset<'a> {
    /// One row per group.
    PerGroup(&'a [f32]),
    /// One row per row of `y`.
    PerRow(&'a [f32]),
}

/// The gradients of `y` and of the scale (the offset's is the incoming
/// gradient itself, or [`sum_rows`] of it).
pub(crate) struct Gradients {
    pub y: Vec<f32>,
    pub scale: Vec<f32>,
}

/// `out[r] = y[r] ⊙ scale[group(r)] + offset[group(r) or r]`.
pub(crate) fn forward(y: &[f32], scale: &[f32], offset: Offset<'_>, layout: Layout) -> Vec<f32> {
    let Layout { rows, features, .. } = layout;
    let mut out = vec![0.0; y.len()];
    out.par_chunks_mut(features)
        .zip(y.par_chunks(features))
        .enumerate()
        .with_min_len(ROWS_PER_TASK)
        .for_each(|(r, (out, y))| {
            let group = r / rows;
            let scale = &scale[group * features..][..features];
            let offset = match offset {
                Offset::PerGroup(values) => &values[group * features..][..features],
                Offset::PerRow(values) => &values[r * features..][..features],
            };
            for (((out, &y), &s), &o) in out.iter_mut().zip(y).zip(scale).zip(offset) {
                *out = y * s + o;
            }
        });
    out
}

/// `dy[r] = g[r] ⊙ scale[group(r)]`, `dscale[b] = Σ_{r ∈ b} g[r] ⊙ y[r]`.
pub(crate) fn backward(grad: &[f32], y: &[f32], scale: &[f32], layout: Layout) -> Gradients {
    let Layout { rows, features, .. } = layout;
    let mut dy = vec![0.0; y.len()];
    dy.par_chunks_mut(features)
        .zip(grad.par_chunks(features))
        .enumerate()
        .with_min_len(ROWS_PER_TASK)
        .for_each(|(r, (dy, g))| {
            let scale = &scale[r / rows * features..][..features];
            for ((dy, &g), &s) in dy.iter_mut().zip(g).zip(scale) {
                *dy = g * s;
            }
        });
    let mut dscale = vec![0.0; scale.len()];
    let group_len = rows * features;
    dscale
        .par_chunks_mut(features)
        .zip(grad.par_chunks(group_len).zip(y.par_chunks(group_len)))
        .for_each(|(dscale, (g, y))| {
            for (g, y) in g.chunks(features).zip(y.chunks(features)) {
                for ((ds, &g), &y) in dscale.iter_mut().zip(g).zip(y) {
                    *ds += g * y;
                }
            }
        });
    Gradients {
        y: dy,
        scale: dscale,
    }
}

/// `Σ_{r ∈ b} g[r]` for every group `b`: the gradient of a per-group offset.
pub(crate) fn sum_rows(grad: &[f32], layout: Layout) -> Vec<f32> {
    let Layout { rows, features, .. } = layout;
    let mut sums = vec![0.0; layout.batch * features];
    sums.par_chunks_mut(features)
        .zip(grad.par_chunks(rows * features))
        .for_each(|(sums, g)| {
            for g in g.chunks(features) {
                for (sum, &g) in sums.iter_mut().zip(g) {
                    *sum += g;
                }
            }
        });
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values as values;

    #[test]
    fn forward_and_backward_follow_the_formulas_in_f64() {
        let layout = Layout {
            batch: 3,
            rows: 70, // more than one task per group, and a ragged last task
            features: 5,
        };
        let Layout {
            batch,
            rows,
            features,
        } = layout;
        let n = batch * rows * features;
        let (y, g) = (values(n, 1), values(n, 2));
        let (scale, group_offset) = (values(batch * features, 3), values(batch * features, 4));
        let row_offset = values(n, 5);
        let per_group = forward(&y, &scale, Offset::PerGroup(&group_offset), layout);
        let per_row = forward(&y, &scale, Offset::PerRow(&row_offset), layout);
        let grads = backward(&g, &y, &scale, layout);
        let offset_grad = sum_rows(&g, layout);
        for b in 0..batch {
            for f in 0..features {
                let p = b * features + f;
                let (mut dscale, mut doffset) = (0.0f64, 0.0f64);
                for r in 0..rows {
                    let i = (b * rows + r) * features + f;
                    let want = y[i] as f64 * scale[p] as f64;
                    assert!((per_group[i] as f64 - want - group_offset[p] as f64).abs() < 1e-6);
                    assert!((per_row[i] as f64 - want - row_offset[i] as f64).abs() < 1e-6);
                    assert!((grads.y[i] as f64 - g[i] as f64 * scale[p] as f64).abs() < 1e-6);
                    dscale += g[i] as f64 * y[i] as f64;
                    doffset += g[i] as f64;
                }
                assert!((grads.scale[p] as f64 - dscale).abs() < 1e-4, "dscale[{p}]");
                assert!(
                    (offset_grad[p] as f64 - doffset).abs() < 1e-4,
                    "doffset[{p}]"
                );
            }
        }
    }
}
