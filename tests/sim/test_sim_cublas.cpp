// The simulated cuBLAS (include/cublas_v2.h, sim_cublas.cpp): SGEMM against a direct double
// product for every transpose combination, the engine's three Dense GEMMs against the
// Dense reference, and the rules: dimensions and leading dimensions, device memory,
// host scaling factors read at call time, a C that beta 0 does not read, the workspace,
// and work that a stream capture records.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops/dense/dense.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

struct Handle {
  cublasHandle_t h = nullptr;
  explicit Handle(cudaStream_t stream = nullptr) {
    EXPECT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cublasSetStream(h, stream), CUBLAS_STATUS_SUCCESS);
  }
  ~Handle() { cublasDestroy(h); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

std::vector<float> random_floats(size_t count, uint64_t seed) {
  return test::cast_all<float>(test::random_values(count, seed));
}

// Within one float rounding of the double expectation (with a margin).
void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<double>& want) {
  std::vector<double> bound(want.size());
  for (size_t i = 0; i < want.size(); ++i) bound[i] = 1e-9 + 1.2e-7 * std::abs(want[i]);
  EXPECT_TRUE(test::within_bounds(what, got, want, bound));
}

// A column-major matrix of `rows` x `cols` with leading dimension `ld` (>= rows): the
// elements past `rows` in each column are padding that must stay untouched.
struct Matrix {
  int rows, cols, ld;
  std::vector<float> data;
  Matrix(int r, int c, int l, uint64_t seed)
      : rows(r), cols(c), ld(l), data(random_floats(sz(int64_t(l) * c), seed)) {}
  float at(int i, int j) const { return data[sz(int64_t(j) * ld + i)]; }
};

// Element (i, j) of op(M).
double op_at(const Matrix& m, cublasOperation_t op, int i, int j) {
  return static_cast<double>(op == CUBLAS_OP_N ? m.at(i, j) : m.at(j, i));
}

// alpha * op(A) op(B) + beta * C over the m x n block of C, its padding as it was.
std::vector<double> gemm_reference(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   float alpha, const Matrix& a, const Matrix& b, float beta,
                                   const Matrix& c) {
  std::vector<double> out = test::cast_all<double>(c.data);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int l = 0; l < k; ++l) sum += op_at(a, ta, i, l) * op_at(b, tb, l, j);
      double v = static_cast<double>(alpha) * sum;
      if (beta != 0.0f) v += static_cast<double>(beta) * static_cast<double>(c.at(i, j));
      out[sz(int64_t(j) * c.ld + i)] = v;
    }
  return out;
}

TEST(SimCublas, SgemmMatchesADirectProductForEveryTranspose) {
  Handle h;
  const int m = 5, n = 3, k = 7;
  for (const cublasOperation_t ta : {CUBLAS_OP_N, CUBLAS_OP_T})
    for (const cublasOperation_t tb : {CUBLAS_OP_N, CUBLAS_OP_T})
      for (const float beta : {0.0f, 1.0f, -0.5f}) {
        SCOPED_TRACE(std::string("transa ") + (ta == CUBLAS_OP_N ? "N" : "T") + " transb " +
                     (tb == CUBLAS_OP_N ? "N" : "T") + " beta " + std::to_string(beta));
        const float alpha = 1.5f;
        // Stored shapes with a leading dimension two past the rows.
        const Matrix a = ta == CUBLAS_OP_N ? Matrix(m, k, m + 2, 1) : Matrix(k, m, k + 2, 1);
        const Matrix b = tb == CUBLAS_OP_N ? Matrix(k, n, k + 2, 2) : Matrix(n, k, n + 2, 2);
        Matrix c(m, n, m + 2, 3);
        if (beta == 0.0f)  // C's prior values are NaN: beta 0 must not read them
          for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) c.data[sz(int64_t(j) * c.ld + i)] = NAN;
        const std::vector<double> want = gemm_reference(ta, tb, m, n, k, alpha, a, b, beta, c);
        DeviceBuffer<float> ad(a.data), bd(b.data), cd(c.data);
        ASSERT_TRUE(ad.ok() && bd.ok() && cd.ok());
        ASSERT_EQ(cublasSgemm(h.h, ta, tb, m, n, k, &alpha, ad.get(), a.ld, bd.get(), b.ld, &beta,
                              cd.get(), c.ld),
                  CUBLAS_STATUS_SUCCESS);
        const std::vector<float> got = cd.download();
        // The padding rows of C are NaN where beta was 0 and were never written: compare
        // the block, then check the padding kept its bits.
        for (int j = 0; j < n; ++j)
          for (int i = m; i < c.ld; ++i) {
            const size_t at = sz(int64_t(j) * c.ld + i);
            EXPECT_EQ(got[at], c.data[at]) << "padding (" << i << ", " << j << ") written";
          }
        std::vector<float> block;
        std::vector<double> want_block;
        for (int j = 0; j < n; ++j)
          for (int i = 0; i < m; ++i) {
            block.push_back(got[sz(int64_t(j) * c.ld + i)]);
            want_block.push_back(want[sz(int64_t(j) * c.ld + i)]);
          }
        expect_close("C", block, want_block);
      }
}

// The engine's Dense GEMMs (engine/ops/dense/dense_cublas.cpp), argument for argument,
// against the Dense reference: row-major [n, in] inputs and [out, in] weights read as
// column-major transposes.
TEST(SimCublas, DenseGemmsAsTheEngineCallsThemMatchTheReference) {
  Handle h;
  cnnk::DenseGeometry g;
  g.n = 3, g.in = 7, g.out = 5;
  const std::vector<float> x = random_floats(sz(g.n * g.in), 10),
                           w = random_floats(sz(g.out * g.in), 11),
                           dy = random_floats(sz(g.n * g.out), 12);
  std::vector<double> y(sz(g.n * g.out)), dx(sz(g.n * g.in)), dw(sz(g.out * g.in));
  const std::vector<double> xd64 = test::cast_all<double>(x), wd64 = test::cast_all<double>(w),
                            dyd64 = test::cast_all<double>(dy);
  ref::dense_forward<double>(g, xd64.data(), wd64.data(), nullptr, y.data());
  ref::dense_backward_data<double>(g, dyd64.data(), wd64.data(), dx.data());
  ref::dense_backward_weights<double>(g, xd64.data(), dyd64.data(), dw.data(), nullptr);
  DeviceBuffer<float> xb(x), wb(w), dyb(dy), yb(y.size()), dxb(dx.size()), dwb(dw.size());
  ASSERT_TRUE(xb.ok() && wb.ok() && dyb.ok() && yb.ok() && dxb.ok() && dwb.ok());
  const float one = 1.0f, zero = 0.0f;
  ASSERT_EQ(cublasSgemm(h.h, CUBLAS_OP_T, CUBLAS_OP_N, g.out, g.n, g.in, &one, wb.get(), g.in,
                        xb.get(), g.in, &zero, yb.get(), g.out),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, g.in, g.n, g.out, &one, wb.get(), g.in,
                        dyb.get(), g.out, &zero, dxb.get(), g.in),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_T, g.in, g.out, g.n, &one, xb.get(), g.in,
                        dyb.get(), g.out, &zero, dwb.get(), g.in),
            CUBLAS_STATUS_SUCCESS);
  expect_close("y", yb.download(), y);
  expect_close("dx", dxb.download(), dx);
  expect_close("dw", dwb.download(), dw);
}

TEST(SimCublas, BadDimensionsAndMemoryAreRefused) {
  Handle h;
  const int m = 4, n = 3, k = 2;
  DeviceBuffer<float> a(sz(m * k)), b(sz(k * n)), c(sz(m * n));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const float one = 1.0f, zero = 0.0f;
  auto gemm = [&](int mm, int lda, const float* ap, const float* alpha, float* cp) {
    return cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, mm, n, k, alpha, ap, lda, b.get(), k, &zero,
                       cp, m);
  };
  EXPECT_EQ(gemm(m, m, a.get(), &one, c.get()), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(gemm(m, m - 1, a.get(), &one, c.get()), CUBLAS_STATUS_INVALID_VALUE)
      << "lda below the rows of A";
  EXPECT_EQ(gemm(-1, m, a.get(), &one, c.get()), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &one, a.get(), m, b.get(), k, &zero,
                        c.get(), m),
            CUBLAS_STATUS_INVALID_VALUE)
      << "ldb below the rows of B stored for op T (n)";
  std::vector<float> host(sz(m * k));
  EXPECT_EQ(gemm(m, m, host.data(), &one, c.get()), CUBLAS_STATUS_INVALID_VALUE)
      << "A in host memory";
  DeviceBuffer<float> short_c(sz(m * n) - 1);
  EXPECT_EQ(gemm(m, m, a.get(), &one, short_c.get()), CUBLAS_STATUS_INVALID_VALUE)
      << "C one element short";
  DeviceBuffer<float> alpha_on_device(std::vector<float>{1.0f});
  EXPECT_EQ(gemm(m, m, a.get(), alpha_on_device.get(), c.get()), CUBLAS_STATUS_INVALID_VALUE)
      << "alpha in device memory under the host pointer mode";
  EXPECT_EQ(gemm(0, m, nullptr, &one, nullptr), CUBLAS_STATUS_SUCCESS) << "m 0: nothing to do";
}

TEST(SimCublas, WorkspaceAndMathModeAreRecorded) {
  Handle h;
  DeviceBuffer<char> ws(size_t(1) << 16);
  ASSERT_TRUE(ws.ok());
  EXPECT_EQ(cublasSetWorkspace(h.h, ws.get(), ws.size()), CUBLAS_STATUS_SUCCESS);
  std::vector<char> host(1024);
  EXPECT_EQ(cublasSetWorkspace(h.h, host.data(), host.size()), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSetWorkspace(h.h, ws.get(), ws.size() + 1), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSetWorkspace(h.h, ws.get() + 4, 256), CUBLAS_STATUS_INVALID_VALUE)
      << "not 256-byte aligned";
  EXPECT_EQ(cublasSetMathMode(h.h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  cublasMath_t mode = CUBLAS_DEFAULT_MATH;
  ASSERT_EQ(cublasGetMathMode(h.h, &mode), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(mode, CUBLAS_TF32_TENSOR_OP_MATH);
  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_NE(std::string(cublasGetStatusString(CUBLAS_STATUS_EXECUTION_FAILED)), "");
}

// A captured GEMM runs at each replay with the alpha it was given at the call.
TEST(SimCublas, CaptureRecordsTheCallWithItsValues) {
  cudaStream_t stream = nullptr;
  CNN_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraphExec_t exec = nullptr;
  {
    Handle h(stream);
    const Matrix a(3, 2, 3, 20), b(2, 4, 2, 21);
    Matrix c(3, 4, 3, 22);
    DeviceBuffer<float> ad(a.data), bd(b.data), cd(sz(3 * 4));
    ASSERT_TRUE(ad.ok() && bd.ok() && cd.ok());
    float alpha = 2.0f;
    const float beta = 0.0f;
    CNN_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    EXPECT_EQ(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, &alpha, ad.get(), 3, bd.get(), 2,
                          &beta, cd.get(), 3),
              CUBLAS_STATUS_SUCCESS);
    alpha = -7.0f;
    cudaGraph_t graph = nullptr;
    CNN_CUDA_OK(cudaStreamEndCapture(stream, &graph));
    for (const float v : cd.download()) ASSERT_TRUE(std::isnan(v)) << "ran during the capture";
    CNN_CUDA_OK(cudaGraphInstantiate(&exec, graph));
    CNN_CUDA_OK(cudaGraphDestroy(graph));
    CNN_CUDA_OK(cudaGraphLaunch(exec, stream));
    expect_close("C", cd.download(),
                 gemm_reference(CUBLAS_OP_N, CUBLAS_OP_N, 3, 4, 2, 2.0f, a, b, 0.0f, c));
  }
  // The matrices are freed now: a replay reports it instead of touching freed memory.
  EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  CNN_CUDA_OK(cudaGraphExecDestroy(exec));
  CNN_CUDA_OK(cudaStreamDestroy(stream));
}

// Work the stream refuses (a destroyed stream) fails the call with an execution status.
TEST(SimCublas, StreamThatRefusesTheWorkFailsTheCall) {
  cudaStream_t stream = nullptr;
  CNN_CUDA_OK(cudaStreamCreate(&stream));
  Handle h(stream);
  CNN_CUDA_OK(cudaStreamDestroy(stream));
  DeviceBuffer<float> a(4), b(4), c(4);
  const float one = 1.0f, zero = 0.0f;
  EXPECT_EQ(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a.get(), 2, b.get(), 2, &zero,
                        c.get(), 2),
            CUBLAS_STATUS_EXECUTION_FAILED);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
}

}  // namespace
}  // namespace cnn
