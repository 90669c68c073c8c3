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
  std::string unusable;  // why this build cannot run on it ("" when it can)
};

// What the CUDA runtime reports. `available` is false with a reason when the build has
// no CUDA, no driver is loaded (or one too old for the build's runtime), no device is
// visible, or the build has no kernels for any of them.
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

// Whether kernels built for `archs` (CMake's CMAKE_CUDA_ARCHITECTURES, entries separated
// by ';' or ','; "" when unknown) run on a GPU of compute capability major.minor. "N"
// carries SASS and PTX for N, so any GPU from N up runs it (the PTX through the driver's
// JIT); "N-real" only SASS, which runs within N's major version from its minor up;
// "N-virtual" only PTX; an arch-specific "Na" only on N itself. "native", "all",
// "all-major" and forms it does not know are taken to cover every GPU: the first launch
// would then say what is missing.
bool cuda_archs_cover(const std::string& archs, int major, int minor);

// The probe's reason when the driver is older than the build's CUDA runtime (versions as
// cudaDriverGetVersion gives them: 12080 is 12.8).
std::string driver_too_old_reason(int driver_version, int runtime_version);

// The device a `--device cpu|cuda|cuda:N|auto` request resolves to. "auto" picks the
// first usable GPU when probe_cuda() finds one, else the host; "cuda" without a usable GPU
// (or naming one this build has no kernels for) throws DeviceError with the reason.
Device resolve_device(const std::string& request);

}  // namespace cnn
