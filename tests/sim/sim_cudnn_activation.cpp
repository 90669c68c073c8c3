// The simulated cuDNN's activations (the library itself: sim_cudnn.cpp): ReLU, sigmoid and
// tanh elementwise, and softmax over the channels, forward and backward: the calls the
// engine's activation op makes, softmax included.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cudnn.h"
#include "sim_cudnn_internal.h"

using cnnk_sim::cudnn::alike;
using cnnk_sim::cudnn::Blend;
using cnnk_sim::cudnn::blend_of;
using cnnk_sim::cudnn::described;
using cnnk_sim::cudnn::Dims4;
using cnnk_sim::cudnn::floats;
using cnnk_sim::cudnn::host_scalars;
using cnnk_sim::cudnn::on_device;
using cnnk_sim::cudnn::Problem;
using cnnk_sim::cudnn::refuse;
using cnnk_sim::cudnn::Regions;
using cnnk_sim::cudnn::submit;
using cnnk_sim::cudnn::unsupported;
using cnnk_sim::cudnn::usable;

namespace {

double activate(cudnnActivationMode_t mode, double x) {
  switch (mode) {
    case CUDNN_ACTIVATION_RELU:
      return x > 0.0 ? x : 0.0;
    case CUDNN_ACTIVATION_SIGMOID:
      // exp of a non-positive argument only, so a large |x| does not overflow.
      return x >= 0.0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
    case CUDNN_ACTIVATION_TANH:
      return std::tanh(x);
    default:
      return std::numeric_limits<double>::quiet_NaN();  // refused at cudnnSetActivationDescriptor
  }
}

// dx from the forward's input x, output y and the incoming gradient dy.
double activate_grad(cudnnActivationMode_t mode, double x, double y, double dy) {
  switch (mode) {
    case CUDNN_ACTIVATION_RELU:
      return x > 0.0 ? dy : 0.0;
    case CUDNN_ACTIVATION_SIGMOID:
      return dy * y * (1.0 - y);
    case CUDNN_ACTIVATION_TANH:
      return dy * (1.0 - y * y);
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

// Softmax over the channels at every (n, h, w): CUDNN_SOFTMAX_MODE_CHANNEL.
template <class F>
void for_channel_columns(const Dims4& d, F f) {
  for (int n = 0; n < d.n; ++n)
    for (int h = 0; h < d.h; ++h)
      for (int w = 0; w < d.w; ++w) f(d.at(n, 0, h, w), int64_t(d.h) * d.w);
}

Problem softmax_kind(cudnnSoftmaxAlgorithm_t algo, cudnnSoftmaxMode_t mode) {
  if (algo != CUDNN_SOFTMAX_ACCURATE)
    return unsupported("softmax algorithm " + std::to_string(static_cast<int>(algo)) +
                       " (only CUDNN_SOFTMAX_ACCURATE)");
  if (mode != CUDNN_SOFTMAX_MODE_CHANNEL)
    return unsupported("softmax mode " + std::to_string(static_cast<int>(mode)) +
                       " (only CUDNN_SOFTMAX_MODE_CHANNEL)");
  return {};
}

}  // namespace

// In place (x == y) is allowed, as in cuDNN: each element is read before it is written.
cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle,
                                     cudnnActivationDescriptor_t activationDesc, const void* alpha,
                                     const cudnnTensorDescriptor_t xDesc, const void* x,
                                     const void* beta, const cudnnTensorDescriptor_t yDesc,
                                     void* y) {
  const char* call = "cudnnActivationForward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("activationDesc", activationDesc)) return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"yDesc", yDesc}})) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  Regions regions{{"x", x, d.bytes()}, {"y", y, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const cudnnActivationMode_t mode = activationDesc->mode;
  const float* xf = floats(x);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, mode, xf, yf, blend] {
    for (int64_t i = 0; i < d.count(); ++i)
      blend.store(yf + i, activate(mode, static_cast<double>(xf[i])));
  });
}

// ReLU's gradient is gated by x > 0, sigmoid's and tanh's are functions of y.
cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle,
                                      cudnnActivationDescriptor_t activationDesc, const void* alpha,
                                      const cudnnTensorDescriptor_t yDesc, const void* y,
                                      const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                      const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                      void* dx) {
  const char* call = "cudnnActivationBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("activationDesc", activationDesc)) return refuse(call, p);
  if (Problem p =
          alike({{"yDesc", yDesc}, {"dyDesc", dyDesc}, {"xDesc", xDesc}, {"dxDesc", dxDesc}}))
    return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  Regions regions{
      {"y", y, d.bytes()}, {"dy", dy, d.bytes()}, {"x", x, d.bytes()}, {"dx", dx, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const cudnnActivationMode_t mode = activationDesc->mode;
  const float *yf = floats(y), *dyf = floats(dy), *xf = floats(x);
  float* dxf = floats(dx);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, mode, yf, dyf, xf, dxf, blend] {
    for (int64_t i = 0; i < d.count(); ++i)
      blend.store(dxf + i, activate_grad(mode, static_cast<double>(xf[i]),
                                         static_cast<double>(yf[i]), static_cast<double>(dyf[i])));
  });
}

// y = exp(x - max) / sum exp(x - max) over the channels (the max keeps exp from overflowing).
cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                  cudnnSoftmaxMode_t mode, const void* alpha,
                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                  const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* call = "cudnnSoftmaxForward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = softmax_kind(algo, mode)) return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"yDesc", yDesc}})) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  Regions regions{{"x", x, d.bytes()}, {"y", y, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float* xf = floats(x);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, xf, yf, blend] {
    std::vector<double> e(static_cast<size_t>(d.c));
    for_channel_columns(d, [&](int64_t base, int64_t step) {
      double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
      for (int j = 0; j < d.c; ++j) mx = std::max(mx, static_cast<double>(xf[base + j * step]));
      for (int j = 0; j < d.c; ++j) {
        e[static_cast<size_t>(j)] = std::exp(static_cast<double>(xf[base + j * step]) - mx);
        sum += e[static_cast<size_t>(j)];
      }
      for (int j = 0; j < d.c; ++j)
        blend.store(yf + base + j * step, e[static_cast<size_t>(j)] / sum);
    });
  });
}

// dx = y * (dy - sum over the channels of dy * y).
cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                   cudnnSoftmaxMode_t mode, const void* alpha,
                                   const cudnnTensorDescriptor_t yDesc, const void* y,
                                   const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                   const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                   void* dx) {
  const char* call = "cudnnSoftmaxBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = softmax_kind(algo, mode)) return refuse(call, p);
  if (Problem p = alike({{"yDesc", yDesc}, {"dyDesc", dyDesc}, {"dxDesc", dxDesc}}))
    return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = yDesc->dims;
  Regions regions{{"y", y, d.bytes()}, {"dy", dy, d.bytes()}, {"dx", dx, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *yf = floats(y), *dyf = floats(dy);
  float* dxf = floats(dx);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, yf, dyf, dxf, blend] {
    std::vector<double> g(static_cast<size_t>(d.c));
    for_channel_columns(d, [&](int64_t base, int64_t step) {
      double dot = 0.0;
      for (int j = 0; j < d.c; ++j) {
        const double yj = static_cast<double>(yf[base + j * step]);
        dot += static_cast<double>(dyf[base + j * step]) * yj;
      }
      // All of a column's results before any is stored: dx may alias dy.
      for (int j = 0; j < d.c; ++j)
        g[static_cast<size_t>(j)] = static_cast<double>(yf[base + j * step]) *
                                    (static_cast<double>(dyf[base + j * step]) - dot);
      for (int j = 0; j < d.c; ++j) blend.store(dxf + base + j * step, g[static_cast<size_t>(j)]);
    });
  });
}
