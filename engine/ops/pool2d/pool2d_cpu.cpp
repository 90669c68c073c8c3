// Max pooling on the CPU backend's fast path, for windows that do not overlap (stride at
// least the pool size, as in every model of the zoo). The reference walks each window
// through general helpers and sums the gradient of every input in a double buffer, since
// windows may overlap; here each input belongs to at most one window, so the forward
// reads each window once and the backward writes the gradient straight to the window's
// first maximum. Both choose the maximum by the reference's own rule, so the bits are
// the same.
#include <algorithm>
#include <cstdint>

#include "engine/ops/pool2d/pool2d.h"

namespace cnn::cpu {
namespace {

// The in-bounds rows or columns [lo, hi) of the window of output o along one axis.
struct Span {
  int lo, hi;
};
Span span(int o, int stride, int pad, int window, int size) {
  const int start = o * stride - pad;
  return {std::max(start, 0), std::min(start + window, size)};
}

// Offset in the map of the window's first maximum in row-major order (the reference's
// rule: a later value replaces the best only when greater), or -1 for an empty window.
int64_t first_max(const float* map, int w, Span rows, Span cols) {
  int64_t best = -1;
  for (int h = rows.lo; h < rows.hi; ++h)
    for (int c = cols.lo; c < cols.hi; ++c) {
      const int64_t i = static_cast<int64_t>(h) * w + c;
      if (best < 0 || map[i] > map[best]) best = i;
    }
  return best;
}

// The common case, 2x2 windows at stride 2 that all lie inside the map ("valid" pooling):
// the four values of a window are read straight from two rows. Returns the offset in the
// map of the window's first maximum, by the same rule as first_max.
bool all_inside_2x2(const cnnk::Pool2dGeometry& g) {
  return g.window_h == 2 && g.window_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
         g.pad_top == 0 && g.pad_left == 0 && 2 * g.p <= g.h && 2 * g.q <= g.w;
}
int64_t first_max_2x2(const float* map, int w, int p, int q) {
  const int64_t top = static_cast<int64_t>(2 * p) * w + 2 * q;
  int64_t best = top;
  if (map[top + 1] > map[best]) best = top + 1;
  if (map[top + w] > map[best]) best = top + w;
  if (map[top + w + 1] > map[best]) best = top + w + 1;
  return best;
}

}  // namespace

bool max_pool2d_disjoint(const cnnk::Pool2dGeometry& g) {
  return g.mode == cnnk::PoolMode::Max && g.stride_h >= g.window_h && g.stride_w >= g.window_w;
}

void max_pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w, pq = static_cast<int64_t>(g.p) * g.q;
  for (int64_t m = 0; m < static_cast<int64_t>(g.n) * g.c; ++m) {
    const float* map = x + m * hw;
    float* out = y + m * pq;
    if (all_inside_2x2(g)) {
      for (int p = 0; p < g.p; ++p)
        for (int q = 0; q < g.q; ++q)
          out[static_cast<int64_t>(p) * g.q + q] = map[first_max_2x2(map, g.w, p, q)];
      continue;
    }
    for (int p = 0; p < g.p; ++p) {
      const Span rows = span(p, g.stride_h, g.pad_top, g.window_h, g.h);
      for (int q = 0; q < g.q; ++q) {
        const int64_t best =
            first_max(map, g.w, rows, span(q, g.stride_w, g.pad_left, g.window_w, g.w));
        out[static_cast<int64_t>(p) * g.q + q] = best >= 0 ? map[best] : 0.0f;
      }
    }
  }
}

void max_pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float* dy,
                         float* dx) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w, pq = static_cast<int64_t>(g.p) * g.q;
  std::fill(dx, dx + static_cast<int64_t>(g.n) * g.c * hw, 0.0f);
  for (int64_t m = 0; m < static_cast<int64_t>(g.n) * g.c; ++m) {
    const float* map = x + m * hw;
    const float* d = dy + m * pq;
    float* grad = dx + m * hw;
    if (all_inside_2x2(g)) {
      for (int p = 0; p < g.p; ++p)
        for (int q = 0; q < g.q; ++q)
          grad[first_max_2x2(map, g.w, p, q)] = d[static_cast<int64_t>(p) * g.q + q];
      continue;
    }
    for (int p = 0; p < g.p; ++p) {
      const Span rows = span(p, g.stride_h, g.pad_top, g.window_h, g.h);
      for (int q = 0; q < g.q; ++q) {
        const int64_t best =
            first_max(map, g.w, rows, span(q, g.stride_w, g.pad_left, g.window_w, g.w));
        if (best >= 0) grad[best] = d[static_cast<int64_t>(p) * g.q + q];
      }
    }
  }
}

}  // namespace cnn::cpu
