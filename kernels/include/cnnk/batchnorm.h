// Batch normalization over (n, spatial) per channel, as cnn::ref::batchnorm_*
// (engine/ops/batchnorm/batchnorm.h): biased variance to normalise, unbiased variance
// into the running variance, running = momentum * running + (1 - momentum) * batch.
// Reductions are per channel in a fixed order: deterministic.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "cnnk/geometry.h"

namespace cnnk {

// Long channels (more than 4096 values) are reduced by several blocks each, which leave
// their partial sums in `workspace`: its size, the same for the training forward and the
// backward of one shape, is batchnorm_workspace_bytes(g) (0 for short channels, where the
// workspace may be null). A workspace too small or missing gives cudaErrorInvalidValue.
size_t batchnorm_workspace_bytes(const BatchNormGeometry& g);

// y may alias x.
cudaError_t batchnorm_forward_training(const BatchNormGeometry& g, const float* x,
                                       const float* gamma, const float* beta, float momentum,
                                       float epsilon, float* running_mean, float* running_var,
                                       float* y, float* save_mean, float* save_invstd,
                                       void* workspace, size_t workspace_bytes,
                                       cudaStream_t stream);
cudaError_t batchnorm_forward_inference(const BatchNormGeometry& g, const float* x,
                                        const float* gamma, const float* beta,
                                        const float* running_mean, const float* running_var,
                                        float epsilon, float* y, cudaStream_t stream);
// dx may not alias x or dy (cudaErrorInvalidValue): the kernels declare them __restrict__
// (read-only loads, and loads moved past stores), which an in-place backward would break.
cudaError_t batchnorm_backward(const BatchNormGeometry& g, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_invstd,
                               float* dx, float* dgamma, float* dbeta, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream);

}  // namespace cnnk
