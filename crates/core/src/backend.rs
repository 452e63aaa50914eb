//! The compute backend, chosen when the binary is built: burn's `NdArray`
//! (CPU, OpenBLAS) by default, CUDA with the `cuda` feature. Model code is
//! generic over `B: Backend`; services instantiate it with these aliases.

use burn::prelude::Device;
use burn::tensor::DType;

use crate::config::Precision;
use crate::{Error, Result};

/// The backend models run on in this build.
#[cfg(not(feature = "cuda"))]
pub type ComputeBackend = burn::backend::NdArray<f32>;

/// The backend models run on in this build.
#[cfg(feature = "cuda")]
pub type ComputeBackend = burn::backend::Cuda<f32>;

/// [`ComputeBackend`] with automatic differentiation, for training.
pub type TrainBackend = burn::backend::Autodiff<ComputeBackend>;

/// A device named in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// Whatever this build computes on.
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    pub fn parse(spec: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::Device {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        match spec.trim() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(index) => index
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| invalid("expected cuda:N with N a GPU index")),
                None => Err(invalid("expected auto, cpu, cuda or cuda:N")),
            },
        }
    }

    /// The burn device, or an error when this build cannot compute there.
    pub fn device(self) -> Result<Device<ComputeBackend>> {
        device_of(self)
    }
}

impl Precision {
    /// The dtype models compute in on this build: the configured one on
    /// CUDA; f32 on the CPU, whose backend computes in f32 (and f64) only.
    pub fn compute_dtype(self) -> DType {
        if !cfg!(feature = "cuda") {
            return DType::F32;
        }
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }
}

/// A human name of the build's backend, for logs and benchmark tables.
pub fn backend_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "ndarray (cpu, openblas)"
    }
}

#[cfg(not(feature = "cuda"))]
fn device_of(spec: DeviceSpec) -> Result<Device<ComputeBackend>> {
    match spec {
        DeviceSpec::Auto | DeviceSpec::Cpu => Ok(Default::default()),
        DeviceSpec::Cuda(_) => Err(Error::Device {
            spec: "cuda".into(),
            reason:
                "this binary was built without the `cuda` feature; rebuild with --features cuda"
                    .into(),
        }),
    }
}

#[cfg(feature = "cuda")]
fn device_of(spec: DeviceSpec) -> Result<Device<ComputeBackend>> {
    let index = match spec {
        DeviceSpec::Auto => 0,
        DeviceSpec::Cuda(index) => index,
        DeviceSpec::Cpu => {
            return Err(Error::Device {
                spec: "cpu".into(),
                reason:
                    "this binary was built for CUDA; use a build without the `cuda` feature for the CPU"
                        .into(),
            });
        }
    };
    cuda_ready(index).map_err(|reason| Error::Device {
        spec: format!("cuda:{index}"),
        reason,
    })?;
    Ok(burn::backend::cuda::CudaDevice::new(index))
}

/// Whether this machine can run CUDA device `index`: asked before burn
/// starts the device's thread, which panics where the driver or NVRTC is
/// missing instead of returning an error.
#[cfg(feature = "cuda")]
fn cuda_ready(index: usize) -> std::result::Result<(), String> {
    use cudarc::{driver, nvrtc};

    if !driver_present() {
        return Err(
            "the CUDA driver (libcuda.so) cannot be loaded: no NVIDIA driver on this \
             machine, or its folder is not in LD_LIBRARY_PATH"
                .into(),
        );
    }
    // SAFETY: only tries to load NVRTC's library by its names.
    if !unsafe { nvrtc::sys::is_culib_present() } {
        return Err(
            "NVRTC (libnvrtc.so, part of the CUDA toolkit), which compiles the \
             kernels at run time, cannot be loaded: add the toolkit's lib64 to LD_LIBRARY_PATH"
                .into(),
        );
    }
    cuda_headers(cubecl_cuda::install::cuda_path())?;
    driver::result::init().map_err(|error| format!("the CUDA driver did not start: {error}"))?;
    let count = driver::result::device::get_count()
        .map_err(|error| format!("counting the CUDA devices: {error}"))?;
    if index >= usize::try_from(count).unwrap_or(0) {
        return Err(format!("this machine has {count} CUDA device(s)"));
    }
    Ok(())
}

/// Whether the CUDA toolkit folder `toolkit` (burn's CUDA runtime looks in
/// `$CUDA_PATH`, else `/usr/local/cuda` or `/opt/cuda`) holds the headers
/// that NVRTC compiles every kernel against: where they are missing, burn
/// panics at the first kernel. Runtime-only CUDA installations (such as
/// `nvidia/cuda:*-runtime` images) have NVRTC but not these headers.
#[cfg(feature = "cuda")]
fn cuda_headers(toolkit: Option<std::path::PathBuf>) -> std::result::Result<(), String> {
    let Some(toolkit) = toolkit else {
        return Err(
            "no CUDA toolkit found (CUDA_PATH is unset, and neither /usr/local/cuda \
             nor /opt/cuda exists): NVRTC compiles the kernels against its headers; \
             set CUDA_PATH to the toolkit's folder"
                .into(),
        );
    };
    let header = toolkit.join("include").join("cuda_runtime.h");
    if header.is_file() {
        return Ok(());
    }
    Err(format!(
        "the CUDA headers NVRTC compiles the kernels against are missing ({} is not a \
         file): install the toolkit's headers (cuda-cudart-dev, or a `devel` image) or \
         point CUDA_PATH at a toolkit that has them",
        header.display()
    ))
}

/// Whether the CUDA driver's library loads on this machine (looked for once
/// per process: the trainer's memory reading asks at every step).
#[cfg(feature = "cuda")]
pub(crate) fn driver_present() -> bool {
    static PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: only tries to load the driver's library by its names.
    *PRESENT.get_or_init(|| unsafe { cudarc::driver::sys::is_culib_present() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!(DeviceSpec::parse("auto").unwrap(), DeviceSpec::Auto);
        assert_eq!(DeviceSpec::parse("cuda:1").unwrap(), DeviceSpec::Cuda(1));
        assert!(DeviceSpec::parse("cuda:x").is_err());
        assert!(DeviceSpec::parse("tpu").is_err());
    }

    #[test]
    fn the_cpu_computes_in_f32_whatever_the_precision() {
        let on_cuda = cfg!(feature = "cuda");
        assert_eq!(Precision::F32.compute_dtype(), DType::F32);
        let half = [(Precision::Bf16, DType::BF16), (Precision::F16, DType::F16)];
        for (precision, dtype) in half {
            let want = if on_cuda { dtype } else { DType::F32 };
            assert_eq!(precision.compute_dtype(), want, "{precision:?}");
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn missing_cuda_headers_are_named_before_any_kernel() {
        let none = cuda_headers(None).unwrap_err();
        assert!(none.contains("CUDA_PATH"), "{none}");
        let toolkit = tempfile::tempdir().unwrap();
        let missing = cuda_headers(Some(toolkit.path().to_path_buf())).unwrap_err();
        let header = toolkit.path().join("include").join("cuda_runtime.h");
        assert!(missing.contains(&header.display().to_string()), "{missing}");
        std::fs::create_dir(toolkit.path().join("include")).unwrap();
        std::fs::write(&header, "").unwrap();
        assert_eq!(cuda_headers(Some(toolkit.path().to_path_buf())), Ok(()));
    }

    #[test]
    fn this_build_computes_on_auto() {
        match DeviceSpec::Auto.device() {
            Ok(device) => {
                let zeros = burn::tensor::Tensor::<ComputeBackend, 1>::zeros([2], &device);
                assert_eq!(zeros.into_data().to_vec::<f32>().unwrap(), [0.0, 0.0]);
            }
            // A CUDA build on a machine without CUDA says so instead of
            // panicking on burn's device thread.
            Err(Error::Device { reason, .. }) if cfg!(feature = "cuda") => {
                assert!(
                    reason.contains("CUDA") || reason.contains("NVRTC"),
                    "{reason}"
                )
            }
            Err(error) => panic!("{error}"),
        }
    }
}
