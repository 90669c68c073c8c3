// probe_cuda() through the CUDA runtime. Every failure becomes a reason string: a
// machine without a GPU or a driver is a normal case, not an error.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <utility>

#include "engine/core/device.h"

// The architectures the kernels were built for, ',' between them (engine/CMakeLists.txt);
// unknown where the build does not say (the simulator's).
#ifndef CNN_CUDA_ARCHITECTURES
#define CNN_CUDA_ARCHITECTURES ""
#endif

namespace cnn {

bool built_with_cuda() { return true; }

CudaStatus probe_cuda() {
  CudaStatus st;
  cudaRuntimeGetVersion(&st.runtime_version);
  cudaError_t err = cudaDriverGetVersion(&st.driver_version);
  if (err != cudaSuccess || st.driver_version == 0) {
    st.reason = "no NVIDIA driver is loaded (cudaDriverGetVersion reports none)";
    return st;
  }
  int count = 0;
  err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver) {
    st.reason = driver_too_old_reason(st.driver_version, st.runtime_version);
    cudaGetLastError();
    return st;
  }
  if (err != cudaSuccess) {
    st.reason = fmt::format("cudaGetDeviceCount failed: {} ({})", cudaGetErrorString(err),
                            cudaGetErrorName(err));
    cudaGetLastError();  // clear the sticky-free error so later probes start clean
    return st;
  }
  if (count == 0) {
    st.reason = "the driver sees no CUDA device";
    return st;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();  // not left for the first kernel launch to report as its own
      continue;            // so gpus[j].index may skip: look devices up by index (find_gpu)
    }
    GpuInfo g{i, prop.name, prop.major, prop.minor, prop.totalGlobalMem, ""};
    if (!cuda_archs_cover(CNN_CUDA_ARCHITECTURES, prop.major, prop.minor))
      g.unusable = fmt::format(
          "this build has no kernels for its compute capability {}.{} (built for CUDA "
          "architectures {}): rebuild with -DCMAKE_CUDA_ARCHITECTURES={}{}",
          prop.major, prop.minor, CNN_CUDA_ARCHITECTURES, prop.major, prop.minor);
    st.gpus.push_back(std::move(g));
  }
  for (const GpuInfo& g : st.gpus) st.available = st.available || g.unusable.empty();
  if (st.gpus.empty())
    st.reason = "no device's properties could be read";
  else if (!st.available)
    st.reason = fmt::format("cuda:{} ({}): {}", st.gpus.front().index, st.gpus.front().name,
                            st.gpus.front().unusable);
  return st;
}

}  // namespace cnn
