//! OpenBLAS kernel selection for the CPU backend.
//!
//! OpenBLAS picks its matrix kernels from the CPU model when the library
//! loads. Debian 12's OpenBLAS 0.3.21 does not know the CPUs that virtual
//! machines report by a generic name ("Intel(R) Xeon(R) Processor") and falls
//! back to its Prescott (SSE3) kernels: on an AVX-512 machine matrix products
//! then run about 5× slower (20 vs 95 GFLOP/s for a 512² SGEMM measured on
//! the 2-core CI machine). The kernel can only be chosen through the
//! `OPENBLAS_CORETYPE` environment variable, read before `main` runs, so a
//! binary that finds the fallback re-executes itself with the variable set.

/// The environment variable OpenBLAS reads its kernel name from.
pub const CORETYPE_VAR: &str = "OPENBLAS_CORETYPE";

/// The kernel OpenBLAS uses when it cannot name the CPU.
const FALLBACK_KERNEL: &str = "Prescott";

/// Re-executes this process with `OPENBLAS_CORETYPE` naming the best kernel
/// the CPU supports when OpenBLAS fell back to its generic kernels and the
/// variable is unset; otherwise returns at once. Call it first thing in
/// `main`. When the re-execution fails, the process goes on (slower) and
/// the reason is written to stderr.
pub fn use_best_kernel() {
    if std::env::var_os(CORETYPE_VAR).is_some() {
        return;
    }
    let Some(kernel) = best_kernel() else {
        return;
    };
    if loaded_kernel().as_deref() != Some(FALLBACK_KERNEL) {
        return;
    }
    let error = reexec_with(kernel);
    eprintln!(
        "warning: OpenBLAS uses its generic {FALLBACK_KERNEL} kernels on this CPU; \
         restarting with {CORETYPE_VAR}={kernel} failed ({error}); set it yourself for ~5× faster CPU matrix products"
    );
}

/// The OpenBLAS kernel for this CPU's instruction set, if better than the fallback.
fn best_kernel() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some("SkylakeX");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some("Haswell");
        }
    }
    None
}

/// The kernel the loaded OpenBLAS chose; `None` in builds without it.
#[cfg(not(feature = "cuda"))]
fn loaded_kernel() -> Option<String> {
    use std::ffi::{CStr, c_char};

    #[link(name = "openblas")]
    unsafe extern "C" {
        fn openblas_get_corename() -> *const c_char;
    }
    // SAFETY: OpenBLAS returns a pointer to a static NUL-terminated name.
    let name = unsafe { openblas_get_corename() };
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, static (see above).
    Some(
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(feature = "cuda")]
fn loaded_kernel() -> Option<String> {
    None
}

/// Replaces this process by itself with `OPENBLAS_CORETYPE=kernel`; returns
/// only on failure.
fn reexec_with(kernel: &str) -> std::io::Error {
    use std::os::unix::process::CommandExt;

    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => return error,
    };
    std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CORETYPE_VAR, kernel)
        .exec()
}

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;

    #[test]
    fn the_loaded_kernel_is_named() {
        let name = loaded_kernel().expect("OpenBLAS is linked into CPU builds");
        assert!(!name.is_empty());
        if let Ok(forced) = std::env::var(CORETYPE_VAR) {
            assert_eq!(name.to_lowercase(), forced.to_lowercase());
        }
    }
}
