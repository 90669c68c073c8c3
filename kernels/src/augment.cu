// Augmentation kernel: one thread per output element (grid-stride), the sample's draw
// recomputed from (seed, sample) by the same cnnk::augment_draw the CPU reference calls, so
// the output is bit-identical to cnn::ref::augment (a copy or a zero, no arithmetic).
#include "cnnk/augment.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::global_index;
using detail::global_stride;

__global__ void __launch_bounds__(detail::kThreads)
    augment_kernel(const AugmentGeometry g, StepSeed step_seed, const float* __restrict__ x,
                   float* __restrict__ y) {
  const uint64_t seed = step_seed.value();
  const int64_t plane = int64_t(g.h) * g.w;
  const int64_t size = g.size();
  for (int64_t e = global_index(); e < size; e += global_stride()) {
    const int64_t p = e / plane;  // (n, c) plane index
    const int64_t r = e - p * plane;
    const int i = static_cast<int>(r / g.w), j = static_cast<int>(r - int64_t(i) * g.w);
    const AugmentDraw d = augment_draw(g, seed, p / g.c);
    const int64_t s = augment_source(g, d, i, j);
    y[e] = s < 0 ? 0.0f : x[p * plane + s];
  }
}

}  // namespace

cudaError_t augment(const AugmentGeometry& g, StepSeed seed, const float* x, float* y,
                    cudaStream_t stream) {
  if (g.n < 0 || g.c < 0 || g.h < 0 || g.w < 0 || g.max_shift < 0) return cudaErrorInvalidValue;
  const int64_t size = g.size();
  if (size <= 0) return cudaSuccess;
  if (x == y) return cudaErrorInvalidValue;
  detail::launch(augment_kernel, detail::grid_for(size), detail::kThreads, 0, stream, g, seed, x,
                 y);
  return cudaGetLastError();
}

}  // namespace cnnk
