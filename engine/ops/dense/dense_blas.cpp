// Dense on the CPU backend's fast path: one OpenBLAS sgemm over the whole batch.
//   forward          y[N, out]  = x[N, in] . W[out, in]^T (+ b)
//   backward data    dx[N, in]  = dy[N, out] . W[out, in]
//   backward weights dW[out, in] = dy^T . x, db = column sums of dy
#include <algorithm>
#include <cstdint>

#include "engine/ops/dense/dense.h"
#include "engine/ops/sgemm_rowmajor.h"

namespace cnn::blas {

using detail::sgemm;

void dense_forward(const cnnk::DenseGeometry& g, const float* x, const float* w, const float* b,
                   float* y) {
  if (b) {
    for (int n = 0; n < g.n; ++n) std::copy(b, b + g.out, y + static_cast<int64_t>(n) * g.out);
  }
  sgemm(false, true, g.n, g.out, g.in, x, g.in, w, g.in, b ? 1.0f : 0.0f, y, g.out);
}

void dense_backward_data(const cnnk::DenseGeometry& g, const float* dy, const float* w, float* dx) {
  sgemm(false, false, g.n, g.in, g.out, dy, g.out, w, g.in, 0.0f, dx, g.in);
}

void dense_backward_weights(const cnnk::DenseGeometry& g, const float* x, const float* dy,
                            float* dw, float* db) {
  sgemm(true, false, g.out, g.in, g.n, dy, g.out, x, g.in, 0.0f, dw, g.in);
  if (!db) return;
  for (int o = 0; o < g.out; ++o) {
    double acc = 0.0;
    for (int n = 0; n < g.n; ++n)
      acc += static_cast<double>(dy[static_cast<int64_t>(n) * g.out + o]);
    db[o] = static_cast<float>(acc);
  }
}

}  // namespace cnn::blas
