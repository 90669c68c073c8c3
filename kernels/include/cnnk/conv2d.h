// Convolution kernels (NCHW activations, OIHW filters), handwritten: implicit GEMM tiled
// through shared memory with register blocking. Semantics are those of
// cnn::ref::conv2d_* (engine/ops/conv2d/conv2d.h), the oracle the tests compare against.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "cnnk/geometry.h"
#include "cnnk/status.h"

namespace cnnk {

// Native support: any stride and asymmetric padding; dilation must be 1 (cuDNN covers
// dilated convolutions).
Support conv2d_supports(const Conv2dGeometry& g);

// y = conv(x, w) + b (b may be null).
cudaError_t conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b,
                           float* y, cudaStream_t stream);
// dx = conv_transpose(dy, w).
cudaError_t conv2d_backward_data(const Conv2dGeometry& g, const float* dy, const float* w,
                                 float* dx, cudaStream_t stream);
// dw = sum over the batch of x (*) dy; db = sum of dy per filter (db may be null). The
// reduction over N*P*Q is split across blocks into `workspace` and summed in a fixed
// order, so results are deterministic.
size_t conv2d_backward_filter_workspace_bytes(const Conv2dGeometry& g);
cudaError_t conv2d_backward_filter(const Conv2dGeometry& g, const float* x, const float* dy,
                                   float* dw, float* db, void* workspace, size_t workspace_bytes,
                                   cudaStream_t stream);

}  // namespace cnnk
