#include "engine/ops/dense/dense_cublas.h"

#include "engine/backend/cuda/cuda_check.h"

namespace cnn::cublas {

// Column-major views: x is (in x n), W is (in x out), y is (out x n), all with the
// leading dimension of their row length.
void dense_forward(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* x, const float* w,
                   float* y) {
  const float one = 1.0f, zero = 0.0f;
  // y (out x n) = W^T (out x in) . x (in x n)
  CNN_CUDA(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, g.out, g.n, g.in, &one, w, g.in, x, g.in, &zero,
                       y, g.out));
}

void dense_backward_data(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* dy,
                         const float* w, float* dx) {
  const float one = 1.0f, zero = 0.0f;
  // dx (in x n) = W (in x out) . dy (out x n)
  CNN_CUDA(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, g.in, g.n, g.out, &one, w, g.in, dy, g.out,
                       &zero, dx, g.in));
}

void dense_backward_weights(cublasHandle_t h, const cnnk::DenseGeometry& g, const float* x,
                            const float* dy, float* dw) {
  const float one = 1.0f, zero = 0.0f;
  // dW (in x out) = x (in x n) . dy^T (n x out)
  CNN_CUDA(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, g.in, g.out, g.n, &one, x, g.in, dy, g.out,
                       &zero, dw, g.in));
}

}  // namespace cnn::cublas
