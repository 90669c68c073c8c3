// make_backend for a build with CUDA: the CPU for the host, CudaBackend for a GPU.
#include <cudnn.h>
#include <fmt/format.h>

#include "engine/backend/backend.h"
#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"

namespace cnn {

bool has_cuda_backend() { return true; }

std::string gpu_library_versions() {
  // cuDNN 9 numbers its versions major * 10000 + minor * 100 + patch. The library loaded
  // may be newer than the headers the build saw (cuDNN keeps its API within a major).
  const size_t v = cudnnGetVersion();
  return fmt::format("cuDNN {}.{}.{} (built with {}.{}.{})", v / 10000, v % 10000 / 100, v % 100,
                     CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
}

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options) {
  if (device.is_host()) return std::make_unique<CpuBackend>(false, options.cpu_threads);
  cuda::CudaOptions o;
  static_cast<BackendOptions&>(o) = options;
  o.device = device.index;
  return std::make_unique<cuda::CudaBackend>(o);
}

}  // namespace cnn
