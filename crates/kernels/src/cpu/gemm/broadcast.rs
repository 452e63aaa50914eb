//! A product for attention's shapes (a few hundred rows and columns, an
//! inner size from 64 to a few hundred) on any x86 vector [`Register`]: `b`
//! is read in panels two registers wide, in place where its rows are
//! contiguous and hold whole panels, else packed once; `a` is read in place,
//! six rows at a time, one broadcast per element. matrixmultiply packs both
//! operands, element by element wherever a row-major `a` or a transposed `b`
//! meets its kernels. Against matrixmultiply built as in a release: in AVX2
//! on a Zen 3 core, as fast on the two products whose `a` is transposed and
//! up to 1.36× faster on the other four; in AVX-512 on a Sapphire Rapids
//! core, 1.4–2.2× faster (docs/benchmarks.md, seventh and eighth runs).

use std::cell::RefCell;
use std::marker::PhantomData;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// A vector register of `LANES` f32 values and the operations the product
/// needs: each compiles to one instruction once inlined into a function that
/// enables the register's instruction set.
///
/// # Safety (every method)
/// The caller runs in a function that enables the register's instruction
/// set; pointers address `LANES` readable or writable values.
pub(super) trait Register: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(value: f32) -> Self;
    unsafe fn load(from: *const f32) -> Self;
    unsafe fn store(self, to: *mut f32);
    unsafe fn mul(self, other: Self) -> Self;
    /// `self·factor + addend`, rounded once.
    unsafe fn mul_add(self, factor: Self, addend: Self) -> Self;
}

/// Rows of `a` (and of `c`) in one tile: 6 × 2 accumulators, 2 panel
/// registers and a broadcast fit AVX2's 16 registers.
const TILE_ROWS: usize = 6;
/// The widest panel of `b` (two 512-bit registers).
const MAX_PANEL_COLS: usize = 32;

thread_local! {
    /// The packed panels of `b`, reused across calls on one thread.
    static PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `c ← alpha·a·b + beta·c` (with `beta = 0`, `c` is not read); the shapes
/// chain (checked by the caller).
///
/// # Safety
/// As [`Register`]'s methods: inlined into a function that enables `V`'s
/// instruction set.
#[inline(always)]
pub(super) unsafe fn gemm<V: Register>(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let mut packed = PANELS.take();
    let width = panel_cols::<V>();
    let panels = match Panels::in_place(b, width) {
        Some(panels) => panels,
        None => {
            pack_panels(b, width, &mut packed);
            Panels::packed(&packed, b.nrows(), width)
        }
    };
    let product = Product {
        panels,
        inner: b.nrows(),
        cols: b.ncols(),
        alpha,
        beta,
    };
    let a_tiles = a.axis_chunks_iter(Axis(0), TILE_ROWS);
    for (a_tile, mut c_tile) in a_tiles.zip(c.axis_chunks_iter_mut(Axis(0), TILE_ROWS)) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            match a_tile.nrows() {
                // TILE_ROWS, then the last tile's remainder
                6 => product.rows::<V, 6>(a_tile, &mut c_tile),
                5 => product.rows::<V, 5>(a_tile, &mut c_tile),
                4 => product.rows::<V, 4>(a_tile, &mut c_tile),
                3 => product.rows::<V, 3>(a_tile, &mut c_tile),
                2 => product.rows::<V, 2>(a_tile, &mut c_tile),
                _ => product.rows::<V, 1>(a_tile, &mut c_tile),
            }
        }
    }
    PANELS.set(packed);
}

/// Columns of one panel of `b` (and of a tile of `c`): two registers.
fn panel_cols<V: Register>() -> usize {
    2 * V::LANES
}

/// Copies `b` (`k × n`) into `⌈n / width⌉` panels of `k × width` values,
/// row by row, the last one padded with zeros; reads a transposed `b` along
/// its contiguous columns.
fn pack_panels(b: ArrayView2<'_, f32>, width: usize, panels: &mut Vec<f32>) {
    let (k, n) = b.dim();
    let transposed = b.strides()[0].unsigned_abs() == 1;
    let panel_len = panel_len(k, width);
    panels.clear();
    panels.resize(n.div_ceil(width) * panel_len, 0.0);
    for (panel, b_cols) in panels
        .chunks_exact_mut(panel_len)
        .zip(b.axis_chunks_iter(Axis(1), width))
    {
        if transposed {
            for (col, values) in b_cols.columns().into_iter().enumerate() {
                for (row, &value) in values.iter().enumerate() {
                    panel[row * width + col] = value;
                }
            }
        } else {
            for (values, packed) in b_cols.rows().into_iter().zip(panel.chunks_exact_mut(width)) {
                for (slot, &value) in packed.iter_mut().zip(values) {
                    *slot = value;
                }
            }
        }
    }
}

/// The length of one packed panel for `k` rows of `b`: never 0, as
/// `chunks_exact` needs a length.
fn panel_len(k: usize, width: usize) -> usize {
    k.max(1) * width
}

/// Where the product reads `b`'s panels: row `p` of panel `j` starts at
/// `start + j·panel_stride + p·row_stride`, `width` values in a row.
#[derive(Clone, Copy)]
struct Panels<'p> {
    start: *const f32,
    panel_stride: isize,
    row_stride: isize,
    /// The values the pointers address.
    _values: PhantomData<&'p [f32]>,
}

impl<'p> Panels<'p> {
    /// The packed copies [`pack_panels`] wrote for `k` rows.
    fn packed(panels: &'p [f32], k: usize, width: usize) -> Self {
        Self {
            start: panels.as_ptr(),
            panel_stride: panel_len(k, width) as isize,
            row_stride: width as isize,
            _values: PhantomData,
        }
    }

    /// `b` itself, when its rows are contiguous and cut into whole panels:
    /// each row of a panel is then as contiguous as a packed one, and the
    /// copy (a quarter of a product with few rows of `a`) is saved.
    fn in_place(b: ArrayView2<'p, f32>, width: usize) -> Option<Self> {
        let whole_panels = b.ncols() > 0 && b.ncols().is_multiple_of(width);
        (b.strides()[1] == 1 && whole_panels).then(|| Self {
            start: b.as_ptr(),
            panel_stride: width as isize,
            row_stride: b.strides()[0],
            _values: PhantomData,
        })
    }

    /// The first value of panel `index`.
    fn panel(&self, index: usize) -> *const f32 {
        self.start
            .wrapping_offset((index as isize).wrapping_mul(self.panel_stride))
    }
}

/// One product's panels of `b` and scalars.
struct Product<'p> {
    panels: Panels<'p>,
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
    ///
    /// # Safety
    /// As [`Register`]'s methods.
    #[inline(always)]
    unsafe fn rows<V: Register, const R: usize>(
        &self,
        a: ArrayView2<'_, f32>,
        c: &mut ArrayViewMut2<'_, f32>,
    ) {
        let (a_start, a_row_stride) = (a.as_ptr(), a.strides()[0]);
        let a_rows: [*const f32; R] = std::array::from_fn(|r| {
            a_start.wrapping_offset((r as isize).wrapping_mul(a_row_stride))
        });
        let [c_row_stride, c_col_stride] = [c.strides()[0], c.strides()[1]];
        let c_start = c.as_mut_ptr();
        let width = panel_cols::<V>();
        for index in 0..self.cols.div_ceil(width) {
            let panel = (self.panels.panel(index), self.panels.row_stride);
            // SAFETY: the caller's contract, passed on; `panel` holds
            // `inner` rows of `width` values (packed, or whole panels of `b`).
            let sums = unsafe { accumulate::<V, R>(a_rows, a.strides()[1], panel, self.inner) };
            let first_col = index * width;
            let cols = width.min(self.cols - first_col);
            for (r, pair) in sums.into_iter().enumerate() {
                let offset = (r as isize)
                    .wrapping_mul(c_row_stride)
                    .wrapping_add((first_col as isize).wrapping_mul(c_col_stride));
                // SAFETY: row `r < R` and columns `first_col..first_col + cols`
                // are elements of `c`'s view, borrowed mutably.
                unsafe { self.store(pair, c_start.wrapping_offset(offset), c_col_stride, cols) };
            }
        }
    }

    /// `out[j·stride] ← alpha·sums[j] + beta·out[j·stride]` for `j < cols`.
    ///
    /// # Safety
    /// As [`Register`]'s methods; `out` and the `cols − 1` elements after it
    /// at `stride` are writable.
    #[inline(always)]
    unsafe fn store<V: Register>(
        &self,
        [low, high]: [V; 2],
        out: *mut f32,
        stride: isize,
        cols: usize,
    ) {
        let width = panel_cols::<V>();
        // SAFETY: the caller's contract.
        let [low, high] = unsafe {
            let alpha = V::splat(self.alpha);
            [alpha.mul(low), alpha.mul(high)]
        };
        if stride == 1 && cols == width && self.beta == 0.0 {
            // SAFETY: `width` contiguous writable values (the caller's contract).
            unsafe {
                low.store(out);
                high.store(out.add(V::LANES));
            }
            return;
        }
        let mut values = [0.0_f32; MAX_PANEL_COLS];
        // SAFETY: `values` holds two registers' worth.
        unsafe {
            low.store(values.as_mut_ptr());
            high.store(values.as_mut_ptr().add(V::LANES));
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
/// columns lie `col_stride` apart; `panel` is `(start, row_stride)` of `k`
/// rows of `2·LANES` contiguous values.
///
/// # Safety
/// As [`Register`]'s methods; `a_rows[r] + p·col_stride` and the `2·LANES`
/// values at `start + p·row_stride` are readable for every `p < k`.
#[inline(always)]
unsafe fn accumulate<V: Register, const R: usize>(
    a_rows: [*const f32; R],
    col_stride: isize,
    (start, row_stride): (*const f32, isize),
    k: usize,
) -> [[V; 2]; R] {
    let (mut column, mut panel_row) = (0_isize, start);
    // SAFETY: the caller's contract.
    let mut sums = [[unsafe { V::zero() }; 2]; R];
    for _ in 0..k {
        // SAFETY: `panel_row` holds two registers' worth; `a_rows[r] + column`
        // is an element of `a`'s view (row `r`, column `p < k`).
        unsafe {
            let low = V::load(panel_row);
            let high = V::load(panel_row.add(V::LANES));
            for r in 0..R {
                let value = V::splat(*a_rows[r].offset(column));
                sums[r][0] = value.mul_add(low, sums[r][0]);
                sums[r][1] = value.mul_add(high, sums[r][1]);
            }
        }
        column = column.wrapping_add(col_stride);
        panel_row = panel_row.wrapping_offset(row_stride);
    }
    sums
}
