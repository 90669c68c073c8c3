// probe_cuda() through the CUDA runtime. Every failure becomes a reason string: a
// machine without a GPU or a driver is a normal case, not an error.
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "engine/core/device.h"

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
    st.gpus.push_back({i, prop.name, prop.major, prop.minor, prop.totalGlobalMem});
  }
  st.available = !st.gpus.empty();
  if (!st.available) st.reason = "no device's properties could be read";
  return st;
}

}  // namespace cnn
