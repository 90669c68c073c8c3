// Elementwise activations on the device: one kernel with a small functor per kind
// (no twin kernels that differ by a name). Launchers never allocate and return the
// launch status (cudaGetLastError) for the caller to check.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace cnnk {

// Matches cnn::Activation's order for the elementwise kinds; softmax has its own kernel.
enum class ActKind : int { Linear = 0, Relu = 1, Sigmoid = 2, Tanh = 3 };

cudaError_t activation_forward(ActKind kind, int64_t size, const float* x, float* y,
                               cudaStream_t stream);
// dx = dy * f'(.) expressed through the forward output y; dx may alias dy.
cudaError_t activation_backward(ActKind kind, int64_t size, const float* y, const float* dy,
                                float* dx, cudaStream_t stream);

}  // namespace cnnk
