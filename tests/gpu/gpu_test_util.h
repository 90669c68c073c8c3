// What the backend-level GPU suites share: the skip when no GPU can run them (with the
// probe's reason, so CI's log says why), a quiet CUDA backend under a policy, which cuDNN
// convolutions compute in a transformed domain, and random host inputs.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/device.h"
#include "tests/support/gradcheck.h"

#define REQUIRE_GPU()                                                  \
  do {                                                                 \
    const ::cnn::CudaStatus st = ::cnn::probe_cuda();                  \
    if (!st.available) GTEST_SKIP() << "no usable GPU: " << st.reason; \
  } while (0)

namespace cnn::testing {

inline cuda::CudaOptions quiet_options(ImplPolicy policy) {
  cuda::CudaOptions o;
  o.policy = policy;
  o.verbose = false;
  return o;
}
inline std::unique_ptr<cuda::CudaBackend> quiet_gpu(ImplPolicy policy) {
  return std::make_unique<cuda::CudaBackend>(quiet_options(policy));
}

// Whether a recorded implementation choice ("cudnn (winograd-nonfused)") names one of
// cuDNN's FFT or Winograd convolutions, which compute in a transformed domain: an output's
// rounding then follows the whole transform, not that output's own terms, and the tests
// bound it by the tensor's scale.
inline bool transform_algorithm(const std::string& choice) {
  return choice.find("fft") != std::string::npos || choice.find("winograd") != std::string::npos;
}

// A host tensor of uniform values in [-1, 1) from `seed`.
inline Tensor host_random(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty_host(s);
  const auto v = test::random_values(static_cast<size_t>(s.numel()), seed);
  for (size_t i = 0; i < v.size(); ++i) t.host()[i] = static_cast<float>(v[i]);
  return t;
}

}  // namespace cnn::testing
