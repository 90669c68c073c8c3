// The simulated cuDNN's pooling (the library itself: sim_cudnn.cpp): max and average
// (padding excluded) pooling forward and backward, the modes the engine's pooling layers use
// (max also as MAX_DETERMINISTIC, which --deterministic asks for).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cnnk_sim_device.h"
#include "cudnn.h"
#include "sim_cudnn_internal.h"

using cnnk_sim::cudnn::alike;
using cnnk_sim::cudnn::bad;
using cnnk_sim::cudnn::Blend;
using cnnk_sim::cudnn::blend_of;
using cnnk_sim::cudnn::described;
using cnnk_sim::cudnn::Dims4;
using cnnk_sim::cudnn::floats;
using cnnk_sim::cudnn::host_scalars;
using cnnk_sim::cudnn::on_device;
using cnnk_sim::cudnn::PoolParams;
using cnnk_sim::cudnn::Problem;
using cnnk_sim::cudnn::refuse;
using cnnk_sim::cudnn::Regions;
using cnnk_sim::cudnn::submit;
using cnnk_sim::cudnn::usable;

namespace {

struct PoolShape {
  Dims4 x, y;
  PoolParams p;
};

// cudnnGetPooling2dForwardOutputDim's rule for one axis; 0 when the window does not fit.
int pool_out_dim(int in, int pad, int window, int stride) {
  const int span = in + 2 * pad - window;
  return span < 0 ? 0 : span / stride + 1;
}

// The output tensor(s) of a pooling agree with its input and window.
Problem pool_problem(const PoolShape& s, const char* y_name) {
  const Dims4 out{s.x.n, s.x.c, pool_out_dim(s.x.h, s.p.pad_h, s.p.window_h, s.p.stride_h),
                  pool_out_dim(s.x.w, s.p.pad_w, s.p.window_w, s.p.stride_w)};
  if (out.h == 0 || out.w == 0)
    return bad("the window is larger than the padded input " + s.x.str());
  if (s.y != out)
    return bad(std::string(y_name) + " is " + s.y.str() + " but the pooling gives " + out.str());
  return {};
}

// The in-bounds part [begin, end) of the window of output position `out` on one axis.
struct Span {
  int begin, end;
};
Span window(int out, int stride, int pad, int size, int extent) {
  const int start = out * stride - pad;
  return Span{std::max(start, 0), std::min(start + size, extent)};
}
Span window_rows(const PoolShape& s, int p) {
  return window(p, s.p.stride_h, s.p.pad_h, s.p.window_h, s.x.h);
}
Span window_cols(const PoolShape& s, int q) {
  return window(q, s.p.stride_w, s.p.pad_w, s.p.window_w, s.x.w);
}

// Both max modes compute the same here: on a GPU they differ in whether the backward is
// reproducible run to run (MAX's uses atomics), and the simulator adds in one order anyway.
bool is_max(cudnnPoolingMode_t mode) {
  return mode == CUDNN_POOLING_MAX || mode == CUDNN_POOLING_MAX_DETERMINISTIC;
}

// Max: padding never wins (and a NaN input does not either: CUDNN_NOT_PROPAGATE_NAN).
// Average: the mean of the in-bounds inputs (CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING).
std::vector<double> pool_forward(const PoolShape& s, const float* x) {
  std::vector<double> y(static_cast<size_t>(s.y.count()));
  for (int n = 0; n < s.y.n; ++n)
    for (int c = 0; c < s.y.c; ++c)
      for (int p = 0; p < s.y.h; ++p)
        for (int q = 0; q < s.y.w; ++q) {
          const Span rows = window_rows(s, p), cols = window_cols(s, q);
          double best = -std::numeric_limits<double>::infinity(), sum = 0.0;
          for (int h = rows.begin; h < rows.end; ++h)
            for (int w = cols.begin; w < cols.end; ++w) {
              const double v = static_cast<double>(x[s.x.at(n, c, h, w)]);
              if (v > best) best = v;
              sum += v;
            }
          const int count = (rows.end - rows.begin) * (cols.end - cols.begin);
          y[static_cast<size_t>(s.y.at(n, c, p, q))] = is_max(s.p.mode) ? best : sum / count;
        }
  return y;
}

// The gradient of a max window goes to one input equal to the forward's output y, which is
// how y enters the computation: a y that is not the forward's output leaves windows without
// a winner, reported as a failed kernel would be. Which of several equal inputs wins, cuDNN
// does not say; here the last in row-major order, where the native kernels and the
// reference take the first, so that whatever compares the two must hold for either. Average
// windows spread it evenly over their in-bounds inputs.
std::vector<double> pool_backward(const PoolShape& s, const float* y, const float* dy,
                                  const float* x, int64_t* orphans) {
  std::vector<double> dx(static_cast<size_t>(s.x.count()), 0.0);
  *orphans = 0;
  for (int n = 0; n < s.y.n; ++n)
    for (int c = 0; c < s.y.c; ++c)
      for (int p = 0; p < s.y.h; ++p)
        for (int q = 0; q < s.y.w; ++q) {
          const Span rows = window_rows(s, p), cols = window_cols(s, q);
          const int64_t o = s.y.at(n, c, p, q);
          const double g = static_cast<double>(dy[o]);
          if (is_max(s.p.mode)) {
            int64_t winner = -1;
            for (int h = rows.begin; h < rows.end; ++h)
              for (int w = cols.begin; w < cols.end; ++w)
                if (x[s.x.at(n, c, h, w)] == y[o]) winner = s.x.at(n, c, h, w);
            if (winner < 0)
              ++*orphans;
            else
              dx[static_cast<size_t>(winner)] += g;
          } else {
            const int count = (rows.end - rows.begin) * (cols.end - cols.begin);
            for (int h = rows.begin; h < rows.end; ++h)
              for (int w = cols.begin; w < cols.end; ++w)
                dx[static_cast<size_t>(s.x.at(n, c, h, w))] += g / count;
          }
        }
  return dx;
}

}  // namespace

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                  const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                  const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* call = "cudnnPoolingForward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("poolingDesc", poolingDesc)) return refuse(call, p);
  if (Problem p = described("xDesc", xDesc)) return refuse(call, p);
  if (Problem p = described("yDesc", yDesc)) return refuse(call, p);
  const PoolShape s{xDesc->dims, yDesc->dims, poolingDesc->params};
  if (Problem p = pool_problem(s, "yDesc")) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"x", x, s.x.bytes()}, {"y", y, s.y.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float* xf = floats(x);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions),
                [s, xf, yf, blend] { blend.store_all(pool_forward(s, xf), yf); });
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                   const void* alpha, const cudnnTensorDescriptor_t yDesc,
                                   const void* y, const cudnnTensorDescriptor_t dyDesc,
                                   const void* dy, const cudnnTensorDescriptor_t xDesc,
                                   const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* call = "cudnnPoolingBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("poolingDesc", poolingDesc)) return refuse(call, p);
  if (Problem p = alike({{"yDesc", yDesc}, {"dyDesc", dyDesc}})) return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"dxDesc", dxDesc}})) return refuse(call, p);
  const PoolShape s{xDesc->dims, yDesc->dims, poolingDesc->params};
  if (Problem p = pool_problem(s, "yDesc")) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"y", y, s.y.bytes()},
                  {"dy", dy, s.y.bytes()},
                  {"x", x, s.x.bytes()},
                  {"dx", dx, s.x.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *yf = floats(y), *dyf = floats(dy), *xf = floats(x);
  float* dxf = floats(dx);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [s, yf, dyf, xf, dxf, blend] {
    int64_t orphans = 0;
    blend.store_all(pool_backward(s, yf, dyf, xf, &orphans), dxf);
    if (orphans > 0)
      cnnk_sim::report(cudaErrorLaunchFailure,
                       "simulated cuDNN: cudnnPoolingBackward: " + std::to_string(orphans) +
                           " max-pooling windows have no input equal to their y: y must be the "
                           "output of the forward pass on this x");
  });
}
