//! The encoder in another float dtype than f32. Its own test binary: burn
//! keeps default dtypes per device, and `NdArray<f32>` and `NdArray<f64>`
//! share the CPU device, so the first backend used in a process would set
//! the other's defaults.

use burn::backend::NdArray;
use burn::tensor::{DType, Tolerance};
use ssdit_text::TextEncoder;

#[test]
fn runs_end_to_end_in_f64() {
    // The f32 upcasts (norms, softmax) and the casts back must work whatever
    // dtype the backend computes in; f64 here stands in for bf16/f16 on GPU.
    let encoder = TextEncoder::<NdArray<f64>>::tiny(16, &Default::default()).unwrap();
    let out = encoder
        .encode(&["A purple bellflower.".to_string()])
        .unwrap()
        .embeddings
        .into_data();
    assert_eq!(out.dtype, DType::F64);
    let values = out.to_vec::<f64>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    // A second encoder built independently gives the same bits.
    let again = TextEncoder::<NdArray<f64>>::tiny(16, &Default::default())
        .unwrap()
        .encode(&["A purple bellflower.".to_string()])
        .unwrap()
        .embeddings
        .into_data();
    again.assert_approx_eq::<f64>(&out, Tolerance::absolute(0.0));
}
