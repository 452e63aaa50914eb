//! Which keys each query may attend to: the padding mask, and the padding
//! mask restricted to the bidirectional sliding window.

use burn::prelude::*;
use burn::tensor::Bool;

/// The two masks of one forward pass (`true` = may attend).
///
/// Reference: transformers `T5Gemma2Encoder.forward` —
/// `create_bidirectional_mask` (a key is visible when its `attention_mask` is
/// 1, from every query, padded queries included) and, for sliding layers, the
/// same and-ed with `sliding_window_mask_function(w, is_causal=False)`: with
/// `left = (w+1)/2` and `right = w/2 + 1`, key `j` is visible from query `i`
/// when `0 ≤ i−j < left` or `0 < j−i < right` (for w = 512: 255 keys before,
/// 256 after). A query that sees no key at all (a padded position whose whole
/// window is padding) gets a zero attention output, as torch's SDPA gives it.
///
/// # Shapes
/// - masks `[batch, 1, len, len]` (query × key), broadcast over heads.
#[derive(Debug, Clone)]
pub(crate) struct AttentionMasks<B: Backend> {
    pub full: Tensor<B, 4, Bool>,
    pub sliding: Tensor<B, 4, Bool>,
}

impl<B: Backend> AttentionMasks<B> {
    /// Masks for `padding` (`[batch, len]`, `true` = a real token) and a
    /// sliding window of `window` tokens.
    pub fn new(padding: Tensor<B, 2, Bool>, window: usize) -> Self {
        let [batch, len] = padding.dims();
        let device = padding.device();
        let full = padding
            .reshape([batch, 1, 1, len])
            .expand([batch, 1, len, len]);
        let sliding = window_mask::<B>(len, window, &device)
            .reshape([1, 1, len, len])
            .expand([batch, 1, len, len])
            .bool_and(full.clone());
        Self { full, sliding }
    }
}

/// `[len, len]`: whether key `j` lies in query `i`'s bidirectional window.
fn window_mask<B: Backend>(len: usize, window: usize, device: &Device<B>) -> Tensor<B, 2, Bool> {
    let values: Vec<bool> = (0..len)
        .flat_map(|i| (0..len).map(move |j| in_window(i, j, window)))
        .collect();
    Tensor::from_data(TensorData::new(values, [len, len]), device)
}

/// transformers' `sliding_window_mask_function(window, is_causal=False)`.
fn in_window(query: usize, key: usize, window: usize) -> bool {
    let left = window.div_ceil(2);
    let right = window / 2 + 1;
    if key <= query {
        query - key < left
    } else {
        key - query < right
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn window_of_four_sees_one_before_and_two_after() {
        let visible: Vec<usize> = (0..10).filter(|&j| in_window(5, j, 4)).collect();
        assert_eq!(visible, [4, 5, 6, 7]);
        let visible: Vec<usize> = (0..1000).filter(|&j| in_window(500, j, 512)).collect();
        assert_eq!((visible[0], visible[visible.len() - 1]), (245, 756));
        assert_eq!(visible.len(), 512);
    }

    #[test]
    fn padding_hides_keys_from_every_query() {
        let device = Default::default();
        let padding =
            Tensor::<B, 2, Bool>::from_data(TensorData::from([[true, true, false]]), &device);
        let masks = AttentionMasks::new(padding, 2);
        let full = masks.full.into_data().to_vec::<bool>().unwrap();
        assert_eq!(
            full,
            [true, true, false, true, true, false, true, true, false]
        );
        // window 2: left 1 (itself), right 2 (one after).
        let sliding = masks.sliding.into_data().to_vec::<bool>().unwrap();
        assert_eq!(
            sliding,
            [true, true, false, false, true, false, false, false, false]
        );
    }
}
