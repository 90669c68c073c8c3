// Max pooling on the CPU backend's fast path, for windows that do not overlap (stride at
// least the pool size, as in every model of the zoo). The reference walks each window
// through general helpers and sums the gradient of every input in a double buffer, since
// windows may overlap; here each input belongs to at most one window, so the forward
// reads each window once and the backward writes the gradient straight to the window's
// first maximum (for 2x2 windows, each input's gradient in one pass, zeros included).
// Both choose the maximum by the reference's own rule, so the bits are the same.
#include <algorithm>
#include <cstdint>
#include <cstring>

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

// The common case, 2x2 windows at stride 2 that all lie inside the map ("valid" pooling),
// a pair of rows at a time. The window's first maximum in row-major order, by the
// reference's rule (a later value replaces the best only when greater), is chosen with
// selections rather than branches, so that the loops over a row vectorize: on data
// without ties the comparisons go either way at random, and mispredicted branches would
// cost more than the rest of the pass.
bool all_inside_2x2(const cnnk::Pool2dGeometry& g) {
  return g.window_h == 2 && g.window_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
         g.pad_top == 0 && g.pad_left == 0 && 2 * g.p <= g.h && 2 * g.q <= g.w;
}

// A window's values in row-major order are a, b (top row), c, d (bottom row). Its first
// maximum: a, unless b > a; that, unless c is greater; that, unless d is greater.
void max_pool_2x2_rows(const float* top, const float* bottom, int q_count, float* out) {
  for (int q = 0; q < q_count; ++q) {
    const float a = top[2 * q], b = top[2 * q + 1], c = bottom[2 * q], d = bottom[2 * q + 1];
    const float ab = b > a ? b : a, abc = c > ab ? c : ab;
    out[q] = d > abc ? d : abc;
  }
}

// v when take holds, else +0, by masking v's bits: the compiler turns a plain selection
// into a branch in the scalar loop that finishes a row (all of a 7- or 14-window row),
// and with random data that branch mispredicts half the time.
inline float only_if(bool take, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= 0u - static_cast<uint32_t>(take);
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// The gradient of both rows in one pass: the window's gradient at its first maximum, zero
// at the other three; zero in the last column when the width is odd.
void max_pool_2x2_rows_backward(const float* top, const float* bottom, const float* dy, int q_count,
                                int w, float* grad_top, float* grad_bottom) {
  for (int q = 0; q < q_count; ++q) {
    const float a = top[2 * q], b = top[2 * q + 1], c = bottom[2 * q], d = bottom[2 * q + 1];
    const float ab = b > a ? b : a, abc = c > ab ? c : ab;
    // The gradient passes from the last value to the first until one wins, through masks
    // rather than branches (see only_if).
    const float v = dy[q];
    grad_bottom[2 * q + 1] = only_if(d > abc, v);
    const float left_for_abc = only_if(!(d > abc), v);
    grad_bottom[2 * q] = only_if(c > ab, left_for_abc);
    const float left_for_ab = only_if(!(c > ab), left_for_abc);
    grad_top[2 * q + 1] = only_if(b > a, left_for_ab);
    grad_top[2 * q] = only_if(!(b > a), left_for_ab);
  }
  for (int c = 2 * q_count; c < w; ++c) grad_top[c] = grad_bottom[c] = 0.0f;
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
      for (int p = 0; p < g.p; ++p) {
        const float* top = map + static_cast<int64_t>(2 * p) * g.w;
        max_pool_2x2_rows(top, top + g.w, g.q, out + static_cast<int64_t>(p) * g.q);
      }
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
  for (int64_t m = 0; m < static_cast<int64_t>(g.n) * g.c; ++m) {
    const float* map = x + m * hw;
    const float* d = dy + m * pq;
    float* grad = dx + m * hw;
    if (all_inside_2x2(g)) {
      for (int p = 0; p < g.p; ++p) {
        const int64_t top = static_cast<int64_t>(2 * p) * g.w;
        max_pool_2x2_rows_backward(map + top, map + top + g.w, d + static_cast<int64_t>(p) * g.q,
                                   g.q, g.w, grad + top, grad + top + g.w);
      }
      std::fill(grad + static_cast<int64_t>(2 * g.p) * g.w, grad + hw, 0.0f);  // odd height
      continue;
    }
    std::fill(grad, grad + hw, 0.0f);
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
