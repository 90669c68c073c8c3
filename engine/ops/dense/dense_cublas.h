// Dense layers' GEMMs through cuBLAS (FP32 SGEMM; TF32 when the handle's math mode allows
// it). Row-major [n, in] inputs and [out, in] weights are read as column-major
// transposes, so no copies are needed. The bias and the activation are the native
// kernels' (cnnk/bias.h), run by the CUDA backend after or before these.
#pragma once

#include <cublas_v2.h>

#include "cnnk/geometry.h"

namespace cnn::cublas {

// y = x W^T; dx = dy W; dW = dy^T x. Outputs assigned.
void dense_forward(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* x, const float* w,
                   float* y);
void dense_backward_data(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* dy,
                         const float* w, float* dx);
void dense_backward_weights(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* x,
                            const float* dy, float* dw);

}  // namespace cnn::cublas
