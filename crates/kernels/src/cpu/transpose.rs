//! Batched transposes of row-major matrices, one matrix per task, in tiles.

use rayon::prelude::*;

/// Side of the square tiles the copy walks in.
const TILE: usize = 32;

/// `out[n][j][i] = x[n][i][j]` for `x` of `count` matrices `rows × cols`.
pub(crate) fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let size = rows * cols;
    let mut out = vec![0.0; x.len()];
    if size == 0 {
        return out;
    }
    out.par_chunks_mut(size)
        .zip(x.par_chunks(size))
        .for_each(|(out, x)| {
            for i0 in (0..rows).step_by(TILE) {
                for j0 in (0..cols).step_by(TILE) {
                    for i in i0..(i0 + TILE).min(rows) {
                        for j in j0..(j0 + TILE).min(cols) {
                            out[j * rows + i] = x[i * cols + j];
                        }
                    }
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values as values;

    #[test]
    fn every_element_lands_at_the_swapped_index() {
        for (count, rows, cols) in [(3, 2, 77), (2, 45, 33), (1, 1, 5), (2, 0, 4)] {
            let x = values(count * rows * cols, 1);
            let out = transpose(&x, rows, cols);
            for n in 0..count {
                for i in 0..rows {
                    for j in 0..cols {
                        let size = rows * cols;
                        assert_eq!(out[n * size + j * rows + i], x[n * size + i * cols + j]);
                    }
                }
            }
        }
    }
}
