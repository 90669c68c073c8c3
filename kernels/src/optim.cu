// Optimizer updates over one flat parameter buffer, one grid-stride launch each, with the
// formulas of cnn::ref::*_update (optim_update_ref.cpp) in the same float operations and
// order. Every operation is an explicitly rounded intrinsic (__fmul_rn, __fadd_rn, ...):
// nvcc may not contract them into fma, so each result is rounded exactly where the
// reference's (fma-free, SSE) float code rounds it, and the updates match it bit for bit.
#include "cnnk/optim.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::global_index;
using detail::global_stride;

// w -= lr * g
__global__ void __launch_bounds__(detail::kThreads)
    sgd_plain_kernel(int64_t n, Live<float> live_lr, float* __restrict__ w,
                     const float* __restrict__ g) {
  const float lr = live_lr.get();
  for (int64_t i = global_index(); i < n; i += global_stride())
    w[i] = __fsub_rn(w[i], __fmul_rn(lr, g[i]));
}

// v = momentum * v - lr * g; w += v, or with nesterov w += momentum * v - lr * g.
__global__ void __launch_bounds__(detail::kThreads)
    sgd_momentum_kernel(int64_t n, Live<float> live_lr, Live<float> live_momentum, bool nesterov,
                        float* __restrict__ w, const float* __restrict__ g,
                        float* __restrict__ velocity) {
  const float lr = live_lr.get(), momentum = live_momentum.get();
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float gi = g[i];
    const float v = __fsub_rn(__fmul_rn(momentum, velocity[i]), __fmul_rn(lr, gi));
    velocity[i] = v;
    const float delta = nesterov ? __fsub_rn(__fmul_rn(momentum, v), __fmul_rn(lr, gi)) : v;
    w[i] = __fadd_rn(w[i], delta);
  }
}

// m += (g - m) * (1 - b1); v += (g * g - v) * (1 - b2); w -= (m * step) / (sqrt(v) + eps).
__global__ void __launch_bounds__(detail::kThreads)
    adam_kernel(int64_t n, Live<float> live_step_size, Live<float> live_beta1, float one_minus_b2,
                float epsilon, float* __restrict__ w, const float* __restrict__ g,
                float* __restrict__ m, float* __restrict__ v) {
  const float step_size = live_step_size.get();
  const float one_minus_b1 = __fsub_rn(1.0f, live_beta1.get());  // as the reference
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float gi = g[i];
    const float mi = __fadd_rn(m[i], __fmul_rn(__fsub_rn(gi, m[i]), one_minus_b1));
    const float vi = __fadd_rn(v[i], __fmul_rn(__fsub_rn(__fmul_rn(gi, gi), v[i]), one_minus_b2));
    m[i] = mi;
    v[i] = vi;
    w[i] = __fsub_rn(w[i], __fdiv_rn(__fmul_rn(mi, step_size), __fadd_rn(__fsqrt_rn(vi), epsilon)));
  }
}

// v = rho * v + (1 - rho) * g * g; w -= lr * g / sqrt(v + eps).
__global__ void __launch_bounds__(detail::kThreads)
    rmsprop_kernel(int64_t n, Live<float> live_lr, float rho, float one_minus_rho, float epsilon,
                   float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v) {
  const float lr = live_lr.get();
  for (int64_t i = global_index(); i < n; i += global_stride()) {
    const float gi = g[i];
    const float vi = __fadd_rn(__fmul_rn(rho, v[i]), __fmul_rn(__fmul_rn(one_minus_rho, gi), gi));
    v[i] = vi;
    w[i] = __fsub_rn(w[i], __fdiv_rn(__fmul_rn(lr, gi), __fsqrt_rn(__fadd_rn(vi, epsilon))));
  }
}

}  // namespace

// Without a velocity it is w -= lr * g. The choice is made at launch, the momentum read
// when the kernel runs: a captured step keeps its kernel and reads each step's momentum.
cudaError_t sgd_update(int64_t n, Live<float> lr, Live<float> momentum, bool nesterov, float* w,
                       const float* g, float* velocity, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (velocity == nullptr)
    detail::launch(sgd_plain_kernel, detail::grid_for(n), detail::kThreads, 0, stream, n, lr, w, g);
  else
    detail::launch(sgd_momentum_kernel, detail::grid_for(n), detail::kThreads, 0, stream, n, lr,
                   momentum, nesterov, w, g, velocity);
  return cudaGetLastError();
}

// step_size = lr * sqrt(1 - b2^t) / (1 - b1^t), computed by the caller in double and
// rounded to float, as the reference's alpha.
cudaError_t adam_update(int64_t n, Live<float> step_size, Live<float> beta1, float beta2,
                        float epsilon, float* w, const float* g, float* m, float* v,
                        cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const float one_minus_b2 = 1.0f - beta2;  // as the reference
  detail::launch(adam_kernel, detail::grid_for(n), detail::kThreads, 0, stream, n, step_size, beta1,
                 one_minus_b2, epsilon, w, g, m, v);
  return cudaGetLastError();
}

cudaError_t rmsprop_update(int64_t n, Live<float> lr, float rho, float epsilon, float* w,
                           const float* g, float* v, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const float one_minus_rho = 1.0f - rho;  // as the reference
  detail::launch(rmsprop_kernel, detail::grid_for(n), detail::kThreads, 0, stream, n, lr, rho,
                 one_minus_rho, epsilon, w, g, v);
  return cudaGetLastError();
}

}  // namespace cnnk
