//! Row reductions in eight independent lanes, combined in a fixed order:
//! they vectorise, and give the same bits on every run.

const LANES: usize = 8;

/// `Σ values`.
pub(crate) fn sum(values: &[f32]) -> f32 {
    reduce(values, 0.0, |a, b| a + b)
}

/// `Σ a·b`.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    let mut lanes = [0.0_f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_body, b_tail) = b.split_at(a_body.len());
    for (a, b) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for lane in 0..LANES {
            lanes[lane] += a[lane] * b[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(a, b)| a * b).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `max values` (−∞ for none).
pub(crate) fn max(values: &[f32]) -> f32 {
    reduce(values, f32::NEG_INFINITY, f32::max)
}

fn reduce(values: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [init; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for lane in 0..LANES {
            lanes[lane] = op(lanes[lane], chunk[lane]);
        }
    }
    let tail = chunks.remainder().iter().fold(init, |a, &b| op(a, b));
    op(lanes.into_iter().fold(init, &op), tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_match_the_plain_loops() {
        let values: Vec<f32> = (0..37).map(|i| ((i * 7919) % 23) as f32 - 11.5).collect();
        let other: Vec<f32> = values.iter().map(|v| v * 0.5 + 1.0).collect();
        assert_eq!(sum(&values), values.iter().sum::<f32>());
        assert_eq!(max(&values), 10.5);
        let plain: f32 = values.iter().zip(&other).map(|(a, b)| a * b).sum();
        assert!((dot(&values, &other) - plain).abs() < 1e-4);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        assert_eq!(sum(&[]), 0.0);
    }
}
