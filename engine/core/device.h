// Where a tensor lives, and what the machine offers. A machine without a GPU, without
// a driver, or a build without CUDA are normal cases reported with a reason.
#pragma once

#include <string>
#include <vector>

namespace cnn {

enum class DeviceKind { Host, Cuda };

struct Device {
  DeviceKind kind = DeviceKind::Host;
  int index = 0;

  static Device host() { return {}; }
  static Device cuda(int index = 0) { return {DeviceKind::Cuda, index}; }
  bool is_host() const { return kind == DeviceKind::Host; }
  bool is_cuda() const { return kind == DeviceKind::Cuda; }
  std::string str() const;  // "cpu", "cuda:0"
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

struct GpuInfo {
  int index = 0;
  std::string name;
  int sm_major = 0, sm_minor = 0;
  size_t total_memory = 0;
};

// What the CUDA runtime reports. `available` is false with a reason when the build has
// no CUDA, no driver is loaded, or no device is visible.
struct CudaStatus {
  bool available = false;
  std::string reason;
  int driver_version = 0;  // e.g. 12080
  int runtime_version = 0;
  std::vector<GpuInfo> gpus;
};

// Probes the CUDA runtime once per call; never throws.
CudaStatus probe_cuda();

// The GPU with this device ordinal, or nullptr: gpus skips a device whose properties could
// not be read, so its positions are not ordinals.
const GpuInfo* find_gpu(const CudaStatus& st, int index);

// Whether this binary was built with the CUDA backend.
bool built_with_cuda();

// The device a `--device cpu|cuda|cuda:N|auto` request resolves to. "auto" picks the
// first usable GPU when probe_cuda() finds one, else the host; "cuda" without a GPU throws
// DeviceError with the probe's reason.
Device resolve_device(const std::string& request);

}  // namespace cnn
