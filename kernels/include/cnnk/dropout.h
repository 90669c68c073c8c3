// Inverted dropout and spatial dropout, drawing the same masks as cnn::ref::dropout_*
// (engine/ops/dropout/dropout.h) from cnnk::uniform01(seed.value(), index); the seed's
// step may be Live (cnnk/step.h), read when the kernel runs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cnnk/geometry.h"
#include "cnnk/step.h"

namespace cnnk {

cudaError_t dropout_forward(const DropoutGeometry& g, float rate, StepSeed seed, const float* x,
                            float* y, float* mask, cudaStream_t stream);
cudaError_t dropout_backward(const DropoutGeometry& g, const float* mask, const float* dy,
                             float* dx, cudaStream_t stream);

}  // namespace cnnk
