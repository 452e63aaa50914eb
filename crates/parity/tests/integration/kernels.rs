//! The hot operations at the seed's sizes on burn's Flex backend, where they
//! take CUDA's path (burn's composite forward, ssdit-kernels' recorded
//! backward passes, burn's own for SiLU and the basis product), against the
//! CPU kernels: in f32 and in bf16.

use burn::backend::Autodiff;
use burn::tensor::DType;
use burn_flex::Flex;
use ssdit_parity::kernels;

#[test]
fn kernels_at_the_seed_sizes_on_flex_match_the_cpu_kernels() {
    let report =
        kernels::check_on::<Autodiff<Flex>>(&Default::default(), &[DType::F32, DType::BF16]);
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.comparisons.len(),
        2 * (4 + 2 + 3 + 2 + 2 + 2 + 2),
        "output and input gradients of attention, RMSNorm, SwiGLU, RoPE, the convolution, \
         SiLU and the basis product per dtype"
    );
}
