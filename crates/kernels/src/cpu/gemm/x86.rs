//! The x86 registers the [`broadcast`](super::broadcast) product runs on,
//! and its entry points, one per instruction set: AVX-512 (6 × 32 tiles in
//! 12 of 32 registers) where the CPU has it, else AVX2 + FMA (6 × 16 tiles
//! in 12 of 16 registers).

use std::arch::x86_64::{
    __m256, __m512, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps,
    _mm256_setzero_ps, _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mul_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use ndarray::{ArrayView2, ArrayViewMut2};

use super::broadcast::{self, Register};

/// Whether this CPU runs [`gemm_avx512`].
pub(super) fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Whether this CPU runs [`gemm_avx2`].
pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// `c ← alpha·a·b + beta·c` in 512-bit registers; the shapes chain (checked
/// by the caller). Callers check [`has_avx512`] first.
#[target_feature(enable = "avx512f")]
pub(super) fn gemm_avx512(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    // SAFETY: this function enables AVX-512F, the register's instruction set.
    unsafe { broadcast::gemm::<__m512>(alpha, a, b, beta, c) }
}

/// `c ← alpha·a·b + beta·c` in 256-bit registers; the shapes chain (checked
/// by the caller). Callers check [`has_avx2`] first.
#[target_feature(enable = "avx2,fma")]
pub(super) fn gemm_avx2(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    // SAFETY: this function enables AVX2 and FMA, the register's instruction set.
    unsafe { broadcast::gemm::<__m256>(alpha, a, b, beta, c) }
}

// SAFETY (every method): the caller runs in a function that enables AVX-512F,
// and pointers address 16 readable or writable values.
impl Register for __m512 {
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        unsafe { _mm512_set1_ps(value) }
    }

    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        unsafe { _mm512_loadu_ps(from) }
    }

    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        unsafe { _mm512_storeu_ps(to, self) }
    }

    #[inline(always)]
    unsafe fn mul(self, other: Self) -> Self {
        unsafe { _mm512_mul_ps(self, other) }
    }

    #[inline(always)]
    unsafe fn mul_add(self, factor: Self, addend: Self) -> Self {
        unsafe { _mm512_fmadd_ps(self, factor, addend) }
    }
}

// SAFETY (every method): the caller runs in a function that enables AVX2 and
// FMA, and pointers address 8 readable or writable values.
impl Register for __m256 {
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { _mm256_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        unsafe { _mm256_set1_ps(value) }
    }

    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        unsafe { _mm256_loadu_ps(from) }
    }

    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        unsafe { _mm256_storeu_ps(to, self) }
    }

    #[inline(always)]
    unsafe fn mul(self, other: Self) -> Self {
        unsafe { _mm256_mul_ps(self, other) }
    }

    #[inline(always)]
    unsafe fn mul_add(self, factor: Self, addend: Self) -> Self {
        unsafe { _mm256_fmadd_ps(self, factor, addend) }
    }
}
