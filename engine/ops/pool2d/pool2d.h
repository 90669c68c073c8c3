// MaxPooling2D / AveragePooling2D: parameters, shape inference, CPU reference.
#pragma once

#include <string>

#include "cnnk/geometry.h"
#include "engine/core/shape.h"
#include "engine/ops/padding.h"

namespace cnn {

struct Pool2dParams {
  cnnk::PoolMode mode = cnnk::PoolMode::Max;
  int pool_h = 2, pool_w = 2;
  int stride_h = 0, stride_w = 0;  // 0: defaults to the pool size, as Keras
  Padding padding;                 // Keras default "valid"
};

cnnk::Pool2dGeometry pool2d_geometry(const Pool2dParams& p, const Shape& input);
// "max n32 c64 28x28 -> 14x14, 2x2 s2x2 pad 0,0": a key for caches and logs.
std::string describe(const cnnk::Pool2dGeometry& g);

namespace ref {
// Max: padding never wins; the gradient goes to the first maximum of the window in
// row-major order. Average: divides by the number of in-bounds inputs.
// dx is assigned (overlapping windows are summed inside).
template <class T>
void pool2d_forward(const cnnk::Pool2dGeometry& g, const T* x, T* y);
template <class T>
void pool2d_backward(const cnnk::Pool2dGeometry& g, const T* x, const T* dy, T* dx);
}  // namespace ref

namespace cpu {
// The CPU backend's fast path for max pooling whose windows do not overlap (stride at
// least the pool size, as in every zoo model): the reference's bits, in one pass per
// window. Only for geometries where max_pool2d_disjoint(g) holds.
bool max_pool2d_disjoint(const cnnk::Pool2dGeometry& g);
void max_pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y);
void max_pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float* dy, float* dx);
}  // namespace cpu

}  // namespace cnn
