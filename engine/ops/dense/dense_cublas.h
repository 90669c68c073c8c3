// Dense layers through cuBLAS (strict FP32 SGEMM). Row-major [n, in] inputs and
// [out, in] weights are read as column-major transposes, so no copies are needed.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cnnk/geometry.h"

namespace cnn::cublas {

// y = x W^T (+ b via the bias kernel); outputs assigned; b / db may be null.
void dense_forward(cublasHandle_t h, cudaStream_t stream, const cnnk::DenseGeometry& g,
                   const float* x, const float* w, const float* b, float* y);
void dense_backward_data(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* dy,
                         const float* w, float* dx);
void dense_backward_weights(cublasHandle_t h, cudaStream_t stream, const cnnk::DenseGeometry& g,
                            const float* x, const float* dy, float* dw, float* db);

}  // namespace cnn::cublas
