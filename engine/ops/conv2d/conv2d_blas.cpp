// Conv2D on the CPU backend's fast path: im2col + OpenBLAS sgemm, one image at a time,
// the images split between threads.
//
// The column matrix of one image is [C*R*S, P*Q] (row-major): row (c, r, s) holds, for
// every output position (p, q), the input value that tap (r, s) of channel c reads there
// (zero in the padding). Then, per image n:
//   forward          y_n[K, PQ]   = W[K, CRS] . col[CRS, PQ] (+ b)
//   backward data    col[CRS, PQ] = W^T . dy_n[K, PQ], then col2im adds col into dx_n
//   backward filter  dW[K, CRS]  += dy_n . col^T, db[k] += sum over PQ of dy_n[k]
// Forward and backward data write each image's output from that image alone. The filter
// gradient sums over images: each of a fixed number of slices of the batch accumulates
// into its own buffer, and the slices are then added in order (see parallel.h).
#include <algorithm>
#include <cstdint>

#include "engine/core/parallel.h"
#include "engine/ops/channel_sums.h"
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

// The column matrix of one image, in floats (0 when the image itself serves as one).
size_t col_elements(const cnnk::Conv2dGeometry& g) {
  if (col_is_input(g)) return 0;
  return static_cast<size_t>(g.c) * g.r * g.s * g.p * g.q;
}

// Each thread's column matrix is padded to a multiple of 16 floats (64 bytes, a cache
// line): no two share a line when the buffer starts on one.
size_t col_stride(const cnnk::Conv2dGeometry& g) { return (col_elements(g) + 15) / 16 * 16; }

// The threads that may hold a column matrix at once: no more than the images (parallel_for
// runs min(threads, count) threads).
int column_threads(const cnnk::Conv2dGeometry& g, int threads) {
  return std::max(1, std::min(threads, g.n));
}

// At most this many partial filter gradients: enough slices for the threads of a common
// machine, few enough that adding them up costs little beside the products.
constexpr int kMaxFilterSlices = 8;

}  // namespace

int conv2d_filter_slices(const cnnk::Conv2dGeometry& g) {
  return std::max(1, std::min(g.n, kMaxFilterSlices));
}

size_t conv2d_workspace_elements(const cnnk::Conv2dGeometry& g, int threads) {
  return static_cast<size_t>(column_threads(g, threads)) * col_stride(g) +
         static_cast<size_t>(conv2d_filter_slices(g) - 1) * static_cast<size_t>(g.filter_size());
}

void conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w, const float* b,
                    float* y, float* workspace, int threads) {
  const int pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t x_image = static_cast<int64_t>(g.c) * g.h * g.w;
  const int64_t y_image = static_cast<int64_t>(g.k) * pq;
  const bool direct = col_is_input(g);
  const size_t stride = col_stride(g);
  parallel_for(threads, g.n, [&](int64_t n, int thread) {
    const float* xn = x + n * x_image;
    float* yn = y + n * y_image;
    float* col = direct ? nullptr : workspace + static_cast<size_t>(thread) * stride;
    if (!direct) im2col(g, xn, col);
    if (b) {
      for (int k = 0; k < g.k; ++k) std::fill_n(yn + static_cast<int64_t>(k) * pq, pq, b[k]);
    }
    sgemm(false, false, g.k, pq, crs, w, crs, direct ? xn : col, pq, b ? 1.0f : 0.0f, yn, pq);
  });
}

void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                          float* workspace, int threads) {
  const int pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t x_image = static_cast<int64_t>(g.c) * g.h * g.w;
  const int64_t y_image = static_cast<int64_t>(g.k) * pq;
  const bool direct = col_is_input(g);
  const size_t stride = col_stride(g);
  parallel_for(threads, g.n, [&](int64_t n, int thread) {
    float* dxn = dx + n * x_image;
    float* col = direct ? dxn : workspace + static_cast<size_t>(thread) * stride;
    sgemm(true, false, crs, pq, g.k, w, crs, dy + n * y_image, pq, 0.0f, col, pq);
    if (!direct) col2im(g, col, dxn);
  });
}

void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x, const float* dy,
                            float* dw, float* db, float* workspace, int threads) {
  const int pq = g.p * g.q, crs = g.c * g.r * g.s;
  const int64_t x_image = static_cast<int64_t>(g.c) * g.h * g.w;
  const int64_t y_image = static_cast<int64_t>(g.k) * pq;
  const int64_t filter = g.filter_size();
  const bool direct = col_is_input(g);
  const size_t stride = col_stride(g);
  const int slices = conv2d_filter_slices(g);
  float* partials = workspace + static_cast<size_t>(column_threads(g, threads)) * stride;
  if (g.n == 0) std::fill(dw, dw + filter, 0.0f);
  // Slice s holds images [s * n / slices, (s + 1) * n / slices), in order.
  parallel_for(threads, g.n == 0 ? 0 : slices, [&](int64_t s, int thread) {
    float* out = s == 0 ? dw : partials + (s - 1) * filter;
    float* col = direct ? nullptr : workspace + static_cast<size_t>(thread) * stride;
    const int64_t first = s * g.n / slices, end = (s + 1) * g.n / slices;
    for (int64_t n = first; n < end; ++n) {
      const float* xn = x + n * x_image;
      if (!direct) im2col(g, xn, col);
      sgemm(false, true, g.k, crs, pq, dy + n * y_image, pq, direct ? xn : col, pq,
            n == first ? 0.0f : 1.0f, out, crs);
    }
  });
  if (g.n > 0 && slices > 1) {
    constexpr int64_t kChunk = 4096;
    parallel_for(threads, (filter + kChunk - 1) / kChunk, [&](int64_t chunk, int) {
      const int64_t end = std::min(filter, (chunk + 1) * kChunk);
      for (int64_t e = chunk * kChunk; e < end; ++e) {
        float acc = dw[e];
        for (int s = 1; s < slices; ++s) acc += partials[(s - 1) * filter + e];
        dw[e] = acc;
      }
    });
  }
  if (!db) return;
  parallel_for(threads, g.k, [&](int64_t k, int) {
    db[k] = static_cast<float>(channel_sum(dy, g.n, g.k, pq, k));
  });
}

}  // namespace cnn::blas
