// Max and average pooling, as cnn::ref::pool2d_* (engine/ops/pool2d/pool2d.h): padding
// never wins a max; the max's gradient goes to the first maximum of the window in
// row-major order; average pooling divides by the in-bounds count.
#pragma once

#include <cuda_runtime_api.h>

#include "cnnk/geometry.h"

namespace cnnk {

cudaError_t pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, cudaStream_t stream);
// dx assigned (overlapping windows summed without atomics: one thread per input).
cudaError_t pool2d_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx,
                            cudaStream_t stream);

}  // namespace cnnk
