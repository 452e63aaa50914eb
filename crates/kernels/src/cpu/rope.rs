//! Rotary position embedding in the rotate-half form,
//! `out = x ⊙ cos + swap_halves(x) ⊙ sin`, on token-major rows
//! `[batch, tokens, heads, head_dim]`, a block of tokens per task.

use rayon::prelude::*;

/// Tokens per task.
const TOKENS_PER_TASK: usize = 16;

/// The sizes of a rotation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub tokens: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// Rotates `x` by the per-token tables `cos`, `sin` (`[tokens, head_dim]`).
pub(crate) fn forward(x: &[f32], cos: &[f32], sin: &[f32], layout: Layout) -> Vec<f32> {
    rotate(x, cos, sin, layout, Direction::Forward)
}

/// The gradient of `x` from the output's: the transpose of the rotation.
pub(crate) fn backward(grad: &[f32], cos: &[f32], sin: &[f32], layout: Layout) -> Vec<f32> {
    rotate(grad, cos, sin, layout, Direction::Transposed)
}

#[derive(Clone, Copy)]
enum Direction {
    Forward,
    Transposed,
}

fn rotate(x: &[f32], cos: &[f32], sin: &[f32], layout: Layout, direction: Direction) -> Vec<f32> {
    let Layout {
        tokens,
        heads,
        head_dim,
    } = layout;
    let token_len = heads * head_dim;
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(TOKENS_PER_TASK * token_len)
        .zip(x.par_chunks(TOKENS_PER_TASK * token_len))
        .enumerate()
        .for_each(|(block, (out, x))| {
            let first = block * TOKENS_PER_TASK;
            for (i, (out, x)) in out
                .chunks_exact_mut(token_len)
                .zip(x.chunks_exact(token_len))
                .enumerate()
            {
                let token = (first + i) % tokens;
                let cos = &cos[token * head_dim..][..head_dim];
                let sin = &sin[token * head_dim..][..head_dim];
                for (out, x) in out.chunks_exact_mut(head_dim).zip(x.chunks_exact(head_dim)) {
                    rotate_head(out, x, cos, sin, direction);
                }
            }
        });
    out
}

/// One head vector. Forward: `out[i] = x[i]·cos[i] + x[i ± half]·sin[i]`;
/// transposed: `out[j] = x[j]·cos[j] + x[j ± half]·sin[j ± half]`.
fn rotate_head(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32], direction: Direction) {
    let half = x.len() / 2;
    let (x_lo, x_hi) = x.split_at(half);
    let (out_lo, out_hi) = out.split_at_mut(half);
    let (sin_lo, sin_hi) = sin.split_at(half);
    let (cos_lo, cos_hi) = cos.split_at(half);
    let (sin_for_lo, sin_for_hi) = match direction {
        Direction::Forward => (sin_lo, sin_hi),
        Direction::Transposed => (sin_hi, sin_lo),
    };
    for i in 0..half {
        out_lo[i] = x_lo[i] * cos_lo[i] + x_hi[i] * sin_for_lo[i];
        out_hi[i] = x_hi[i] * cos_hi[i] + x_lo[i] * sin_for_hi[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_is_the_transpose_of_forward() {
        let layout = Layout {
            tokens: 3,
            heads: 2,
            head_dim: 4,
        };
        let n = 2 * layout.tokens * layout.heads * layout.head_dim; // batch 2
        let table = layout.tokens * layout.head_dim;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let g: Vec<f32> = (0..n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let cos: Vec<f32> = (0..table).map(|i| ((i * 3) % 7) as f32 / 7.0).collect();
        let sin: Vec<f32> = (0..table)
            .map(|i| ((i * 2) % 5) as f32 / 5.0 - 0.5)
            .collect();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
        // ⟨g, R·x⟩ = ⟨Rᵀ·g, x⟩ for the linear map R.
        let forward_side = dot(&g, &forward(&x, &cos, &sin, layout));
        let backward_side = dot(&backward(&g, &cos, &sin, layout), &x);
        assert!(
            (forward_side - backward_side).abs() < 1e-3,
            "{forward_side} vs {backward_side}"
        );
        // And the forward is the rotate-half formula.
        let out = forward(&x, &cos, &sin, layout);
        let (token, head) = (1, 1);
        let at = |i: usize| (token * layout.heads + head) * layout.head_dim + i;
        let t = |i: usize| token * layout.head_dim + i;
        assert_eq!(out[at(0)], x[at(0)] * cos[t(0)] + x[at(2)] * sin[t(0)]);
        assert_eq!(out[at(3)], x[at(3)] * cos[t(3)] + x[at(1)] * sin[t(3)]);
    }
}
