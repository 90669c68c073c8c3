// Optimizer updates over one flat parameter buffer in one launch, with the formulas of
// cnn::ref::*_update (engine/ops/optim/optim_update.h). Hyper-parameters are plain
// floats; Adam's bias-corrected step size lr * sqrt(1 - b2^t) / (1 - b1^t) is computed by
// the caller in double and passed as `step_size`. The learning rate, the step size, SGD's
// momentum and Adam's beta1 are Live (cnnk/step.h): a captured training step reads each
// step's from device memory (one-cycle varies the momentum and beta1 per step).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cnnk/step.h"

namespace cnnk {

// velocity null: plain SGD (w -= lr * g), the momentum unread.
cudaError_t sgd_update(int64_t n, Live<float> lr, Live<float> momentum, bool nesterov, float* w,
                       const float* g, float* velocity, cudaStream_t stream);
cudaError_t adam_update(int64_t n, Live<float> step_size, Live<float> beta1, float beta2,
                        float epsilon, float* w, const float* g, float* m, float* v,
                        cudaStream_t stream);
cudaError_t rmsprop_update(int64_t n, Live<float> lr, float rho, float epsilon, float* w,
                           const float* g, float* v, cudaStream_t stream);

}  // namespace cnnk
