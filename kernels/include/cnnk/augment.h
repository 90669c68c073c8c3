// Data augmentation of a batch of NCHW images, per sample: a random horizontal flip and a
// random translation by up to max_shift pixels in each direction, the uncovered border
// filled with zeros. The draws are a pure function of (seed, sample), shared by the CPU
// reference (engine/ops/augment) and the CUDA kernel, so both produce the same bits.
#pragma once

#include <cstdint>

#include "cnnk/hd.h"
#include "cnnk/random.h"
#include "cnnk/step.h"

#if __has_include(<cuda_runtime_api.h>)
#include <cuda_runtime_api.h>
#define CNNK_AUGMENT_HAS_LAUNCHER 1
#endif

namespace cnnk {

struct AugmentGeometry {
  int n = 0, c = 0, h = 0, w = 0;
  bool flip = false;  // mirror left-right with probability 1/2
  int max_shift = 0;  // translate by dy, dx uniform in [-max_shift, max_shift]
  CNNK_HD int64_t size() const { return int64_t(n) * c * h * w; }
};

// What one sample gets: y[i, j] = x'[i - dy, j - dx], where x' is x mirrored when `flip`
// (x'[i, j] = x[i, w - 1 - j]), and positions outside the image read as zero.
struct AugmentDraw {
  bool flip = false;
  int dy = 0, dx = 0;
};

// Sample `sample` draws three numbers, cnnk::uniform01(seed, 3 * sample + k) for k = 0
// (flip when < 1/2), 1 (dy) and 2 (dx); a shift is floor(u * (2 * max_shift + 1)) -
// max_shift, clamped so that rounding can never reach 2 * max_shift + 1. An option that
// is off leaves its draw unused, so turning on the flip does not change the shifts.
CNNK_HD AugmentDraw augment_draw(const AugmentGeometry& g, uint64_t seed, int64_t sample) {
  AugmentDraw d;
  const uint64_t base = 3ull * static_cast<uint64_t>(sample);
  d.flip = g.flip && uniform01(seed, base) < 0.5f;
  if (g.max_shift > 0) {
    const int span = 2 * g.max_shift + 1;
    int a = static_cast<int>(uniform01(seed, base + 1) * static_cast<float>(span));
    int b = static_cast<int>(uniform01(seed, base + 2) * static_cast<float>(span));
    a = a < span - 1 ? a : span - 1;
    b = b < span - 1 ? b : span - 1;
    d.dy = a - g.max_shift;
    d.dx = b - g.max_shift;
  }
  return d;
}

// The source index of output element (i, j) of one image plane under draw d, or -1 when
// it falls outside the image (the output is zero there).
CNNK_HD int64_t augment_source(const AugmentGeometry& g, const AugmentDraw& d, int i, int j) {
  const int si = i - d.dy;
  int sj = j - d.dx;
  if (si < 0 || si >= g.h || sj < 0 || sj >= g.w) return -1;
  if (d.flip) sj = g.w - 1 - sj;
  return int64_t(si) * g.w + sj;
}

#ifdef CNNK_AUGMENT_HAS_LAUNCHER
// y = augment(x) for the whole batch with the draws of seed.value() (whose step may be
// Live, read when the kernel runs); y must not alias x. Assigns every element of y.
cudaError_t augment(const AugmentGeometry& g, StepSeed seed, const float* x, float* y,
                    cudaStream_t stream);
#endif

}  // namespace cnnk
