#include "engine/core/device.h"

#include <fmt/format.h>

#include "engine/core/error.h"

namespace cnn {

std::string Device::str() const { return is_host() ? "cpu" : fmt::format("cuda:{}", index); }

const GpuInfo* find_gpu(const CudaStatus& st, int index) {
  for (const GpuInfo& g : st.gpus)
    if (g.index == index) return &g;
  return nullptr;
}

Device resolve_device(const std::string& request) {
  if (request == "cpu" || request == "host") return Device::host();
  if (request == "auto") {
    CudaStatus st = probe_cuda();
    return st.available ? Device::cuda(st.gpus.front().index) : Device::host();
  }
  int index = 0;
  if (request == "cuda") {
    index = 0;
  } else if (request.rfind("cuda:", 0) == 0) {
    const std::string digits = request.substr(5);
    CNN_CHECK(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos,
              ConfigError, "bad device '{}': expected cpu, cuda, cuda:N or auto", request);
    index = std::stoi(digits);
  } else {
    throw ConfigError(fmt::format("bad device '{}': expected cpu, cuda, cuda:N or auto", request));
  }
  CudaStatus st = probe_cuda();
  CNN_CHECK(st.available, DeviceError, "device '{}' requested but no GPU is usable: {}", request,
            st.reason);
  CNN_CHECK(find_gpu(st, index) != nullptr, DeviceError,
            "device '{}' requested but only {} GPU(s) are usable", request, st.gpus.size());
  return Device::cuda(index);
}

}  // namespace cnn
