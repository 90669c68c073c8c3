// Pool2D reference: plain loops over every window, double accumulation.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/ops/pool2d/pool2d.h"

namespace cnn::ref {
namespace {

// The in-bounds part [h0, h1) x [w0, w1) of the window of output (p, q).
struct Window {
  int h0, h1, w0, w1;
  int count() const { return (h1 - h0) * (w1 - w0); }
};
Window window_of(const cnnk::Pool2dGeometry& g, int p, int q) {
  const int top = p * g.stride_h - g.pad_top, left = q * g.stride_w - g.pad_left;
  Window win;
  win.h0 = top < 0 ? 0 : top;
  win.h1 = top + g.window_h > g.h ? g.h : top + g.window_h;
  win.w0 = left < 0 ? 0 : left;
  win.w1 = left + g.window_w > g.w ? g.w : left + g.window_w;
  if (win.h1 < win.h0) win.h1 = win.h0;
  if (win.w1 < win.w0) win.w1 = win.w0;
  return win;
}

// Index, inside one feature map, of the first maximum of the window in row-major order;
// -1 for an empty window.
template <class T>
int64_t argmax(const cnnk::Pool2dGeometry& g, const T* map, const Window& win) {
  int64_t best = -1;
  for (int h = win.h0; h < win.h1; ++h)
    for (int w = win.w0; w < win.w1; ++w) {
      const int64_t i = static_cast<int64_t>(h) * g.w + w;
      if (best < 0 || map[i] > map[best]) best = i;
    }
  return best;
}

}  // namespace

template <class T>
void pool2d_forward(const cnnk::Pool2dGeometry& g, const T* x, T* y) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w, pq = static_cast<int64_t>(g.p) * g.q;
  for (int64_t m = 0; m < static_cast<int64_t>(g.n) * g.c; ++m) {
    const T* map = x + m * hw;
    for (int p = 0; p < g.p; ++p)
      for (int q = 0; q < g.q; ++q) {
        const Window win = window_of(g, p, q);
        T out = static_cast<T>(0);  // an empty window (impossible from pool2d_geometry) gives 0
        if (g.mode == cnnk::PoolMode::Max) {
          const int64_t best = argmax(g, map, win);
          if (best >= 0) out = map[best];
        } else if (win.count() > 0) {
          double sum = 0.0;
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w)
              sum += static_cast<double>(map[static_cast<int64_t>(h) * g.w + w]);
          out = static_cast<T>(sum / win.count());
        }
        y[m * pq + static_cast<int64_t>(p) * g.q + q] = out;
      }
  }
}

template <class T>
void pool2d_backward(const cnnk::Pool2dGeometry& g, const T* x, const T* dy, T* dx) {
  const int64_t hw = static_cast<int64_t>(g.h) * g.w, pq = static_cast<int64_t>(g.p) * g.q;
  std::vector<double> acc(static_cast<size_t>(hw));
  for (int64_t m = 0; m < static_cast<int64_t>(g.n) * g.c; ++m) {
    const T* map = x + m * hw;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int p = 0; p < g.p; ++p)
      for (int q = 0; q < g.q; ++q) {
        const Window win = window_of(g, p, q);
        const double d = static_cast<double>(dy[m * pq + static_cast<int64_t>(p) * g.q + q]);
        if (g.mode == cnnk::PoolMode::Max) {
          const int64_t best = argmax(g, map, win);
          if (best >= 0) acc[static_cast<size_t>(best)] += d;
        } else if (win.count() > 0) {
          const double share = d / win.count();
          for (int h = win.h0; h < win.h1; ++h)
            for (int w = win.w0; w < win.w1; ++w)
              acc[static_cast<size_t>(static_cast<int64_t>(h) * g.w + w)] += share;
        }
      }
    for (int64_t i = 0; i < hw; ++i) dx[m * hw + i] = static_cast<T>(acc[static_cast<size_t>(i)]);
  }
}

template void pool2d_forward<float>(const cnnk::Pool2dGeometry&, const float*, float*);
template void pool2d_forward<double>(const cnnk::Pool2dGeometry&, const double*, double*);
template void pool2d_backward<float>(const cnnk::Pool2dGeometry&, const float*, const float*,
                                     float*);
template void pool2d_backward<double>(const cnnk::Pool2dGeometry&, const double*, const double*,
                                      double*);

}  // namespace cnn::ref
