// NVTX ranges for Nsight Systems and Nsight Compute: CNN_NVTX_RANGE("conv2d/forward")
// opens a range that closes at the end of the scope. Header-only NVTX 3 from the CUDA
// toolkit; compiled out in CPU-only builds and with -DCNN_NVTX=OFF (CNN_NVTX_ENABLED=0).
#pragma once

#if CNN_NVTX_ENABLED
#include <nvtx3/nvToolsExt.h>

#include <string>

namespace cnn {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  explicit NvtxRange(const std::string& name) { nvtxRangePushA(name.c_str()); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace cnn

#define CNN_NVTX_CONCAT2(a, b) a##b
#define CNN_NVTX_CONCAT(a, b) CNN_NVTX_CONCAT2(a, b)
#define CNN_NVTX_RANGE(name) ::cnn::NvtxRange CNN_NVTX_CONCAT(cnn_nvtx_range_, __LINE__)(name)
#else
#define CNN_NVTX_RANGE(name) \
  do {                       \
  } while (0)
#endif
