// Dense (fully connected): y[n, out] = x[n, in] . W[out, in]^T + b[out].
// Weights are [out, in] (as PyTorch and cuBLAS's column-major view of them want).
#pragma once

#include "cnnk/geometry.h"

namespace cnn {

namespace ref {
// Plain loops, double accumulation; outputs assigned; b / db may be null.
template <class T>
void dense_forward(const cnnk::DenseGeometry& g, const T* x, const T* w, const T* b, T* y);
template <class T>
void dense_backward_data(const cnnk::DenseGeometry& g, const T* dy, const T* w, T* dx);
template <class T>
void dense_backward_weights(const cnnk::DenseGeometry& g, const T* x, const T* dy, T* dw, T* db);
}  // namespace ref

namespace blas {
void dense_forward(const cnnk::DenseGeometry& g, const float* x, const float* w, const float* b,
                   float* y);
void dense_backward_data(const cnnk::DenseGeometry& g, const float* dy, const float* w, float* dx);
void dense_backward_weights(const cnnk::DenseGeometry& g, const float* x, const float* dy,
                            float* dw, float* db);
}  // namespace blas

}  // namespace cnn
