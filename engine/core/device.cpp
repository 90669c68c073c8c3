#include "engine/core/device.h"

#include <fmt/format.h>

#include <cctype>

#include "engine/core/error.h"

namespace cnn {

std::string Device::str() const { return is_host() ? "cpu" : fmt::format("cuda:{}", index); }

const GpuInfo* find_gpu(const CudaStatus& st, int index) {
  for (const GpuInfo& g : st.gpus)
    if (g.index == index) return &g;
  return nullptr;
}

bool cuda_archs_cover(const std::string& archs, int major, int minor) {
  const int cc = major * 10 + minor;
  bool any_known = false;
  size_t start = 0;
  while (start <= archs.size()) {
    size_t end = archs.find_first_of(";, ", start);
    if (end == std::string::npos) end = archs.size();
    const std::string item = archs.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    size_t digits = 0;
    while (digits < item.size() && std::isdigit(static_cast<unsigned char>(item[digits]))) ++digits;
    if (digits == 0 || digits > 4) return true;  // native, all, all-major, or unknown
    any_known = true;
    const int n = std::stoi(item.substr(0, digits));
    const std::string suffix = item.substr(digits);
    const bool specific = !suffix.empty() && std::isalpha(static_cast<unsigned char>(suffix[0]));
    const bool real = suffix.find("-virtual") == std::string::npos;
    const bool ptx = suffix.find("-real") == std::string::npos;
    if (specific) {
      if (cc == n) return true;
    } else if ((ptx && cc >= n) || (real && major == n / 10 && minor >= n % 10)) {
      return true;
    }
  }
  return !any_known;
}

std::string driver_too_old_reason(int driver_version, int runtime_version) {
  auto v = [](int x) { return fmt::format("{}.{}", x / 1000, (x % 1000) / 10); };
  return fmt::format(
      "the NVIDIA driver supports CUDA up to {} and this build's runtime is CUDA {}: update the "
      "driver, or build with a CUDA toolkit no newer than {}",
      v(driver_version), v(runtime_version), v(driver_version));
}

Device resolve_device(const std::string& request) {
  if (request == "cpu" || request == "host") return Device::host();
  if (request == "auto") {
    CudaStatus st = probe_cuda();
    for (const GpuInfo& g : st.gpus)
      if (g.unusable.empty()) return Device::cuda(g.index);
    return Device::host();
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
  const GpuInfo* gpu = find_gpu(st, index);
  CNN_CHECK(gpu != nullptr, DeviceError, "device '{}' requested but only {} GPU(s) are usable",
            request, st.gpus.size());
  CNN_CHECK(gpu->unusable.empty(), DeviceError, "device '{}' ({}) requested, but {}", request,
            gpu->name, gpu->unusable);
  return Device::cuda(index);
}

}  // namespace cnn
