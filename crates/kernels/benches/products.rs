//! The attention kernels' matrix products at the small and seed configs'
//! shapes, on every [`MatrixProduct`] this CPU runs: an in-process A/B, the
//! implementations alternating call by call so that the machine's drift
//! touches them alike. Prints the fastest call of each (µs, GFLOP/s); no
//! assertions.
//!
//! `cargo bench -p ssdit-kernels --bench products [-- CALLS]` (default 60).

use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};
use ssdit_kernels::MatrixProduct;

/// One product of attention: `c (m × n) ← a (m × k) · b (k × n)`, with
/// `a` and `b` laid out as the kernels hold them.
struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// `a` is the transpose of a row-major `k × m` array (`Pᵀ`, `dSᵀ`).
    a_transposed: bool,
    /// `b` is the transpose of a row-major `n × k` array (`Kᵀ`, `Vᵀ`).
    b_transposed: bool,
}

impl Case {
    /// Attention's six products at `tokens` tokens per sequence and a head of `head` values.
    fn attention(tokens: usize, head: usize) -> [Case; 6] {
        let case = |name, k, n, a_transposed, b_transposed| Case {
            name,
            m: tokens,
            k,
            n,
            a_transposed,
            b_transposed,
        };
        [
            case("Q·Kᵀ", head, tokens, false, true),
            case("P·V", tokens, head, false, false),
            case("Pᵀ·dO", tokens, head, true, false),
            case("dO·Vᵀ", head, tokens, false, true),
            case("dS·K", tokens, head, false, false),
            case("dSᵀ·Q", tokens, head, true, false),
        ]
    }

    fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }
}

fn main() {
    let calls = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(60)
        .max(1);
    let products = MatrixProduct::available();
    println!(
        "matrix products, 1 thread, fastest of {calls} calls; kernels use {:?}",
        MatrixProduct::fastest()
    );
    // Small config: 16 × 16 patches + 64 text tokens; seed config: 28 × 28 + 128.
    for (config, tokens) in [("small", 320), ("seed", 912)] {
        for case in Case::attention(tokens, 64) {
            let best = fastest_calls(&case, &products, calls);
            let figures: Vec<String> = products
                .iter()
                .zip(&best)
                .map(|(product, time)| {
                    let micros = time.as_secs_f64() * 1e6;
                    let gflops = case.flops() / time.as_secs_f64() / 1e9;
                    format!("{product:?} {micros:.0} µs ({gflops:.0} GFLOP/s)")
                })
                .collect();
            println!(
                "{config} {:<6} {} × {} × {}: {}",
                case.name,
                case.m,
                case.k,
                case.n,
                figures.join(", ")
            );
        }
    }
}

/// The fastest of `calls` calls of each product on `case`, alternating.
fn fastest_calls(case: &Case, products: &[MatrixProduct], calls: usize) -> Vec<Duration> {
    let a = operand(case.m, case.k, case.a_transposed, 1);
    let b = operand(case.k, case.n, case.b_transposed, 2);
    let (a, b) = (view(&a, case.a_transposed), view(&b, case.b_transposed));
    let mut c = Array2::<f32>::zeros((case.m, case.n));
    let mut best = vec![Duration::MAX; products.len()];
    for _ in 0..calls {
        for (product, best) in products.iter().zip(&mut best) {
            let start = Instant::now();
            product.run(1.0, a, b, 0.0, &mut c.view_mut());
            *best = (*best).min(start.elapsed());
        }
    }
    best
}

/// A `rows × cols` operand's storage: row-major, or row-major of its transpose.
fn operand(rows: usize, cols: usize, transposed: bool, seed: u32) -> Array2<f32> {
    let shape = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let mut state = seed;
    Array2::from_shape_simple_fn(shape, || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1 << 24) as f32 - 0.5
    })
}

fn view(storage: &Array2<f32>, transposed: bool) -> ArrayView2<'_, f32> {
    if transposed {
        storage.t()
    } else {
        storage.view()
    }
}
