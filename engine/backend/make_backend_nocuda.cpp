// make_backend for a build without CUDA: the CPU only.
#include <fmt/format.h>

#include "engine/backend/backend.h"
#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"

namespace cnn {

bool has_cuda_backend() { return false; }

std::string gpu_library_versions() { return ""; }

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options) {
  if (device.is_host()) return std::make_unique<CpuBackend>(false, options.cpu_threads);
  throw DeviceError(
      fmt::format("{} requested, but this build has no CUDA backend "
                  "(configured with CNN_WITH_CUDA=OFF)",
                  device.str()));
}

}  // namespace cnn
