// Max and average pooling, as cnn::ref::pool2d_* (engine/ops/pool2d/pool2d.h): padding
// never wins a max; the max's gradient goes to the first maximum of the window in
// row-major order; average pooling divides by the in-bounds count.
#pragma once

#include <cuda_runtime_api.h>

#include "cnnk/geometry.h"

namespace cnnk {

cudaError_t pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, cudaStream_t stream);
// dx assigned, without atomics: one thread per input that gathers from every window
// containing it, or, when windows cannot overlap and start at the top-left corner (a 2x2
// pool of stride 2), one thread per window that assigns its cell; the same bits either
// way.
cudaError_t pool2d_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx,
                            cudaStream_t stream);

}  // namespace cnnk
