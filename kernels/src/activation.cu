#include "activation_math.cuh"
#include "cnnk/activation.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using act_detail::Linear;
using act_detail::Relu;
using act_detail::Sigmoid;
using act_detail::Tanh;

// Grid-stride loops: one launch shape serves any size. No __restrict__: the backend runs
// the forward in place (x == y), and the backward's dx may share a buffer with its inputs.
template <class F>
__global__ void __launch_bounds__(detail::kThreads)
    forward_kernel(F f, int64_t size, const float* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < size;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = f.fwd(x[i]);
}

template <class F>
__global__ void __launch_bounds__(detail::kThreads)
    backward_kernel(F f, int64_t size, const float* y, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < size;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = f.bwd(y[i], dy[i]);
}

template <class F>
cudaError_t launch(F f, bool forward, int64_t size, const float* a, const float* b, float* out,
                   cudaStream_t stream) {
  if (size == 0) return cudaSuccess;
  if (forward)
    detail::launch(forward_kernel<F>, detail::grid_for(size), detail::kThreads, 0, stream, f, size,
                   a, out);
  else
    detail::launch(backward_kernel<F>, detail::grid_for(size), detail::kThreads, 0, stream, f, size,
                   a, b, out);
  return cudaGetLastError();
}

template <class... Args>
cudaError_t dispatch(ActKind kind, Args... args) {
  switch (kind) {
    case ActKind::Relu:
      return launch(Relu{}, args...);
    case ActKind::Sigmoid:
      return launch(Sigmoid{}, args...);
    case ActKind::Tanh:
      return launch(Tanh{}, args...);
    case ActKind::Linear:
      return launch(Linear{}, args...);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t activation_forward(ActKind kind, int64_t size, const float* x, float* y,
                               cudaStream_t stream) {
  return dispatch(kind, true, size, x, static_cast<const float*>(nullptr), y, stream);
}

cudaError_t activation_backward(ActKind kind, int64_t size, const float* y, const float* dy,
                                float* dx, cudaStream_t stream) {
  return dispatch(kind, false, size, y, dy, dx, stream);
}

}  // namespace cnnk
