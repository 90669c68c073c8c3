// What the backend-level GPU suites share: the skip when no GPU can run them (with the
// probe's reason, so CI's log says why), and a quiet CUDA backend under a policy.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/device.h"

#define REQUIRE_GPU()                                                  \
  do {                                                                 \
    const ::cnn::CudaStatus st = ::cnn::probe_cuda();                  \
    if (!st.available) GTEST_SKIP() << "no usable GPU: " << st.reason; \
  } while (0)

namespace cnn::testing {

inline std::unique_ptr<cuda::CudaBackend> quiet_gpu(ImplPolicy policy) {
  cuda::CudaOptions o;
  o.policy = policy;
  o.verbose = false;
  return std::make_unique<cuda::CudaBackend>(o);
}

}  // namespace cnn::testing
