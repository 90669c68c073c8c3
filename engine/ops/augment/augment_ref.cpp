// The augmentation reference: plain loops over samples, channels and pixels.
#include "engine/core/error.h"
#include "engine/ops/augment/augment.h"

namespace cnn::ref {

void augment(const cnnk::AugmentGeometry& g, uint64_t seed, const float* x, float* y) {
  CNN_CHECK(g.n >= 0 && g.c >= 0 && g.h >= 0 && g.w >= 0 && g.max_shift >= 0, ConfigError,
            "augmentation of a [{}, {}, {}, {}] batch with shift {}", g.n, g.c, g.h, g.w,
            g.max_shift);
  CNN_CHECK(g.size() == 0 || x != y, Error, "augmentation cannot run in place");
  const int64_t plane = int64_t(g.h) * g.w;
  for (int n = 0; n < g.n; ++n) {
    const cnnk::AugmentDraw d = cnnk::augment_draw(g, seed, n);
    for (int c = 0; c < g.c; ++c) {
      const float* src = x + (int64_t(n) * g.c + c) * plane;
      float* dst = y + (int64_t(n) * g.c + c) * plane;
      for (int i = 0; i < g.h; ++i)
        for (int j = 0; j < g.w; ++j) {
          const int64_t s = cnnk::augment_source(g, d, i, j);
          dst[int64_t(i) * g.w + j] = s < 0 ? 0.0f : src[s];
        }
    }
  }
}

}  // namespace cnn::ref
