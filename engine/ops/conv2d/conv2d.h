// Conv2D: Keras-level parameters, shape inference, and the CPU implementations.
// The handwritten kernel lives in kernels/src/conv2d.cu, the cuDNN path beside this file.
#pragma once

#include <string>

#include "cnnk/geometry.h"
#include "engine/core/shape.h"
#include "engine/ops/padding.h"

namespace cnn {

struct Conv2dParams {
  int filters = 0;
  int kernel_h = 3, kernel_w = 3;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  Padding padding;
  bool use_bias = true;
};

// Geometry for an NCHW input; throws ConfigError naming the shapes when impossible.
cnnk::Conv2dGeometry conv2d_geometry(const Conv2dParams& p, const Shape& input);
// "n32 c1 28x28 -> k64 28x28, 7x7 s1x1 pad 3,3 dil 1x1": a key for caches and logs.
std::string describe(const cnnk::Conv2dGeometry& g);

namespace ref {
// The oracle: plain loops, double accumulation. All outputs are assigned, never
// accumulated. b / db may be null (no bias). Instantiated for float and double.
template <class T>
void conv2d_forward(const cnnk::Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y);
template <class T>
void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const T* dy, const T* w, T* dx);
template <class T>
void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* db);
}  // namespace ref

namespace blas {
// The CPU backend's fast path: im2col + OpenBLAS sgemm per image, the images split
// between `threads` threads. The filter gradient sums the batch in
// conv2d_filter_slices(g) fixed slices, each accumulated on one thread, then adds the
// slices in order: every output has the same bits for any thread count.
// `workspace`: conv2d_workspace_elements(g, threads) floats, caller-owned (may be null
// when that is 0: a 1x1, stride-1, unpadded convolution of one image reads the input as
// its column matrix). Outputs are assigned.
int conv2d_filter_slices(const cnnk::Conv2dGeometry& g);
size_t conv2d_workspace_elements(const cnnk::Conv2dGeometry& g, int threads);
void conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w, const float* b,
                    float* y, float* workspace, int threads = 1);
void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                          float* workspace, int threads = 1);
void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x, const float* dy,
                            float* dw, float* db, float* workspace, int threads = 1);
}  // namespace blas

}  // namespace cnn
