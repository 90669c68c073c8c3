// Conv2D reference: the oracle. Plain loops over the definition in cnnk/geometry.h,
// double accumulation, every output assigned.
#include <cstdint>
#include <vector>

#include "engine/ops/channel_sums.h"
#include "engine/ops/conv2d/conv2d.h"

namespace cnn::ref {
namespace {

int64_t x_index(const cnnk::Conv2dGeometry& g, int n, int c, int h, int w) {
  return ((static_cast<int64_t>(n) * g.c + c) * g.h + h) * g.w + w;
}
int64_t y_index(const cnnk::Conv2dGeometry& g, int n, int k, int p, int q) {
  return ((static_cast<int64_t>(n) * g.k + k) * g.p + p) * g.q + q;
}
int64_t w_index(const cnnk::Conv2dGeometry& g, int k, int c, int r, int s) {
  return ((static_cast<int64_t>(k) * g.c + c) * g.r + r) * g.s + s;
}
// Input row and column read by output (p, q) through filter tap (r, s).
int in_row(const cnnk::Conv2dGeometry& g, int p, int r) {
  return p * g.stride_h - g.pad_top + r * g.dil_h;
}
int in_col(const cnnk::Conv2dGeometry& g, int q, int s) {
  return q * g.stride_w - g.pad_left + s * g.dil_w;
}
bool inside(const cnnk::Conv2dGeometry& g, int h, int w) {
  return h >= 0 && h < g.h && w >= 0 && w < g.w;
}

}  // namespace

template <class T>
void conv2d_forward(const cnnk::Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y) {
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int p = 0; p < g.p; ++p)
        for (int q = 0; q < g.q; ++q) {
          double acc = b ? static_cast<double>(b[k]) : 0.0;
          for (int c = 0; c < g.c; ++c)
            for (int r = 0; r < g.r; ++r)
              for (int s = 0; s < g.s; ++s) {
                const int ih = in_row(g, p, r), iw = in_col(g, q, s);
                if (!inside(g, ih, iw)) continue;
                acc += static_cast<double>(x[x_index(g, n, c, ih, iw)]) *
                       static_cast<double>(w[w_index(g, k, c, r, s)]);
              }
          y[y_index(g, n, k, p, q)] = static_cast<T>(acc);
        }
}

// Scatter form of the transpose: every (output, tap) pair adds its product to the input
// position it read in the forward pass.
template <class T>
void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const T* dy, const T* w, T* dx) {
  std::vector<double> acc(static_cast<size_t>(g.input_size()), 0.0);
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int p = 0; p < g.p; ++p)
        for (int q = 0; q < g.q; ++q) {
          const double d = static_cast<double>(dy[y_index(g, n, k, p, q)]);
          for (int c = 0; c < g.c; ++c)
            for (int r = 0; r < g.r; ++r)
              for (int s = 0; s < g.s; ++s) {
                const int ih = in_row(g, p, r), iw = in_col(g, q, s);
                if (!inside(g, ih, iw)) continue;
                acc[static_cast<size_t>(x_index(g, n, c, ih, iw))] +=
                    d * static_cast<double>(w[w_index(g, k, c, r, s)]);
              }
        }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<T>(acc[i]);
}

template <class T>
void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const T* x, const T* dy, T* dw, T* db) {
  for (int k = 0; k < g.k; ++k)
    for (int c = 0; c < g.c; ++c)
      for (int r = 0; r < g.r; ++r)
        for (int s = 0; s < g.s; ++s) {
          double acc = 0.0;
          for (int n = 0; n < g.n; ++n)
            for (int p = 0; p < g.p; ++p)
              for (int q = 0; q < g.q; ++q) {
                const int ih = in_row(g, p, r), iw = in_col(g, q, s);
                if (!inside(g, ih, iw)) continue;
                acc += static_cast<double>(x[x_index(g, n, c, ih, iw)]) *
                       static_cast<double>(dy[y_index(g, n, k, p, q)]);
              }
          dw[w_index(g, k, c, r, s)] = static_cast<T>(acc);
        }
  if (!db) return;
  for (int k = 0; k < g.k; ++k) db[k] = static_cast<T>(channel_sum(dy, g.n, g.k, g.p * g.q, k));
}

#define CNN_INSTANTIATE_CONV2D_REF(T)                                                             \
  template void conv2d_forward<T>(const cnnk::Conv2dGeometry&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_data<T>(const cnnk::Conv2dGeometry&, const T*, const T*, T*);     \
  template void conv2d_backward_filter<T>(const cnnk::Conv2dGeometry&, const T*, const T*, T*, T*);
CNN_INSTANTIATE_CONV2D_REF(float)
CNN_INSTANTIATE_CONV2D_REF(double)
#undef CNN_INSTANTIATE_CONV2D_REF

}  // namespace cnn::ref
