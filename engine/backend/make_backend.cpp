#include <fmt/format.h>

#include "engine/backend/backend.h"
#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"

namespace cnn {

bool has_cuda_backend() { return false; }

std::unique_ptr<Backend> make_backend(Device device) {
  if (device.is_host()) return std::make_unique<CpuBackend>();
  // The CUDA training backend (kernels, cuDNN, cuBLAS behind this interface) is the next
  // stage of the engine; until it lands, say so rather than pretend.
  throw DeviceError(fmt::format(
      "device {} found, but this version has no CUDA training backend yet; use --device cpu",
      device.str()));
}

}  // namespace cnn
