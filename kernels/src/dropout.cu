// Inverted dropout and spatial dropout with the masks of cnn::ref::dropout_*
// (dropout_ref.cpp): element i is kept when cnnk::uniform01(seed, counter) >= rate, with
// counter = i, or i / spatial (the n * c channel index) for spatial dropout; a kept
// element's mask is 1 / (1 - rate), computed in float on the host exactly as the
// reference computes it. The draw is a pure function of (seed, counter): the masks are
// bit-identical to the reference's whatever the launch shape.
#include "cnnk/dropout.h"
#include "cnnk/random.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::global_index;
using detail::global_stride;

// y may alias x (each thread reads x[i] before writing y[i]): no __restrict__ on them.
__global__ void __launch_bounds__(detail::kThreads)
    dropout_forward_kernel(int64_t size, int64_t spatial, bool per_channel, float rate, float scale,
                           StepSeed step_seed, const float* x, float* y, float* __restrict__ mask) {
  const uint64_t seed = step_seed.value();
  for (int64_t i = global_index(); i < size; i += global_stride()) {
    const uint64_t counter = static_cast<uint64_t>(per_channel ? i / spatial : i);
    // float >= float is the reference's comparison in double of the same two floats.
    const float mk = uniform01(seed, counter) >= rate ? scale : 0.f;
    mask[i] = mk;
    y[i] = x[i] * mk;
  }
}

// dx may alias dy: no __restrict__ on them.
__global__ void __launch_bounds__(detail::kThreads)
    dropout_backward_kernel(int64_t size, const float* __restrict__ mask, const float* dy,
                            float* dx) {
  for (int64_t i = global_index(); i < size; i += global_stride()) dx[i] = dy[i] * mask[i];
}

}  // namespace

// rate outside [0, 1) (or NaN) is refused with cudaErrorInvalidValue, where the reference
// throws; nothing is launched then.
cudaError_t dropout_forward(const DropoutGeometry& g, float rate, StepSeed seed, const float* x,
                            float* y, float* mask, cudaStream_t stream) {
  if (!(rate >= 0.f && rate < 1.f)) return cudaErrorInvalidValue;
  const int64_t size = g.size();
  if (size <= 0) return cudaSuccess;
  const float scale = 1.f / (1.f - rate);  // as the reference: T(1) / (T(1) - rate)
  const int64_t spatial = g.spatial > 0 ? g.spatial : 1;
  detail::launch(dropout_forward_kernel, detail::grid_for(size), detail::kThreads, 0, stream, size,
                 spatial, g.per_channel, rate, scale, seed, x, y, mask);
  return cudaGetLastError();
}

cudaError_t dropout_backward(const DropoutGeometry& g, const float* mask, const float* dy,
                             float* dx, cudaStream_t stream) {
  const int64_t size = g.size();
  if (size <= 0) return cudaSuccess;
  detail::launch(dropout_backward_kernel, detail::grid_for(size), detail::kThreads, 0, stream, size,
                 mask, dy, dx);
  return cudaGetLastError();
}

}  // namespace cnnk
