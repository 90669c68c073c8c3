// Inverted dropout and spatial dropout, drawing the same masks as cnn::ref::dropout_*
// (engine/ops/dropout/dropout.h) from cnnk::uniform01(seed, index).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cnnk/geometry.h"

namespace cnnk {

cudaError_t dropout_forward(const DropoutGeometry& g, float rate, uint64_t seed, const float* x,
                            float* y, float* mask, cudaStream_t stream);
cudaError_t dropout_backward(const DropoutGeometry& g, const float* mask, const float* dy,
                             float* dx, cudaStream_t stream);

}  // namespace cnnk
