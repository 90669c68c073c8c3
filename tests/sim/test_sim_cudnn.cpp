// The simulated cuDNN (include/cudnn.h, sim_cudnn*.cpp) against the engine's CPU reference
// ops, called as the engine calls it, and the rules it holds callers to: device memory
// for every tensor, agreeing descriptors, a large enough workspace (which it overwrites),
// scaling factors read at call time, and work that a stream capture records.
//
// The simulation sums in double and rounds once to float; the references run in double on
// the same float inputs. So each result is within one float rounding of the reference
// (plus the blend with a prior output, also done in double), whatever the sizes.
#include <cudnn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops/activation/activation.h"
#include "engine/ops/batchnorm/batchnorm.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/pool2d/pool2d.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// ---- RAII for handles and descriptors ----------------------------------------------------

struct Handle {
  cudnnHandle_t h = nullptr;
  explicit Handle(cudaStream_t stream = nullptr) {
    EXPECT_EQ(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetStream(h, stream), CUDNN_STATUS_SUCCESS);
  }
  ~Handle() { cudnnDestroy(h); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

struct Tensor {
  cudnnTensorDescriptor_t d = nullptr;
  Tensor(int n, int c, int h, int w) {
    EXPECT_EQ(cudnnCreateTensorDescriptor(&d), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w),
              CUDNN_STATUS_SUCCESS);
  }
  ~Tensor() { cudnnDestroyTensorDescriptor(d); }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
};

// The descriptors of one convolution geometry, as the engine's ConvPlan makes them.
struct ConvDescs {
  Tensor x, y, bias;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit ConvDescs(const cnnk::Conv2dGeometry& g, cudnnMathType_t math = CUDNN_FMA_MATH)
      : x(g.n, g.c, g.h, g.w), y(g.n, g.k, g.p, g.q), bias(1, g.k, 1, 1) {
    EXPECT_EQ(cudnnCreateFilterDescriptor(&w), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(
        cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.k, g.c, g.r, g.s),
        CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateConvolutionDescriptor(&conv), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetConvolution2dDescriptor(conv, g.pad_top, g.pad_left, g.stride_h, g.stride_w,
                                              g.dil_h, g.dil_w, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT),
              CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetConvolutionMathType(conv, math), CUDNN_STATUS_SUCCESS);
  }
  ~ConvDescs() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
  }
  ConvDescs(const ConvDescs&) = delete;
  ConvDescs& operator=(const ConvDescs&) = delete;
};

struct PoolDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  explicit PoolDesc(const cnnk::Pool2dGeometry& g) {
    EXPECT_EQ(cudnnCreatePoolingDescriptor(&d), CUDNN_STATUS_SUCCESS);
    const cudnnPoolingMode_t mode = g.mode == cnnk::PoolMode::Max
                                        ? CUDNN_POOLING_MAX
                                        : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    EXPECT_EQ(cudnnSetPooling2dDescriptor(d, mode, CUDNN_NOT_PROPAGATE_NAN, g.window_h, g.window_w,
                                          g.pad_top, g.pad_left, g.stride_h, g.stride_w),
              CUDNN_STATUS_SUCCESS);
  }
  ~PoolDesc() { cudnnDestroyPoolingDescriptor(d); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
};

struct ActDesc {
  cudnnActivationDescriptor_t d = nullptr;
  explicit ActDesc(cudnnActivationMode_t mode) {
    EXPECT_EQ(cudnnCreateActivationDescriptor(&d), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetActivationDescriptor(d, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0),
              CUDNN_STATUS_SUCCESS);
  }
  ~ActDesc() { cudnnDestroyActivationDescriptor(d); }
  ActDesc(const ActDesc&) = delete;
  ActDesc& operator=(const ActDesc&) = delete;
};

// ---- Values and comparisons ------------------------------------------------------------------

std::vector<float> random_floats(size_t count, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return test::cast_all<float>(test::random_values(count, seed, lo, hi));
}
std::vector<double> widen(const std::vector<float>& v) { return test::cast_all<double>(v); }

// How a call scales its output: alpha * result + beta * prior. With beta 0 the prior is NaN
// poison, which must not be read.
struct Scaling {
  float alpha, beta;
};
const Scaling kScalings[] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -2.0f}};

std::string name_of(const Scaling& s) {
  return "alpha " + std::to_string(s.alpha) + " beta " + std::to_string(s.beta);
}

// The prior content of an output for `s`: NaN when it must not be read.
std::vector<float> prior_for(const Scaling& s, size_t count, uint64_t seed) {
  return s.beta == 0.0f ? test::poisoned<float>(count) : random_floats(count, seed);
}

std::vector<double> blended(const Scaling& s, const std::vector<double>& result,
                            const std::vector<float>& prior) {
  std::vector<double> out(result.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<double>(s.alpha) * result[i];
    if (s.beta != 0.0f) out[i] += static_cast<double>(s.beta) * static_cast<double>(prior[i]);
  }
  return out;
}

// Within one float rounding of the double expectation (with a margin).
void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<double>& want) {
  std::vector<double> bound(want.size());
  for (size_t i = 0; i < want.size(); ++i) bound[i] = 1e-9 + 1.2e-7 * std::abs(want[i]);
  EXPECT_TRUE(test::within_bounds(what, got, want, bound));
}

// The last error message, which reading clears.
std::string last_error() {
  char buf[512];
  cudnnGetLastErrorString(buf, sizeof buf);
  return buf;
}

// ---- Convolution -------------------------------------------------------------------------------

int out_dim(int in, int pad, int window, int dil, int stride) {
  return (in + 2 * pad - ((window - 1) * dil + 1)) / stride + 1;
}

cnnk::Conv2dGeometry conv_geometry(int n, int c, int h, int w, int k, int r, int s, int stride_h,
                                   int stride_w, int pad_h, int pad_w, int dil_h, int dil_w) {
  cnnk::Conv2dGeometry g;
  g.n = n, g.c = c, g.h = h, g.w = w, g.k = k, g.r = r, g.s = s;
  g.stride_h = stride_h, g.stride_w = stride_w, g.pad_top = pad_h, g.pad_left = pad_w;
  g.dil_h = dil_h, g.dil_w = dil_w;
  g.p = out_dim(h, pad_h, r, dil_h, stride_h);
  g.q = out_dim(w, pad_w, s, dil_w, stride_w);
  return g;
}

// Odd sizes, stride 2, padding that differs between the axes, a bottom padding smaller
// than the top one (6 rows, 3-row filter, stride 2, top 1: the last window ends at row 5),
// dilation 2, a 1x1 filter.
const std::vector<cnnk::Conv2dGeometry>& conv_shapes() {
  static const std::vector<cnnk::Conv2dGeometry> all = {
      conv_geometry(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1),
      conv_geometry(1, 2, 7, 6, 3, 3, 3, 2, 2, 1, 1, 1, 1),
      conv_geometry(2, 3, 6, 5, 2, 3, 2, 2, 1, 1, 0, 1, 1),
      conv_geometry(1, 2, 6, 9, 3, 3, 3, 1, 2, 2, 0, 1, 1),
      conv_geometry(2, 2, 9, 8, 2, 3, 2, 1, 1, 2, 1, 2, 2),
      conv_geometry(3, 5, 4, 3, 2, 1, 1, 1, 1, 0, 0, 1, 1),
  };
  return all;
}

// The algorithms the simulated heuristics give for one pass: [0] needs a workspace of
// the im2col buffer (at least 1 MiB), [1] none, [2] is marked not supported.
template <class Perf>
void expect_offers(const cnnk::Conv2dGeometry& g, const Perf* perf, int count) {
  ASSERT_EQ(count, 3);
  const size_t col = sz(int64_t(g.n) * g.c * g.r * g.s * g.p * g.q) * sizeof(float);
  EXPECT_EQ(perf[0].status, CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(perf[0].memory, std::max(col, size_t(1) << 20));
  EXPECT_EQ(perf[1].status, CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(perf[1].memory, 0u);
  EXPECT_EQ(perf[2].status, CUDNN_STATUS_NOT_SUPPORTED);
  for (int i = 0; i < count; ++i) EXPECT_EQ(perf[i].mathType, CUDNN_FMA_MATH);
}

struct ConvAlgos {
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  cudnnConvolutionBwdDataAlgoPerf_t bwd_data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
};

ConvAlgos heuristics(cudnnHandle_t h, const cnnk::Conv2dGeometry& g, const ConvDescs& d) {
  ConvAlgos a{};
  int n = 0;
  EXPECT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.d, d.w, d.conv, d.y.d,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, a.fwd),
            CUDNN_STATUS_SUCCESS);
  expect_offers(g, a.fwd, n);
  EXPECT_EQ(
      cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, d.w, d.y.d, d.conv, d.x.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, a.bwd_data),
      CUDNN_STATUS_SUCCESS);
  expect_offers(g, a.bwd_data, n);
  EXPECT_EQ(
      cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, d.x.d, d.y.d, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, a.bwd_filter),
      CUDNN_STATUS_SUCCESS);
  expect_offers(g, a.bwd_filter, n);
  return a;
}

// The workspace-size queries agree with the heuristics' figures for every offered
// algorithm of every pass, and refuse one that is not offered.
TEST(SimCudnnConvolution, WorkspaceSizeQueriesAgreeWithTheHeuristics) {
  Handle h;
  for (const cnnk::Conv2dGeometry& g : conv_shapes()) {
    SCOPED_TRACE(describe(g));
    ConvDescs d(g);
    const ConvAlgos a = heuristics(h.h, g, d);
    for (int i = 0; i < 2; ++i) {
      size_t bytes = 7;
      EXPECT_EQ(cudnnGetConvolutionForwardWorkspaceSize(h.h, d.x.d, d.w, d.conv, d.y.d,
                                                        a.fwd[i].algo, &bytes),
                CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(bytes, a.fwd[i].memory);
      bytes = 7;
      EXPECT_EQ(cudnnGetConvolutionBackwardDataWorkspaceSize(h.h, d.w, d.y.d, d.conv, d.x.d,
                                                             a.bwd_data[i].algo, &bytes),
                CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(bytes, a.bwd_data[i].memory);
      bytes = 7;
      EXPECT_EQ(cudnnGetConvolutionBackwardFilterWorkspaceSize(h.h, d.x.d, d.y.d, d.conv, d.w,
                                                               a.bwd_filter[i].algo, &bytes),
                CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(bytes, a.bwd_filter[i].memory);
    }
    size_t bytes = 0;
    EXPECT_EQ(cudnnGetConvolutionForwardWorkspaceSize(h.h, d.x.d, d.w, d.conv, d.y.d, a.fwd[2].algo,
                                                      &bytes),
              CUDNN_STATUS_NOT_SUPPORTED);
    EXPECT_EQ(cudnnGetConvolutionBackwardFilterWorkspaceSize(h.h, d.x.d, d.y.d, d.conv, d.w,
                                                             a.bwd_filter[2].algo, nullptr),
              CUDNN_STATUS_BAD_PARAM);
    (void)last_error();
  }
}

// Each pass with each offered algorithm (its workspace exactly the size it asked for) and
// each scaling, against the reference.
TEST(SimCudnnConvolution, EveryPassMatchesTheReference) {
  Handle h;
  for (const cnnk::Conv2dGeometry& g : conv_shapes()) {
    SCOPED_TRACE(describe(g));
    ConvDescs d(g);
    const ConvAlgos algos = heuristics(h.h, g, d);
    const std::vector<float> x = random_floats(sz(g.input_size()), 1);
    const std::vector<float> w = random_floats(sz(g.filter_size()), 2);
    const std::vector<float> dy = random_floats(sz(g.output_size()), 3);
    std::vector<double> y_ref(sz(g.output_size())), dx_ref(sz(g.input_size())),
        dw_ref(sz(g.filter_size()));
    ref::conv2d_forward<double>(g, widen(x).data(), widen(w).data(), nullptr, y_ref.data());
    ref::conv2d_backward_data<double>(g, widen(dy).data(), widen(w).data(), dx_ref.data());
    ref::conv2d_backward_filter<double>(g, widen(x).data(), widen(dy).data(), dw_ref.data(),
                                        nullptr);
    DeviceBuffer<float> xd(x), wd(w), dyd(dy);
    for (int i = 0; i < 2; ++i)
      for (const Scaling& s : kScalings) {
        SCOPED_TRACE("algorithm choice " + std::to_string(i) + ", " + name_of(s));
        const size_t ws_bytes =
            std::max({algos.fwd[i].memory, algos.bwd_data[i].memory, algos.bwd_filter[i].memory});
        DeviceBuffer<char> ws(ws_bytes);
        const std::vector<float> y0 = prior_for(s, y_ref.size(), 4),
                                 dx0 = prior_for(s, dx_ref.size(), 5),
                                 dw0 = prior_for(s, dw_ref.size(), 6);
        DeviceBuffer<float> yd(y0), dxd(dx0), dwd(dw0);
        ASSERT_TRUE(xd.ok() && wd.ok() && dyd.ok() && ws.ok() && yd.ok() && dxd.ok() && dwd.ok());
        EXPECT_EQ(cudnnConvolutionForward(h.h, &s.alpha, d.x.d, xd.get(), d.w, wd.get(), d.conv,
                                          algos.fwd[i].algo, ws.get(), algos.fwd[i].memory, &s.beta,
                                          d.y.d, yd.get()),
                  CUDNN_STATUS_SUCCESS);
        EXPECT_EQ(cudnnConvolutionBackwardData(h.h, &s.alpha, d.w, wd.get(), d.y.d, dyd.get(),
                                               d.conv, algos.bwd_data[i].algo, ws.get(),
                                               algos.bwd_data[i].memory, &s.beta, d.x.d, dxd.get()),
                  CUDNN_STATUS_SUCCESS);
        EXPECT_EQ(
            cudnnConvolutionBackwardFilter(h.h, &s.alpha, d.x.d, xd.get(), d.y.d, dyd.get(), d.conv,
                                           algos.bwd_filter[i].algo, ws.get(),
                                           algos.bwd_filter[i].memory, &s.beta, d.w, dwd.get()),
            CUDNN_STATUS_SUCCESS);
        expect_close("y", yd.download(), blended(s, y_ref, y0));
        expect_close("dx", dxd.download(), blended(s, dx_ref, dx0));
        expect_close("dw", dwd.download(), blended(s, dw_ref, dw0));
      }
  }
}

// The bias as the engine adds it (cudnnAddTensor, beta 1 onto the convolution's output)
// and its gradient (cudnnConvolutionBackwardBias), against the reference's.
TEST(SimCudnnConvolution, BiasAndItsGradientMatchTheReference) {
  Handle h;
  const cnnk::Conv2dGeometry g = conv_shapes()[1];
  ConvDescs d(g);
  const std::vector<float> b = random_floats(sz(g.k), 7);
  const std::vector<float> y = random_floats(sz(g.output_size()), 8);
  const std::vector<float> dy = random_floats(sz(g.output_size()), 9);
  DeviceBuffer<float> bd(b), yd(y), dyd(dy);
  DeviceBuffer<float> dbd(sz(g.k));  // NaN bytes from cudaMalloc: beta 0 must not read them
  ASSERT_TRUE(bd.ok() && yd.ok() && dyd.ok() && dbd.ok());
  const float one = 1.0f, zero = 0.0f;
  ASSERT_EQ(cudnnAddTensor(h.h, &one, d.bias.d, bd.get(), &one, d.y.d, yd.get()),
            CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnConvolutionBackwardBias(h.h, &one, d.y.d, dyd.get(), &zero, d.bias.d, dbd.get()),
            CUDNN_STATUS_SUCCESS);
  std::vector<double> want_y(y.size());
  for (size_t i = 0; i < y.size(); ++i)
    want_y[i] = static_cast<double>(y[i]) + static_cast<double>(b[(i / sz(g.p * g.q)) % sz(g.k)]);
  expect_close("y + b", yd.download(), want_y);
  std::vector<double> dw(sz(g.filter_size())), db(sz(g.k));
  ref::conv2d_backward_filter<double>(g, widen(random_floats(sz(g.input_size()), 10)).data(),
                                      widen(dy).data(), dw.data(), db.data());
  expect_close("db", dbd.download(), db);
}

// The math type is recorded and reported back in the heuristics' results; results stay FP32.
TEST(SimCudnnConvolution, MathTypeIsRecorded) {
  Handle h;
  const cnnk::Conv2dGeometry g = conv_shapes()[0];
  ConvDescs d(g, CUDNN_TENSOR_OP_MATH);
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  ASSERT_EQ(cudnnGetConvolutionMathType(d.conv, &math), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(math, CUDNN_TENSOR_OP_MATH);
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  ASSERT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(h.h, d.x.d, d.w, d.conv, d.y.d,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
            CUDNN_STATUS_SUCCESS);
  for (int i = 0; i < n; ++i) EXPECT_EQ(perf[i].mathType, CUDNN_TENSOR_OP_MATH);
}

// ---- Pooling
// -----------------------------------------------------------------------------------------

cnnk::Pool2dGeometry pool_geometry(cnnk::PoolMode mode, int n, int c, int h, int w, int wh, int ww,
                                   int sh, int sw, int ph, int pw) {
  cnnk::Pool2dGeometry g;
  g.mode = mode, g.n = n, g.c = c, g.h = h, g.w = w;
  g.window_h = wh, g.window_w = ww, g.stride_h = sh, g.stride_w = sw;
  g.pad_top = ph, g.pad_left = pw;
  g.p = (h + 2 * ph - wh) / sh + 1;
  g.q = (w + 2 * pw - ww) / sw + 1;
  return g;
}

// The simulated cuDNN's max-pooling gradient: each window's to the last of its inputs
// equal to its maximum (the reference gives it to the first; cuDNN names neither).
std::vector<double> max_pool_backward_last_tie(const cnnk::Pool2dGeometry& g,
                                               const std::vector<float>& x,
                                               const std::vector<float>& dy) {
  std::vector<double> dx(x.size(), 0.0);
  for (int64_t nc = 0; nc < int64_t(g.n) * g.c; ++nc)
    for (int p = 0; p < g.p; ++p)
      for (int q = 0; q < g.q; ++q) {
        const int h0 = p * g.stride_h - g.pad_top, w0 = q * g.stride_w - g.pad_left;
        int64_t winner = -1;
        for (int h = std::max(h0, 0); h < std::min(h0 + g.window_h, g.h); ++h)
          for (int w = std::max(w0, 0); w < std::min(w0 + g.window_w, g.w); ++w) {
            const int64_t i = (nc * g.h + h) * g.w + w;
            if (winner < 0 || x[sz(i)] >= x[sz(winner)]) winner = i;
          }
        dx[sz(winner)] += dy[sz((nc * g.p + p) * g.q + q)];
      }
  return dx;
}

// Inputs are small integers: many ties, whose gradient goes to the last maximum.
TEST(SimCudnnPooling, ForwardAndBackwardMatchTheReference) {
  Handle h;
  for (const cnnk::PoolMode mode : {cnnk::PoolMode::Max, cnnk::PoolMode::Average})
    for (const cnnk::Pool2dGeometry& g : {pool_geometry(mode, 2, 3, 5, 7, 2, 2, 2, 2, 0, 0),
                                          pool_geometry(mode, 1, 2, 6, 5, 3, 3, 2, 2, 1, 1),
                                          pool_geometry(mode, 2, 2, 7, 6, 3, 2, 1, 2, 2, 0),
                                          pool_geometry(mode, 1, 3, 6, 6, 3, 3, 2, 2, 1, 1)}) {
      SCOPED_TRACE(describe(g));
      PoolDesc pool(g);
      Tensor xt(g.n, g.c, g.h, g.w), yt(g.n, g.c, g.p, g.q);
      const std::vector<float> x = test::small_integers(sz(g.input_size()), 11);
      const std::vector<float> dy = test::small_integers(sz(g.output_size()), 12);
      std::vector<double> y_ref(sz(g.output_size())), dx_ref(sz(g.input_size()));
      ref::pool2d_forward<double>(g, widen(x).data(), y_ref.data());
      if (mode == cnnk::PoolMode::Max)
        dx_ref = max_pool_backward_last_tie(g, x, dy);
      else
        ref::pool2d_backward<double>(g, widen(x).data(), widen(dy).data(), dx_ref.data());
      DeviceBuffer<float> xd(x), dyd(dy), y_exact(test::cast_all<float>(y_ref));
      for (const Scaling& s : kScalings) {
        SCOPED_TRACE(name_of(s));
        const std::vector<float> y0 = prior_for(s, y_ref.size(), 13),
                                 dx0 = prior_for(s, dx_ref.size(), 14);
        DeviceBuffer<float> yd(y0), dxd(dx0);
        ASSERT_TRUE(xd.ok() && dyd.ok() && y_exact.ok() && yd.ok() && dxd.ok());
        EXPECT_EQ(
            cudnnPoolingForward(h.h, pool.d, &s.alpha, xt.d, xd.get(), &s.beta, yt.d, yd.get()),
            CUDNN_STATUS_SUCCESS);
        // The backward takes the forward's (unscaled) output, as the engine passes it.
        EXPECT_EQ(cudnnPoolingBackward(h.h, pool.d, &s.alpha, yt.d, y_exact.get(), yt.d, dyd.get(),
                                       xt.d, xd.get(), &s.beta, xt.d, dxd.get()),
                  CUDNN_STATUS_SUCCESS);
        expect_close("y", yd.download(), blended(s, y_ref, y0));
        expect_close("dx", dxd.download(), blended(s, dx_ref, dx0));
      }
      EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    }
}

// Max pooling's gradient is routed by y: a y that is not the forward's output is reported
// (real cuDNN would silently route the gradient wrongly).
TEST(SimCudnnPooling, BackwardWithAForeignYIsReported) {
  Handle h;
  const cnnk::Pool2dGeometry g = pool_geometry(cnnk::PoolMode::Max, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0);
  PoolDesc pool(g);
  Tensor xt(g.n, g.c, g.h, g.w), yt(g.n, g.c, g.p, g.q);
  DeviceBuffer<float> xd(test::small_integers(16, 15)), yd(std::vector<float>(4, 100.0f)),
      dyd(std::vector<float>(4, 1.0f)), dxd(16);
  ASSERT_TRUE(xd.ok() && yd.ok() && dyd.ok() && dxd.ok());
  const float one = 1.0f, zero = 0.0f;
  (void)cudaGetLastError();
  EXPECT_EQ(cudnnPoolingBackward(h.h, pool.d, &one, yt.d, yd.get(), yt.d, dyd.get(), xt.d, xd.get(),
                                 &zero, xt.d, dxd.get()),
            CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
}

// ---- Batch normalization
// -----------------------------------------------------------------------------

struct BnCase {
  int n, c, h, w;
  cnnk::BatchNormGeometry geometry() const { return {n, c, h * w}; }
};

// An NCHW map, the engine's [n, c, spatial] view (spatial as h, w 1), a Dense output.
const BnCase kBnCases[] = {{2, 3, 3, 5}, {3, 4, 7, 1}, {5, 2, 1, 1}};

TEST(SimCudnnBatchNorm, TrainingInferenceAndBackwardMatchTheReference) {
  Handle h;
  const float momentum = 0.9f, epsilon = 1e-3f;
  for (const BnCase& bc : kBnCases) {
    const cnnk::BatchNormGeometry g = bc.geometry();
    SCOPED_TRACE(std::to_string(bc.n) + "x" + std::to_string(bc.c) + "x" + std::to_string(bc.h) +
                 "x" + std::to_string(bc.w));
    Tensor xt(bc.n, bc.c, bc.h, bc.w), pt(1, bc.c, 1, 1);
    const size_t size = sz(g.size()), ch = sz(g.c);
    const std::vector<float> x = random_floats(size, 20, -2.0, 3.0), dy = random_floats(size, 21),
                             gamma = random_floats(ch, 22, 0.5, 1.5), beta = random_floats(ch, 23),
                             mean0 = random_floats(ch, 24), var0 = random_floats(ch, 25, 0.5, 2.0);
    std::vector<double> y_ref(size), rm_ref = widen(mean0), rv_ref = widen(var0), sm_ref(ch),
                                     si_ref(ch), yi_ref(size), dx_ref(size), dg_ref(ch), db_ref(ch);
    ref::batchnorm_forward_training<double>(
        g, widen(x).data(), widen(gamma).data(), widen(beta).data(), momentum, epsilon,
        rm_ref.data(), rv_ref.data(), y_ref.data(), sm_ref.data(), si_ref.data());
    ref::batchnorm_forward_inference<double>(g, widen(x).data(), widen(gamma).data(),
                                             widen(beta).data(), widen(mean0).data(),
                                             widen(var0).data(), epsilon, yi_ref.data());
    DeviceBuffer<float> xd(x), dyd(dy), gd(gamma), bd(beta), m0d(mean0), v0d(var0);
    for (const Scaling& s : kScalings) {
      SCOPED_TRACE(name_of(s));
      const std::vector<float> y0 = prior_for(s, size, 26), dx0 = prior_for(s, size, 27),
                               dg0 = prior_for(s, ch, 28), db0 = prior_for(s, ch, 29);
      DeviceBuffer<float> yd(y0), yid(y0), rmd(mean0), rvd(var0), smd(ch), sid(ch), dxd(dx0),
          dgd(dg0), dbd(db0);
      ASSERT_TRUE(xd.ok() && dyd.ok() && yd.ok() && rmd.ok() && smd.ok() && dxd.ok() && dgd.ok());
      EXPECT_EQ(cudnnBatchNormalizationForwardTraining(
                    h.h, CUDNN_BATCHNORM_SPATIAL, &s.alpha, &s.beta, xt.d, xd.get(), xt.d, yd.get(),
                    pt.d, gd.get(), bd.get(), 1.0 - static_cast<double>(momentum), rmd.get(),
                    rvd.get(), static_cast<double>(epsilon), smd.get(), sid.get()),
                CUDNN_STATUS_SUCCESS);
      expect_close("y", yd.download(), blended(s, y_ref, y0));
      expect_close("running mean", rmd.download(), rm_ref);
      expect_close("running variance (unbiased batch variance)", rvd.download(), rv_ref);
      expect_close("saved mean", smd.download(), sm_ref);
      expect_close("saved inverse std", sid.download(), si_ref);

      EXPECT_EQ(cudnnBatchNormalizationForwardInference(h.h, CUDNN_BATCHNORM_SPATIAL, &s.alpha,
                                                        &s.beta, xt.d, xd.get(), xt.d, yid.get(),
                                                        pt.d, gd.get(), bd.get(), m0d.get(),
                                                        v0d.get(), static_cast<double>(epsilon)),
                CUDNN_STATUS_SUCCESS);
      expect_close("inference y", yid.download(), blended(s, yi_ref, y0));

      // The backward from the saved statistics, as the engine calls it; its reference gets
      // the same (float) statistics.
      const std::vector<float> sm = smd.download(), si = sid.download();
      ref::batchnorm_backward<double>(g, widen(x).data(), widen(dy).data(), widen(gamma).data(),
                                      widen(sm).data(), widen(si).data(), dx_ref.data(),
                                      dg_ref.data(), db_ref.data());
      EXPECT_EQ(cudnnBatchNormalizationBackward(
                    h.h, CUDNN_BATCHNORM_SPATIAL, &s.alpha, &s.beta, &s.alpha, &s.beta, xt.d,
                    xd.get(), xt.d, dyd.get(), xt.d, dxd.get(), pt.d, gd.get(), dgd.get(),
                    dbd.get(), CUDNN_BN_MIN_EPSILON, smd.get(), sid.get()),
                CUDNN_STATUS_SUCCESS);
      expect_close("dx", dxd.download(), blended(s, dx_ref, dx0));
      expect_close("dgamma", dgd.download(), blended(s, dg_ref, dg0));
      expect_close("dbeta", dbd.download(), blended(s, db_ref, db0));
    }
  }
}

// Without saved statistics the backward recomputes them from x with its own epsilon.
TEST(SimCudnnBatchNorm, BackwardWithoutSavedStatisticsRecomputesThem) {
  Handle h;
  const BnCase bc = kBnCases[0];
  const cnnk::BatchNormGeometry g = bc.geometry();
  Tensor xt(bc.n, bc.c, bc.h, bc.w), pt(1, bc.c, 1, 1);
  const size_t size = sz(g.size()), ch = sz(g.c);
  const std::vector<float> x = random_floats(size, 30), dy = random_floats(size, 31),
                           gamma = random_floats(ch, 32, 0.5, 1.5);
  const double epsilon = 1e-3;
  std::vector<double> rm(ch, 0.0), rv(ch, 1.0), y(size), mean(ch), invstd(ch), dx(size), dg(ch),
      db(ch);
  ref::batchnorm_forward_training<double>(
      g, widen(x).data(), widen(gamma).data(), std::vector<double>(ch, 0.0).data(), 0.9, epsilon,
      rm.data(), rv.data(), y.data(), mean.data(), invstd.data());
  ref::batchnorm_backward<double>(g, widen(x).data(), widen(dy).data(), widen(gamma).data(),
                                  mean.data(), invstd.data(), dx.data(), dg.data(), db.data());
  DeviceBuffer<float> xd(x), dyd(dy), gd(gamma), dxd(size), dgd(ch), dbd(ch);
  const float one = 1.0f, zero = 0.0f;
  ASSERT_EQ(
      cudnnBatchNormalizationBackward(h.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xt.d,
                                      xd.get(), xt.d, dyd.get(), xt.d, dxd.get(), pt.d, gd.get(),
                                      dgd.get(), dbd.get(), epsilon, nullptr, nullptr),
      CUDNN_STATUS_SUCCESS);
  expect_close("dx", dxd.download(), dx);
  expect_close("dgamma", dgd.download(), dg);
  expect_close("dbeta", dbd.download(), db);
}

// ---- Activations and softmax
// -------------------------------------------------------------------------

TEST(SimCudnnActivation, ForwardAndBackwardMatchTheReference) {
  Handle h;
  const ActivationGeometry g{2, 5, 7};
  Tensor t(2, 5, 7, 1);
  const size_t size = sz(g.size());
  const std::vector<float> x = test::cast_all<float>(test::away_from_zero(size, 40)),
                           dy = random_floats(size, 41);
  const std::pair<Activation, cudnnActivationMode_t> kinds[] = {
      {Activation::Relu, CUDNN_ACTIVATION_RELU},
      {Activation::Sigmoid, CUDNN_ACTIVATION_SIGMOID},
      {Activation::Tanh, CUDNN_ACTIVATION_TANH}};
  for (const auto& [a, mode] : kinds) {
    SCOPED_TRACE(activation_name(a));
    ActDesc act(mode);
    std::vector<double> y_ref(size), dx_ref(size);
    ref::activation_forward<double>(a, g, widen(x).data(), y_ref.data());
    // The reference's backward from the float y the forward stores, as on the device.
    const std::vector<float> y = test::cast_all<float>(y_ref);
    ref::activation_backward<double>(a, g, widen(y).data(), widen(dy).data(), dx_ref.data());
    DeviceBuffer<float> xd(x), yd_exact(y), dyd(dy);
    for (const Scaling& s : kScalings) {
      SCOPED_TRACE(name_of(s));
      const std::vector<float> y0 = prior_for(s, size, 42), dx0 = prior_for(s, size, 43);
      DeviceBuffer<float> yd(y0), dxd(dx0);
      ASSERT_TRUE(xd.ok() && yd_exact.ok() && dyd.ok() && yd.ok() && dxd.ok());
      EXPECT_EQ(cudnnActivationForward(h.h, act.d, &s.alpha, t.d, xd.get(), &s.beta, t.d, yd.get()),
                CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(cudnnActivationBackward(h.h, act.d, &s.alpha, t.d, yd_exact.get(), t.d, dyd.get(),
                                        t.d, xd.get(), &s.beta, t.d, dxd.get()),
                CUDNN_STATUS_SUCCESS);
      expect_close("y", yd.download(), blended(s, y_ref, y0));
      expect_close("dx", dxd.download(), blended(s, dx_ref, dx0));
    }
  }
}

// In place (x == y), as the engine runs an activation after a cuDNN convolution.
TEST(SimCudnnActivation, ForwardInPlace) {
  Handle h;
  const ActivationGeometry g{3, 2, 5};
  Tensor t(3, 2, 5, 1);
  const std::vector<float> x = random_floats(sz(g.size()), 44);
  std::vector<double> want(x.size());
  ref::activation_forward<double>(Activation::Tanh, g, widen(x).data(), want.data());
  ActDesc act(CUDNN_ACTIVATION_TANH);
  DeviceBuffer<float> xd(x);
  const float one = 1.0f, zero = 0.0f;
  ASSERT_EQ(cudnnActivationForward(h.h, act.d, &one, t.d, xd.get(), &zero, t.d, xd.get()),
            CUDNN_STATUS_SUCCESS);
  expect_close("y", xd.download(), want);
}

TEST(SimCudnnSoftmax, ForwardAndBackwardMatchTheReference) {
  Handle h;
  for (const ActivationGeometry& g : {ActivationGeometry{3, 5, 1}, ActivationGeometry{2, 4, 7}}) {
    SCOPED_TRACE("n " + std::to_string(g.n) + " c " + std::to_string(g.c) + " spatial " +
                 std::to_string(g.spatial));
    Tensor t(static_cast<int>(g.n), static_cast<int>(g.c), static_cast<int>(g.spatial), 1);
    const size_t size = sz(g.size());
    const std::vector<float> x = random_floats(size, 50, -4.0, 4.0), dy = random_floats(size, 51);
    std::vector<double> y_ref(size), dx_ref(size);
    ref::activation_forward<double>(Activation::Softmax, g, widen(x).data(), y_ref.data());
    const std::vector<float> y = test::cast_all<float>(y_ref);
    ref::activation_backward<double>(Activation::Softmax, g, widen(y).data(), widen(dy).data(),
                                     dx_ref.data());
    DeviceBuffer<float> xd(x), yd_exact(y), dyd(dy);
    for (const Scaling& s : kScalings) {
      SCOPED_TRACE(name_of(s));
      const std::vector<float> y0 = prior_for(s, size, 52), dx0 = prior_for(s, size, 53);
      DeviceBuffer<float> yd(y0), dxd(dx0);
      ASSERT_TRUE(xd.ok() && yd_exact.ok() && dyd.ok() && yd.ok() && dxd.ok());
      EXPECT_EQ(cudnnSoftmaxForward(h.h, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL,
                                    &s.alpha, t.d, xd.get(), &s.beta, t.d, yd.get()),
                CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(
          cudnnSoftmaxBackward(h.h, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &s.alpha,
                               t.d, yd_exact.get(), t.d, dyd.get(), &s.beta, t.d, dxd.get()),
          CUDNN_STATUS_SUCCESS);
      expect_close("y", yd.download(), blended(s, y_ref, y0));
      expect_close("dx", dxd.download(), blended(s, dx_ref, dx0));
    }
  }
}

// ---- The rules
// ------------------------------------------------------------------------------------------

// One convolution with device buffers for all of it, for the rule tests.
struct ConvSetup {
  cnnk::Conv2dGeometry g = conv_shapes()[0];
  Handle h;
  ConvDescs d{g};
  ConvAlgos algos = heuristics(h.h, g, d);
  std::vector<float> x = random_floats(sz(g.input_size()), 60);
  std::vector<float> w = random_floats(sz(g.filter_size()), 61);
  DeviceBuffer<float> xd{x}, wd{w}, yd{sz(g.output_size())};
  DeviceBuffer<char> ws{algos.fwd[0].memory};
  float one = 1.0f, zero = 0.0f;

  explicit ConvSetup(cudaStream_t stream = nullptr) : h(stream) {}

  cudnnStatus_t forward(const void* x_ptr, void* ws_ptr, size_t ws_bytes, void* y_ptr,
                        const float* alpha) {
    return cudnnConvolutionForward(h.h, alpha, d.x.d, x_ptr, d.w, wd.get(), d.conv,
                                   algos.fwd[0].algo, ws_ptr, ws_bytes, &zero, d.y.d, y_ptr);
  }
  cudnnStatus_t forward() { return forward(xd.get(), ws.get(), ws.size(), yd.get(), &one); }
  std::vector<double> reference(const std::vector<float>& input, double alpha) const {
    std::vector<double> y(sz(g.output_size()));
    ref::conv2d_forward<double>(g, widen(input).data(), widen(w).data(), nullptr, y.data());
    for (double& v : y) v *= alpha;
    return y;
  }
};

TEST(SimCudnnRules, WorkspaceSmallerThanTheAlgorithmNeedsIsRefused) {
  ConvSetup c;
  ASSERT_TRUE(c.ws.ok() && c.yd.ok());
  (void)last_error();
  EXPECT_EQ(c.forward(c.xd.get(), c.ws.get(), c.ws.size() - 1, c.yd.get(), &c.one),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_NE(last_error().find("workSpaceSizeInBytes"), std::string::npos);
  // Enough bytes claimed, but the memory is the host's.
  std::vector<char> host(c.ws.size());
  EXPECT_EQ(c.forward(c.xd.get(), host.data(), host.size(), c.yd.get(), &c.one),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_NE(last_error().find("workSpace is not device memory"), std::string::npos);
  // The lean algorithm needs none: no workspace at all is fine.
  EXPECT_EQ(cudnnConvolutionForward(c.h.h, &c.one, c.d.x.d, c.xd.get(), c.d.w, c.wd.get(), c.d.conv,
                                    c.algos.fwd[1].algo, nullptr, 0, &c.zero, c.d.y.d, c.yd.get()),
            CUDNN_STATUS_SUCCESS);
  // An algorithm the heuristics did not offer.
  EXPECT_EQ(cudnnConvolutionForward(c.h.h, &c.one, c.d.x.d, c.xd.get(), c.d.w, c.wd.get(), c.d.conv,
                                    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, c.ws.get(), c.ws.size(),
                                    &c.zero, c.d.y.d, c.yd.get()),
            CUDNN_STATUS_NOT_SUPPORTED);
  EXPECT_FALSE(last_error().empty());
  EXPECT_TRUE(last_error().empty()) << "reading the message clears it";
}

// Whatever the caller left in the workspace is destroyed by the call.
TEST(SimCudnnRules, WorkspaceIsOverwritten) {
  ConvSetup c;
  ASSERT_EQ(c.ws.fill_bytes(0), cudaSuccess);
  ASSERT_EQ(c.forward(), CUDNN_STATUS_SUCCESS);
  const std::vector<char> after = c.ws.download();
  ASSERT_EQ(after.size(), c.ws.size());
  for (size_t i = 0; i < after.size(); ++i)
    ASSERT_EQ(static_cast<unsigned char>(after[i]), 0xffu) << "byte " << i;
  expect_close("y", c.yd.download(), c.reference(c.x, 1.0));
}

TEST(SimCudnnRules, MemoryThatIsNotTheDevicesIsRefused) {
  ConvSetup c;
  (void)last_error();
  EXPECT_EQ(c.forward(c.x.data(), c.ws.get(), c.ws.size(), c.yd.get(), &c.one),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(last_error().rfind("cudnnConvolutionForward: x ", 0), 0u);
  // A device buffer one element short of the tensor.
  DeviceBuffer<float> short_y(sz(c.g.output_size()) - 1);
  EXPECT_EQ(c.forward(c.xd.get(), c.ws.get(), c.ws.size(), short_y.get(), &c.one),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_EQ(last_error().rfind("cudnnConvolutionForward: y ", 0), 0u);
  // Scaling factors are host values: a device pointer is refused.
  DeviceBuffer<float> alpha_on_device(std::vector<float>{1.0f});
  EXPECT_EQ(c.forward(c.xd.get(), c.ws.get(), c.ws.size(), c.yd.get(), alpha_on_device.get()),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_NE(last_error().find("host memory"), std::string::npos);
  EXPECT_EQ(c.forward(c.xd.get(), c.ws.get(), c.ws.size(), c.yd.get(), nullptr),
            CUDNN_STATUS_BAD_PARAM);
}

TEST(SimCudnnRules, DescriptorsThatDisagreeAreRefused) {
  ConvSetup c;
  (void)last_error();
  Tensor wrong_y(c.g.n, c.g.k, c.g.p + 1, c.g.q);
  EXPECT_EQ(cudnnConvolutionForward(c.h.h, &c.one, c.d.x.d, c.xd.get(), c.d.w, c.wd.get(), c.d.conv,
                                    c.algos.fwd[0].algo, c.ws.get(), c.ws.size(), &c.zero,
                                    wrong_y.d, c.yd.get()),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_NE(last_error().find("the convolution gives"), std::string::npos);
  Tensor wrong_c(c.g.n, c.g.c + 1, c.g.h, c.g.w);
  int n = 0;
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  EXPECT_EQ(cudnnGetConvolutionForwardAlgorithm_v7(c.h.h, wrong_c.d, c.d.w, c.d.conv, c.d.y.d,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
            CUDNN_STATUS_BAD_PARAM);
  // A descriptor created but never set.
  cudnnTensorDescriptor_t unset = nullptr;
  ASSERT_EQ(cudnnCreateTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnAddTensor(c.h.h, &c.one, unset, c.xd.get(), &c.one, c.d.x.d, c.xd.get()),
            CUDNN_STATUS_BAD_PARAM);
  EXPECT_NE(last_error().find("never set"), std::string::npos);
  cudnnDestroyTensorDescriptor(unset);
  // A bias that does not broadcast.
  Tensor bias(1, c.g.k + 1, 1, 1);
  EXPECT_EQ(cudnnAddTensor(c.h.h, &c.one, bias.d, c.xd.get(), &c.one, c.d.y.d, c.yd.get()),
            CUDNN_STATUS_BAD_PARAM);
  (void)last_error();
}

// What the engine never asks for is refused, not guessed at.
TEST(SimCudnnRules, WhatIsNotModelledIsNotSupported) {
  cudnnTensorDescriptor_t t = nullptr;
  ASSERT_EQ(cudnnCreateTensorDescriptor(&t), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 3, 4),
            CUDNN_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, 2, 3, 4),
            CUDNN_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, -2, 3, 4),
            CUDNN_STATUS_BAD_PARAM);
  cudnnDestroyTensorDescriptor(t);
  cudnnConvolutionDescriptor_t conv = nullptr;
  ASSERT_EQ(cudnnCreateConvolutionDescriptor(&conv), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(
      cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CONVOLUTION, CUDNN_DATA_FLOAT),
      CUDNN_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(cudnnSetConvolution2dDescriptor(conv, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT),
            CUDNN_STATUS_BAD_PARAM);
  cudnnDestroyConvolutionDescriptor(conv);
  cudnnActivationDescriptor_t act = nullptr;
  ASSERT_EQ(cudnnCreateActivationDescriptor(&act), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetActivationDescriptor(act, CUDNN_ACTIVATION_ELU, CUDNN_NOT_PROPAGATE_NAN, 1.0),
            CUDNN_STATUS_NOT_SUPPORTED);
  cudnnDestroyActivationDescriptor(act);
  Handle h;
  Tensor x(1, 2, 3, 1);
  DeviceBuffer<float> xd(6), yd(6);
  const float one = 1.0f, zero = 0.0f;
  EXPECT_EQ(cudnnSoftmaxForward(h.h, CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_CHANNEL, &one, x.d,
                                xd.get(), &zero, x.d, yd.get()),
            CUDNN_STATUS_NOT_SUPPORTED);
  // Destroying nothing is fine.
  EXPECT_EQ(cudnnDestroyTensorDescriptor(nullptr), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnDestroyFilterDescriptor(nullptr), CUDNN_STATUS_SUCCESS);
  (void)last_error();
}

// A captured call runs at each replay, with the scaling it was given at the call (not what
// the host variable holds later), on whatever the device buffers hold at the replay, with
// descriptors destroyed since.
TEST(SimCudnnRules, CaptureRecordsTheCallWithItsValues) {
  cudaStream_t stream = nullptr;
  CNN_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraphExec_t exec = nullptr;
  std::vector<float> x2;
  {
    ConvSetup c(stream);
    x2 = random_floats(c.x.size(), 62);
    CNN_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    float alpha = 2.0f;
    {
      ConvDescs d(c.g);  // gone before the replay
      EXPECT_EQ(cudnnConvolutionForward(c.h.h, &alpha, d.x.d, c.xd.get(), d.w, c.wd.get(), d.conv,
                                        c.algos.fwd[0].algo, c.ws.get(), c.ws.size(), &c.zero,
                                        d.y.d, c.yd.get()),
                CUDNN_STATUS_SUCCESS);
    }
    alpha = 100.0f;
    cudaGraph_t graph = nullptr;
    CNN_CUDA_OK(cudaStreamEndCapture(stream, &graph));
    for (const float v : c.yd.download()) ASSERT_TRUE(std::isnan(v)) << "ran during the capture";
    CNN_CUDA_OK(cudaGraphInstantiate(&exec, graph));
    CNN_CUDA_OK(cudaGraphDestroy(graph));
    CNN_CUDA_OK(cudaGraphLaunch(exec, stream));
    expect_close("y at the first replay", c.yd.download(), c.reference(c.x, 2.0));
    ASSERT_EQ(c.xd.upload(x2), cudaSuccess);
    CNN_CUDA_OK(cudaGraphLaunch(exec, stream));
    expect_close("y at the second replay", c.yd.download(), c.reference(x2, 2.0));
  }
  // The buffers are freed now: a replay reports it instead of touching freed memory.
  EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  CNN_CUDA_OK(cudaGraphExecDestroy(exec));
  CNN_CUDA_OK(cudaStreamDestroy(stream));
}

// A handle never pointed at the captured stream runs its work at once, outside the graph:
// what a missing cudnnSetStream does to a captured step.
TEST(SimCudnnRules, HandleOnAnotherStreamIsNotCaptured) {
  cudaStream_t stream = nullptr;
  CNN_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  {
    ConvSetup c;  // the handle's stream is the default one
    CNN_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    EXPECT_EQ(c.forward(), CUDNN_STATUS_SUCCESS);
    cudaGraph_t graph = nullptr;
    CNN_CUDA_OK(cudaStreamEndCapture(stream, &graph));
    expect_close("y, computed at the call", c.yd.download(), c.reference(c.x, 1.0));
    CNN_CUDA_OK(cudaGraphDestroy(graph));
  }
  CNN_CUDA_OK(cudaStreamDestroy(stream));
}

// Work the stream refuses (a destroyed stream) fails the call with an execution status.
TEST(SimCudnnRules, StreamThatRefusesTheWorkFailsTheCall) {
  cudaStream_t stream = nullptr;
  CNN_CUDA_OK(cudaStreamCreate(&stream));
  Handle h(stream);
  CNN_CUDA_OK(cudaStreamDestroy(stream));
  Tensor t(1, 2, 3, 1);
  ActDesc act(CUDNN_ACTIVATION_RELU);
  DeviceBuffer<float> xd(6), yd(6);
  const float one = 1.0f, zero = 0.0f;
  EXPECT_EQ(cudnnActivationForward(h.h, act.d, &one, t.d, xd.get(), &zero, t.d, yd.get()),
            CUDNN_STATUS_EXECUTION_FAILED);
  EXPECT_NE(last_error().find("the stream refused the work"), std::string::npos);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
}

}  // namespace
}  // namespace cnn
