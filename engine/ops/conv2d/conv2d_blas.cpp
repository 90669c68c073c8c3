// Conv2D on the CPU backend's fast path: im2col + OpenBLAS sgemm, one image at a time.
//
// The column matrix of one image is [C*R*S, P*Q] (row-major): row (c, r, s) holds, for
// every output position (p, q), the input value that tap (r, s) of channel c reads there
// (zero in the padding). Then, per image n:
//   forward          y_n[K, PQ]   = W[K, CRS] . col[CRS, PQ] (+ b)
//   backward data    col[CRS, PQ] = W^T . dy_n[K, PQ], then col2im adds col into dx_n
//   backward filter  dW[K, CRS]  += dy_n . col^T, db[k] += sum over PQ of dy_n[k]
#include <algorithm>
#include <cstdint>

#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/sgemm_rowmajor.h"

namespace cnn::blas {

using detail::sgemm;

namespace {

// A 1x1, stride-1, unpadded convolution reads the image itself as its column matrix.
bool col_is_input(const cnnk::Conv2dGeometry& g) {
  return g.r == 1 && g.s == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
         g.pad_left == 0 && g.p == g.h && g.q == g.w;
}

// The outputs o in [lo, hi) of an axis of `out` outputs whose input index
// o * stride + offset lies inside [0, in).
struct Range {
  int lo = 0, hi = 0;
};
Range inside_range(int out, int in, int stride, int offset) {
  Range r;
  r.lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  r.hi = in - offset > 0 ? (in - offset + stride - 1) / stride : 0;
  r.lo = std::min(r.lo, out);
  r.hi = std::max(std::min(r.hi, out), r.lo);
  return r;
}

// Visits every row (c, r, s) of the column matrix with its geometry: f(x_channel, col_row,
// row_offset, col_offset, rows, cols), where rows / cols are the in-bounds output ranges.
template <class F>
void for_each_col_row(const cnnk::Conv2dGeometry& g, F&& f) {
  const int64_t pq = static_cast<int64_t>(g.p) * g.q;
  const int64_t hw = static_cast<int64_t>(g.h) * g.w;
  for (int c = 0; c < g.c; ++c)
    for (int r = 0; r < g.r; ++r) {
      const int row_offset = r * g.dil_h - g.pad_top;
      const Range rows = inside_range(g.p, g.h, g.stride_h, row_offset);
      for (int s = 0; s < g.s; ++s) {
        const int col_offset = s * g.dil_w - g.pad_left;
        const Range cols = inside_range(g.q, g.w, g.stride_w, col_offset);
        const int64_t row = (static_cast<int64_t>(c) * g.r + r) * g.s + s;
        f(c * hw, row * pq, row_offset, col_offset, rows, cols);
      }
    }
}

void im2col(const cnnk::Conv2dGeometry& g, const float* x, float* col) {
  const int P = g.p, Q = g.q, W = g.w, sh = g.stride_h, sw = g.stride_w;
  for_each_col_row(g, [&](int64_t x_off, int64_t col_off, int row_offset, int col_offset,
                          Range rows, Range cols) {
    float* dst = col + col_off;
    std::fill(dst, dst + static_cast<int64_t>(rows.lo) * Q, 0.0f);
    for (int p = rows.lo; p < rows.hi; ++p) {
      float* d = dst + static_cast<int64_t>(p) * Q;
      const float* src = x + x_off + static_cast<int64_t>(p * sh + row_offset) * W + col_offset;
      std::fill(d, d + cols.lo, 0.0f);
      if (sw == 1) {
        std::copy(src + cols.lo, src + cols.hi, d + cols.lo);
      } else {
        for (int q = cols.lo; q < cols.hi; ++q) d[q] = src[q * sw];
      }
      std::fill(d + cols.hi, d + Q, 0.0f);
    }
    std::fill(dst + static_cast<int64_t>(rows.hi) * Q, dst + static_cast<int64_t>(P) * Q, 0.0f);
  });
}

// The transpose of im2col: dx (one image) = sum of the column entries that read it.
void col2im(const cnnk::Conv2dGeometry& g, const float* col, float* dx) {
  std::fill(dx, dx + static_cast<int64_t>(g.c) * g.h * g.w, 0.0f);
  const int Q = g.q, W = g.w, sh = g.stride_h, sw = g.stride_w;
  for_each_col_row(g, [&](int64_t x_off, int64_t col_off, int row_offset, int col_offset,
                          Range rows, Range cols) {
    for (int p = rows.lo; p < rows.hi; ++p) {
      const float* src = col + col_off + static_cast<int64_t>(p) * Q;
      float* d = dx + x_off + static_cast<int64_t>(p * sh + row_offset) * W + col_offset;
      if (sw == 1) {
        for (int q = cols.lo; q < cols.hi; ++q) d[q] += src[q];
      } else {
        for (int q = cols.lo; q < cols.hi; ++q) d[q * sw] += src[q];
      }
    }
  });
}

}  // namespace

size_t conv2d_col_elements(const cnnk::Conv2dGeometry& g) {
  if (col_is_input(g)) return 0;
  return static_cast<size_t>(g.c) * g.r * g.s * g.p * g.q;
}

void conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w, const float* b,
                    float* y, float* col) {
  const int pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t x_image = static_cast<int64_t>(g.c) * g.h * g.w;
  const int64_t y_image = static_cast<int64_t>(g.k) * pq;
  const bool direct = col_is_input(g);
  for (int n = 0; n < g.n; ++n) {
    const float* xn = x + n * x_image;
    float* yn = y + n * y_image;
    if (!direct) im2col(g, xn, col);
    if (b) {
      for (int k = 0; k < g.k; ++k) std::fill_n(yn + static_cast<int64_t>(k) * pq, pq, b[k]);
    }
    sgemm(false, false, g.k, pq, crs, w, crs, direct ? xn : col, pq, b ? 1.0f : 0.0f, yn, pq);
  }
}

void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                          float* col) {
  const int pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t x_image = static_cast<int64_t>(g.c) * g.h * g.w;
  const int64_t y_image = static_cast<int64_t>(g.k) * pq;
  const bool direct = col_is_input(g);
  for (int n = 0; n < g.n; ++n) {
    float* dxn = dx + n * x_image;
    sgemm(true, false, crs, pq, g.k, w, crs, dy + n * y_image, pq, 0.0f, direct ? dxn : col, pq);
    if (!direct) col2im(g, col, dxn);
  }
}

void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x, const float* dy,
                            float* dw, float* db, float* col) {
  const int pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t x_image = static_cast<int64_t>(g.c) * g.h * g.w;
  const int64_t y_image = static_cast<int64_t>(g.k) * pq;
  const bool direct = col_is_input(g);
  if (g.n == 0) std::fill(dw, dw + g.filter_size(), 0.0f);
  for (int n = 0; n < g.n; ++n) {
    const float* xn = x + n * x_image;
    if (!direct) im2col(g, xn, col);
    sgemm(false, true, g.k, crs, pq, dy + n * y_image, pq, direct ? xn : col, pq,
          n == 0 ? 0.0f : 1.0f, dw, crs);
  }
  if (!db) return;
  for (int k = 0; k < g.k; ++k) {
    double acc = 0.0;
    for (int n = 0; n < g.n; ++n) {
      const float* d = dy + n * y_image + static_cast<int64_t>(k) * pq;
      for (int i = 0; i < pq; ++i) acc += static_cast<double>(d[i]);
    }
    db[k] = static_cast<float>(acc);
  }
}

}  // namespace cnn::blas
