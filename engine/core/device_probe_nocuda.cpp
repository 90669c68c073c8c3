// probe_cuda() for builds without the CUDA backend (CNN_WITH_CUDA=OFF).
#include "engine/core/device.h"

namespace cnn {

bool built_with_cuda() { return false; }

CudaStatus probe_cuda() {
  CudaStatus st;
  st.reason = "this build has no CUDA backend (configured with CNN_WITH_CUDA=OFF)";
  return st;
}

}  // namespace cnn
