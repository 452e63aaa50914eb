//! How much memory a computation holds, for the trainer's metrics and the
//! benchmarks: the GPU's on a CUDA device, this process's elsewhere.

use burn::prelude::{Backend, Device};

/// Bytes in use where `device` computes: on a GPU, its memory in use
/// ([`gpu_memory_in_use`]); on the CPU, this process's resident set. `None`
/// where the system does not tell.
pub fn memory_in_use<B: Backend>(device: &Device<B>) -> Option<u64> {
    match gpu_index::<B>(device) {
        Some(index) => driver_memory_in_use(index),
        None => resident_set_bytes(),
    }
}

/// The memory in use on the GPU `device` names, every process's, as
/// `nvidia-smi` counts it (the pools burn keeps reserved and the CUDA
/// context included); `None` for a CPU device or where the driver does not
/// answer.
pub fn gpu_memory_in_use<B: Backend>(device: &Device<B>) -> Option<u64> {
    gpu_index::<B>(device).and_then(driver_memory_in_use)
}

/// The index of the GPU `device` names; `None` for a CPU device.
// Only a CUDA build has devices other than the CPU's.
#[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
fn gpu_index<B: Backend>(device: &Device<B>) -> Option<usize> {
    #[cfg(feature = "cuda")]
    if let Some(cuda) =
        (device as &dyn std::any::Any).downcast_ref::<burn::backend::cuda::CudaDevice>()
    {
        return Some(cuda.index);
    }
    None
}

/// The resident set of this process (Linux: `/proc/self/statm`).
fn resident_set_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Total minus free memory of GPU `index`, asked of the driver through the
/// device's primary context (the one burn computes in).
#[cfg(feature = "cuda")]
fn driver_memory_in_use(index: usize) -> Option<u64> {
    if !crate::backend::driver_present() {
        return None;
    }
    let context = cudarc::driver::CudaContext::new(index).ok()?;
    let (free, total) = context.mem_get_info().ok()?;
    u64::try_from(total.saturating_sub(free)).ok()
}

/// A build without CUDA has no GPU to ask.
#[cfg(not(feature = "cuda"))]
fn driver_memory_in_use(_: usize) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_reports_this_process_resident_set() {
        let before = resident_set_bytes().expect("Linux tells the resident set");
        let held = std::hint::black_box(vec![1u8; 64 << 20]);
        let device = Default::default();
        let after = memory_in_use::<burn::backend::NdArray<f32>>(&device)
            .expect("the CPU device reports the resident set");
        assert_eq!(
            gpu_memory_in_use::<burn::backend::NdArray<f32>>(&device),
            None
        );
        assert!(
            after >= before + (60 << 20),
            "{before} → {after} bytes holding 64 MiB"
        );
        drop(held);
    }

    /// Without a driver the GPU's memory is unknown (and asking does not
    /// panic); with one, it is the memory in use there.
    #[cfg(feature = "cuda")]
    #[test]
    fn a_gpu_reports_its_memory_where_the_driver_runs() {
        use crate::backend::{ComputeBackend, DeviceSpec};

        let ready = DeviceSpec::Cuda(0).device().is_ok();
        let device = burn::backend::cuda::CudaDevice::new(0);
        let memory = memory_in_use::<ComputeBackend>(&device);
        assert_eq!(memory.is_some(), ready, "{memory:?}");
        assert_ne!(memory, Some(0));
        assert_eq!(
            gpu_memory_in_use::<ComputeBackend>(&device).is_some(),
            ready
        );
    }
}
