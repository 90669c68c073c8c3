// Row-major single-precision GEMM for the CPU backend's fast paths (conv2d, dense), over
// OpenBLAS's cblas_sgemm. Internal to engine/ops; the reference never uses it.
// A build without a CPU BLAS (CNN_CPU_BLAS=none: the GPU machine, which has no Debian
// packages, where the CPU path only serves tests) uses plain loops instead.
#pragma once

#if CNN_HAVE_CBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <cstdint>

namespace cnn::blas::detail {

// C[m, n] = op(A)[m, k] . op(B)[k, n] + beta * C, all row-major. Empty products are
// handled here (C is zeroed when beta is 0) so that OpenBLAS never sees a zero dimension.
inline void sgemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, int lda,
                  const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.0f)
      for (int i = 0; i < m; ++i) std::fill_n(c + static_cast<int64_t>(i) * ldc, n, 0.0f);
    return;
  }
#if CNN_HAVE_CBLAS
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
#else
  for (int i = 0; i < m; ++i) {
    float* ci = c + static_cast<int64_t>(i) * ldc;
    for (int j = 0; j < n; ++j) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
    for (int p = 0; p < k; ++p) {
      const float av =
          trans_a ? a[static_cast<int64_t>(p) * lda + i] : a[static_cast<int64_t>(i) * lda + p];
      if (trans_b)
        for (int j = 0; j < n; ++j) ci[j] += av * b[static_cast<int64_t>(j) * ldb + p];
      else
        for (int j = 0; j < n; ++j) ci[j] += av * b[static_cast<int64_t>(p) * ldb + j];
    }
  }
#endif
}

}  // namespace cnn::blas::detail
