// make_backend for a build with CUDA: the CPU for the host, CudaBackend for a GPU.
#include "engine/backend/backend.h"
#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"

namespace cnn {

bool has_cuda_backend() { return true; }

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options) {
  if (device.is_host()) return std::make_unique<CpuBackend>(false, options.cpu_threads);
  cuda::CudaOptions o;
  static_cast<BackendOptions&>(o) = options;
  o.device = device.index;
  return std::make_unique<cuda::CudaBackend>(o);
}

}  // namespace cnn
