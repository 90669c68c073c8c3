// Batch normalization over (n, spatial) per channel, as cnn::ref::batchnorm_*
// (engine/ops/batchnorm/batchnorm.h): biased variance to normalise, unbiased variance
// into the running variance, running = momentum * running + (1 - momentum) * batch.
// Reductions are per channel in a fixed order: deterministic.
#pragma once

#include <cuda_runtime_api.h>

#include "cnnk/geometry.h"

namespace cnnk {

cudaError_t batchnorm_forward_training(const BatchNormGeometry& g, const float* x,
                                       const float* gamma, const float* beta, float momentum,
                                       float epsilon, float* running_mean, float* running_var,
                                       float* y, float* save_mean, float* save_invstd,
                                       cudaStream_t stream);
cudaError_t batchnorm_forward_inference(const BatchNormGeometry& g, const float* x,
                                        const float* gamma, const float* beta,
                                        const float* running_mean, const float* running_var,
                                        float epsilon, float* y, cudaStream_t stream);
cudaError_t batchnorm_backward(const BatchNormGeometry& g, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_invstd,
                               float* dx, float* dgamma, float* dbeta, cudaStream_t stream);

}  // namespace cnnk
