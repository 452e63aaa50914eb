//! An AVX2 + FMA product for attention's shapes (a few hundred rows and
//! columns, an inner size from 64 to a few hundred): `b` is packed once into
//! panels of 16 columns, and `a` is read in place, six rows at a time, one
//! broadcast per element. matrixmultiply packs both operands, element by
//! element wherever a row-major `a` or a transposed `b` meets its kernels.
//! Against matrixmultiply built as in a release, this kernel is as fast on
//! the two products whose `a` is transposed and up to 1.36× faster on the
//! other four; in the dev profile, whose debug checks slow matrixmultiply's
//! packing, 1.2–2.9× (docs/benchmarks.md, seventh run).

use std::arch::x86_64::{
    __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};
use std::cell::RefCell;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Rows of `a` (and of `c`) in one tile: 6 × 2 accumulators, 2 panel
/// registers and a broadcast fill 15 of AVX2's 16 registers.
const TILE_ROWS: usize = 6;
/// Columns of one panel of `b` (and of a tile of `c`): two 8-lane registers.
const PANEL_COLS: usize = 16;
const LANES: usize = 8;

thread_local! {
    /// The packed panels of `b`, reused across calls on one thread.
    static PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether this CPU runs [`gemm`].
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// `c ← alpha·a·b + beta·c` (with `beta = 0`, `c` is not read); the shapes
/// chain (checked by the caller). Callers check [`available`] first.
#[target_feature(enable = "avx2,fma")]
pub(super) fn gemm(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let mut panels = PANELS.take();
    pack_panels(b, &mut panels);
    let product = Product {
        panels: &panels,
        inner: b.nrows(),
        cols: b.ncols(),
        alpha,
        beta,
    };
    let a_tiles = a.axis_chunks_iter(Axis(0), TILE_ROWS);
    for (a_tile, mut c_tile) in a_tiles.zip(c.axis_chunks_iter_mut(Axis(0), TILE_ROWS)) {
        match a_tile.nrows() {
            // TILE_ROWS, then the last tile's remainder
            6 => product.rows::<6>(a_tile, &mut c_tile),
            5 => product.rows::<5>(a_tile, &mut c_tile),
            4 => product.rows::<4>(a_tile, &mut c_tile),
            3 => product.rows::<3>(a_tile, &mut c_tile),
            2 => product.rows::<2>(a_tile, &mut c_tile),
            _ => product.rows::<1>(a_tile, &mut c_tile),
        }
    }
    PANELS.set(panels);
}

/// Copies `b` (`k × n`) into `⌈n / 16⌉` panels of `k × 16` values, row by
/// row, the last one padded with zeros; reads a transposed `b` along its
/// contiguous columns.
fn pack_panels(b: ArrayView2<'_, f32>, panels: &mut Vec<f32>) {
    let (k, n) = b.dim();
    let transposed = b.strides()[0].unsigned_abs() == 1;
    panels.clear();
    panels.resize(n.div_ceil(PANEL_COLS) * panel_len(k), 0.0);
    for (panel, b_cols) in panels
        .chunks_exact_mut(panel_len(k))
        .zip(b.axis_chunks_iter(Axis(1), PANEL_COLS))
    {
        if transposed {
            for (col, values) in b_cols.columns().into_iter().enumerate() {
                for (row, &value) in values.iter().enumerate() {
                    panel[row * PANEL_COLS + col] = value;
                }
            }
        } else {
            for (values, packed) in b_cols
                .rows()
                .into_iter()
                .zip(panel.chunks_exact_mut(PANEL_COLS))
            {
                for (slot, &value) in packed.iter_mut().zip(values) {
                    *slot = value;
                }
            }
        }
    }
}

/// The length of one packed panel for `k` rows of `b`: never 0, as
/// `chunks_exact` needs a length.
fn panel_len(k: usize) -> usize {
    k.max(1) * PANEL_COLS
}

/// One product's packed `b` and scalars.
struct Product<'p> {
    panels: &'p [f32],
    /// Rows of `b` (`k`).
    inner: usize,
    /// Columns of `b` and `c` (`n`).
    cols: usize,
    alpha: f32,
    beta: f32,
}

// Pointer arithmetic wraps rather than being overflow-checked, so that the
// loops unroll into registers whatever the profile's checks.
impl Product<'_> {
    /// `c ← alpha·a·b + beta·c` for `R` rows of `a` (`R × k`) and of `c` (`R × n`).
    #[target_feature(enable = "avx2,fma")]
    fn rows<const R: usize>(&self, a: ArrayView2<'_, f32>, c: &mut ArrayViewMut2<'_, f32>) {
        let (a_start, a_row_stride) = (a.as_ptr(), a.strides()[0]);
        let a_rows: [*const f32; R] = std::array::from_fn(|r| {
            a_start.wrapping_offset((r as isize).wrapping_mul(a_row_stride))
        });
        let [c_row_stride, c_col_stride] = [c.strides()[0], c.strides()[1]];
        let c_start = c.as_mut_ptr();
        for (index, panel) in self.panels.chunks_exact(panel_len(self.inner)).enumerate() {
            let sums = accumulate(a_rows, a.strides()[1], &panel[..self.inner * PANEL_COLS]);
            let first_col = index * PANEL_COLS;
            let cols = PANEL_COLS.min(self.cols - first_col);
            for (r, [low, high]) in sums.into_iter().enumerate() {
                let offset = (r as isize)
                    .wrapping_mul(c_row_stride)
                    .wrapping_add((first_col as isize).wrapping_mul(c_col_stride));
                // SAFETY: row `r < R` and columns `first_col..first_col + cols`
                // are elements of `c`'s view, borrowed mutably.
                unsafe {
                    self.store(
                        [low, high],
                        c_start.wrapping_offset(offset),
                        c_col_stride,
                        cols,
                    )
                };
            }
        }
    }

    /// `out[j·stride] ← alpha·sums[j] + beta·out[j·stride]` for `j < cols`.
    ///
    /// # Safety
    /// `out` and the `cols − 1` elements after it at `stride` are writable.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(&self, [low, high]: [__m256; 2], out: *mut f32, stride: isize, cols: usize) {
        let alpha = _mm256_set1_ps(self.alpha);
        let [low, high] = [_mm256_mul_ps(alpha, low), _mm256_mul_ps(alpha, high)];
        if stride == 1 && cols == PANEL_COLS && self.beta == 0.0 {
            // SAFETY: 16 contiguous writable values (the caller's contract).
            unsafe {
                _mm256_storeu_ps(out, low);
                _mm256_storeu_ps(out.add(LANES), high);
            }
            return;
        }
        let mut values = [0.0_f32; PANEL_COLS];
        // SAFETY: `values` holds two registers' worth.
        unsafe {
            _mm256_storeu_ps(values.as_mut_ptr(), low);
            _mm256_storeu_ps(values.as_mut_ptr().add(LANES), high);
        }
        for (j, value) in values.into_iter().take(cols).enumerate() {
            // SAFETY: `j < cols` (the caller's contract).
            let slot = unsafe { &mut *out.offset((j as isize).wrapping_mul(stride)) };
            *slot = if self.beta == 0.0 {
                value
            } else {
                value + self.beta * *slot
            };
        }
    }
}

/// `Σ_p a[r, p]·panel[p, ·]` for the `R` rows starting at `a_rows`, whose
/// columns lie `col_stride` apart; `panel` is `k × 16`, row-major.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn accumulate<const R: usize>(
    a_rows: [*const f32; R],
    col_stride: isize,
    panel: &[f32],
) -> [[__m256; 2]; R] {
    let mut column = 0_isize;
    let mut sums = [[_mm256_setzero_ps(); 2]; R];
    for panel_row in panel.chunks_exact(PANEL_COLS) {
        // SAFETY: `panel_row` holds 16 values; `a_rows[r] + column` is an
        // element of `a`'s view (row `r`, column `p < k`).
        unsafe {
            let low = _mm256_loadu_ps(panel_row.as_ptr());
            let high = _mm256_loadu_ps(panel_row.as_ptr().add(LANES));
            for r in 0..R {
                let value = _mm256_set1_ps(*a_rows[r].offset(column));
                sums[r][0] = _mm256_fmadd_ps(value, low, sums[r][0]);
                sums[r][1] = _mm256_fmadd_ps(value, high, sums[r][1]);
            }
        }
        column = column.wrapping_add(col_stride);
    }
    sums
}
