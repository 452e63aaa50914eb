//! A depthwise 3×3 convolution with zero padding over a row-major token
//! grid `[batch, h·w, channels]`, one grid row per task: each output row
//! reads three input rows, every tap a vector operation over the channels.

use rayon::prelude::*;

/// The grid the tokens form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub channels: usize,
}

impl Grid {
    fn row_len(&self) -> usize {
        self.w * self.channels
    }
}

/// Taps as `[9][channels]`, tap `3·i + j` weighing the input at offset
/// `(i − 1, j − 1)` from the output position.
pub(crate) type Taps<'a> = &'a [f32];

/// The gradients of the input, the taps (`[9][channels]`) and the bias.
pub(crate) struct Gradients {
    pub x: Vec<f32>,
    pub taps: Vec<f32>,
    pub bias: Vec<f32>,
}

/// `out[y, x] = bias + Σ_ij taps[3i+j] ⊙ in[y+i−1, x+j−1]`.
pub(crate) fn forward(x: &[f32], taps: Taps<'_>, bias: &[f32], grid: Grid) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(grid.row_len())
        .enumerate()
        .for_each(|(row, out)| {
            out.chunks_exact_mut(grid.channels)
                .for_each(|pixel| pixel.copy_from_slice(bias));
            for_each_tap(grid, row, |tap, input_row, shift| {
                let tap = &taps[tap * grid.channels..][..grid.channels];
                accumulate(
                    out,
                    &x[input_row * grid.row_len()..][..grid.row_len()],
                    tap,
                    shift,
                    grid,
                );
            });
        });
    out
}

/// The gradients of [`forward`] from the output's gradient `grad`.
pub(crate) fn backward(grad: &[f32], x: &[f32], taps: Taps<'_>, grid: Grid) -> Gradients {
    let channels = grid.channels;
    // The input's gradient is the convolution of `grad` with the flipped kernel.
    let flipped: Vec<f32> = (0..9)
        .rev()
        .flat_map(|tap| taps[tap * channels..][..channels].iter().copied())
        .collect();
    let dx = forward(grad, &flipped, &vec![0.0; channels], grid);
    let partials: Vec<Vec<f32>> = grad
        .par_chunks(grid.row_len())
        .enumerate()
        .map(|(row, grad)| {
            let mut sums = vec![0.0; 10 * channels]; // 9 taps, then the bias
            for_each_tap(grid, row, |tap, input_row, shift| {
                let input = &x[input_row * grid.row_len()..][..grid.row_len()];
                let d_tap = &mut sums[tap * channels..][..channels];
                correlate(d_tap, grad, input, shift, grid);
            });
            let d_bias = &mut sums[9 * channels..];
            for pixel in grad.chunks_exact(channels) {
                d_bias.iter_mut().zip(pixel).for_each(|(sum, g)| *sum += g);
            }
            sums
        })
        .collect();
    let mut sums = vec![0.0; 10 * channels];
    for partial in &partials {
        sums.iter_mut().zip(partial).for_each(|(sum, p)| *sum += p);
    }
    let bias = sums.split_off(9 * channels);
    Gradients {
        x: dx,
        taps: sums,
        bias,
    }
}

/// Calls `f(tap, input_row, column_shift)` for each tap of output row `row`
/// (batch-major) whose input row lies inside the grid.
fn for_each_tap(grid: Grid, row: usize, mut f: impl FnMut(usize, usize, isize)) {
    let (batch, y) = (row / grid.h, row % grid.h);
    for i in 0..3 {
        let Some(input_y) = (y + i).checked_sub(1).filter(|&input_y| input_y < grid.h) else {
            continue;
        };
        for j in 0..3 {
            f(3 * i + j, batch * grid.h + input_y, j as isize - 1);
        }
    }
}

/// The output columns whose input column `x + shift` lies inside the grid.
fn columns(shift: isize, w: usize) -> std::ops::Range<usize> {
    let start = usize::from(shift < 0);
    let end = if shift > 0 { w - 1 } else { w };
    start..end.max(start)
}

/// `out[x] += tap ⊙ input[x + shift]` over one grid row.
fn accumulate(out: &mut [f32], input: &[f32], tap: &[f32], shift: isize, grid: Grid) {
    let c = grid.channels;
    for x in columns(shift, grid.w) {
        let source = (x as isize + shift) as usize;
        let out = &mut out[x * c..][..c];
        let input = &input[source * c..][..c];
        for ((out, input), tap) in out.iter_mut().zip(input).zip(tap) {
            *out += input * tap;
        }
    }
}

/// `d_tap += Σ_x grad[x] ⊙ input[x + shift]` over one grid row.
fn correlate(d_tap: &mut [f32], grad: &[f32], input: &[f32], shift: isize, grid: Grid) {
    let c = grid.channels;
    for x in columns(shift, grid.w) {
        let source = (x as isize + shift) as usize;
        let grad = &grad[x * c..][..c];
        let input = &input[source * c..][..c];
        for ((sum, grad), input) in d_tap.iter_mut().zip(grad).zip(input) {
            *sum += grad * input;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values as values;

    /// The convolution one output value at a time.
    fn direct(x: &[f32], taps: &[f32], bias: &[f32], g: Grid) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for b in 0..g.batch {
            for y in 0..g.h as isize {
                for xx in 0..g.w as isize {
                    for c in 0..g.channels {
                        let mut sum = bias[c];
                        for i in 0..3 {
                            for j in 0..3 {
                                let (iy, ix) = (y + i - 1, xx + j - 1);
                                if (0..g.h as isize).contains(&iy)
                                    && (0..g.w as isize).contains(&ix)
                                {
                                    let at = ((b * g.h + iy as usize) * g.w + ix as usize)
                                        * g.channels
                                        + c;
                                    sum += taps[(3 * i + j) as usize * g.channels + c] * x[at];
                                }
                            }
                        }
                        out[((b * g.h + y as usize) * g.w + xx as usize) * g.channels + c] = sum;
                    }
                }
            }
        }
        out
    }

    const GRID: Grid = Grid {
        batch: 2,
        h: 3,
        w: 4,
        channels: 5,
    };

    #[test]
    fn forward_is_the_direct_convolution() {
        let n = GRID.batch * GRID.h * GRID.w * GRID.channels;
        let (x, taps, bias) = (
            values(n, 1),
            values(9 * GRID.channels, 2),
            values(GRID.channels, 3),
        );
        let got = forward(&x, &taps, &bias, GRID);
        for (got, want) in got.iter().zip(direct(&x, &taps, &bias, GRID)) {
            assert!((got - want).abs() < 1e-6);
        }
    }

    #[test]
    fn backward_is_the_adjoint_of_forward() {
        // ⟨g, conv(x)⟩ is linear in x, taps and bias: its gradients are exact
        // when ⟨dx, x⟩ + ⟨dtaps, taps⟩ + ⟨dbias, bias⟩ = ⟨g, conv(x)⟩.
        let n = GRID.batch * GRID.h * GRID.w * GRID.channels;
        let (x, taps, bias, g) = (
            values(n, 4),
            values(9 * GRID.channels, 5),
            values(GRID.channels, 6),
            values(n, 7),
        );
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a * b) as f64).sum::<f64>();
        let grads = backward(&g, &x, &taps, GRID);
        let value = dot(&g, &forward(&x, &taps, &bias, GRID));
        // dx alone is the adjoint of the linear map x ↦ conv(x) without bias.
        let linear = dot(&g, &forward(&x, &taps, &[0.0; GRID.channels], GRID));
        assert!((dot(&grads.x, &x) - linear).abs() < 1e-4);
        assert!((dot(&grads.taps, &taps) - linear).abs() < 1e-4);
        assert!((dot(&grads.bias, &bias) - (value - linear)).abs() < 1e-4);
        // And each tap's gradient is the correlation it should be, checked directly.
        let mut unit = vec![0.0; 9 * GRID.channels];
        unit[4 * GRID.channels + 2] = 1.0; // centre tap of channel 2
        let centre = dot(&g, &forward(&x, &unit, &[0.0; GRID.channels], GRID));
        assert!((grads.taps[4 * GRID.channels + 2] as f64 - centre).abs() < 1e-4);
    }
}
