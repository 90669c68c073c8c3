// Max and average pooling with the semantics of cnn::ref::pool2d_* (pool2d_ref.cpp):
// the window of output (p, q) starts at (p * stride_h - pad_top, q * stride_w - pad_left)
// and is clipped to the input; max takes the first maximum in row-major order (the first
// in-bounds element always stands, later ones must be strictly greater, so padding never
// wins); average sums in double and divides by the in-bounds count.
//
// Forward: one thread per output. Backward, in general: one thread per input element,
// which gathers from every window that contains it, in the reference's (p, q) order and
// in double, so dx is assigned without atomics and is bit-identical to the reference's.
// Backward when the windows cannot overlap (the seed models' 2x2 pools of stride 2): one
// thread per window, which finds its maximum once and assigns its whole cell (see
// pool2d_backward_cells_kernel), where the gather found the same maximum once for every
// element of the window.
//
// Tensors below 2^30 elements (all of the seed models') are indexed in 32 bits and split
// into (map, row, column) by FastDivisor; larger ones take the 64-bit kernels.
#include "cnnk/pool2d.h"
#include "fast_divide.cuh"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::FastDivisor;
using detail::global_index;
using detail::global_stride;

// Below this many elements, in and out, the 32-bit kernels run (i + grid stride stays
// below 2^31).
constexpr int64_t kNarrowElements = int64_t(1) << 30;

// Resident blocks asked of the compiler (__launch_bounds__'s second argument), from
// scripts/kernel_resources.py on sm_90: with the block size alone, ptxas gave the general
// backward 48 registers and a 24-byte stack of spills, and the forward 48 registers (5
// blocks per SM). Asking 4 blocks lets the backward keep its 64 registers without a
// spill; asking 6 holds the others at 40 registers or fewer, also without one.
constexpr int kBackwardBlocks = 4;
constexpr int kBlocks = 6;

// The in-bounds part [h0, h1) x [w0, w1) of the window of output (p, q), as window_of in
// the reference (an empty window has h1 == h0 or w1 == w0).
struct Window {
  int h0, h1, w0, w1;
  __device__ int count() const { return (h1 - h0) * (w1 - w0); }
};

__device__ __forceinline__ Window window_of(const Pool2dGeometry& g, int p, int q) {
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

// Index inside the feature map of the window's first maximum (row-major); -1 when empty.
// The same comparisons as the reference, NaN included.
__device__ __forceinline__ int64_t argmax(const Pool2dGeometry& g, const float* __restrict__ map,
                                          const Window& win) {
  int64_t best = -1;
  float best_v = 0.f;
  for (int h = win.h0; h < win.h1; ++h)
    for (int w = win.w0; w < win.w1; ++w) {
      const int64_t i = int64_t(h) * g.w + w;
      const float v = map[i];
      if (best < 0 || v > best_v) {
        best = i;
        best_v = v;
      }
    }
  return best;
}

// Output (p, q) of the feature map `map`.
__device__ __forceinline__ float pool_output(const Pool2dGeometry& g, const float* __restrict__ map,
                                             int p, int q) {
  const Window win = window_of(g, p, q);
  float out = 0.f;  // an empty window gives 0, as the reference
  if (g.mode == PoolMode::Max) {
    const int64_t best = argmax(g, map, win);
    if (best >= 0) out = map[best];
  } else if (win.count() > 0) {
    double sum = 0.0;
    for (int h = win.h0; h < win.h1; ++h)
      for (int w = win.w0; w < win.w1; ++w) sum += static_cast<double>(map[int64_t(h) * g.w + w]);
    out = static_cast<float>(sum / win.count());
  }
  return out;
}

__global__ void __launch_bounds__(detail::kThreads, kBlocks)
    pool2d_forward_kernel(const Pool2dGeometry g, const float* __restrict__ x,
                          float* __restrict__ y) {
  const int64_t total = g.output_size();
  const int64_t hw = int64_t(g.h) * g.w;
  for (int64_t i = global_index(); i < total; i += global_stride()) {
    const int q = static_cast<int>(i % g.q);
    const int64_t t = i / g.q;
    const int p = static_cast<int>(t % g.p);
    const int64_t m = t / g.p;  // n * c + c
    y[i] = pool_output(g, x + m * hw, p, q);
  }
}

// Output i = (m * P + p) * Q + q of a narrow launch: its map m and place (p, q).
__device__ __forceinline__ void split_output(const FastDivisor& by_q, const FastDivisor& by_p,
                                             int i, int& m, int& p, int& q) {
  int t;
  by_q.divmod(i, t, q);
  by_p.divmod(t, m, p);
}

// The same below kNarrowElements, in 32 bits.
__global__ void __launch_bounds__(detail::kThreads, kBlocks)
    pool2d_forward_narrow_kernel(const Pool2dGeometry g, const FastDivisor by_q,
                                 const FastDivisor by_p, const float* __restrict__ x,
                                 float* __restrict__ y) {
  const int total = static_cast<int>(g.output_size()), hw = g.h * g.w;
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < total; i += stride) {
    int m, p, q;
    split_output(by_q, by_p, i, m, p, q);
    y[i] = pool_output(g, x + m * hw, p, q);
  }
}

// Outputs [lo, hi] along one axis whose (unclipped) window [o * stride - pad,
// o * stride - pad + window) contains input position `pos`; empty when lo > hi.
__device__ __forceinline__ void covering(int pos, int pad, int window, int stride, int outs,
                                         int& lo, int& hi) {
  // o * stride <= pos + pad  and  o * stride > pos + pad - window.
  hi = detail::floor_div(pos + pad, stride);
  lo = detail::floor_div(pos + pad - window, stride) + 1;
  if (lo < 0) lo = 0;
  if (hi > outs - 1) hi = outs - 1;
}

__global__ void __launch_bounds__(detail::kThreads, kBackwardBlocks)
    pool2d_backward_kernel(const Pool2dGeometry g, const float* __restrict__ x,
                           const float* __restrict__ dy, float* __restrict__ dx) {
  const int64_t total = g.input_size();
  const int64_t hw = int64_t(g.h) * g.w, pq = int64_t(g.p) * g.q;
  for (int64_t i = global_index(); i < total; i += global_stride()) {
    const int w = static_cast<int>(i % g.w);
    const int64_t t = i / g.w;
    const int h = static_cast<int>(t % g.h);
    const int64_t m = t / g.h;
    const float* map = x + m * hw;
    const float* dmap = dy + m * pq;
    const int64_t self = int64_t(h) * g.w + w;
    int p_lo, p_hi, q_lo, q_hi;
    covering(h, g.pad_top, g.window_h, g.stride_h, g.p, p_lo, p_hi);
    covering(w, g.pad_left, g.window_w, g.stride_w, g.q, q_lo, q_hi);
    double acc = 0.0;
    // The reference adds each window's share in (p, q) row-major order: so do we.
    for (int p = p_lo; p <= p_hi; ++p)
      for (int q = q_lo; q <= q_hi; ++q) {
        const Window win = window_of(g, p, q);
        const double d = static_cast<double>(dmap[int64_t(p) * g.q + q]);
        if (g.mode == PoolMode::Max) {
          if (argmax(g, map, win) == self) acc += d;
        } else {
          // win contains (h, w), so count() > 0.
          acc += d / win.count();
        }
      }
    dx[i] = static_cast<float>(acc);
  }
}

// Backward of windows that cannot overlap (stride >= window on both axes) and start at
// the top-left corner (no top or left padding). Cell (p, q) is input rows
// [p * sh, (p + 1) * sh) and columns [q * sw, (q + 1) * sw), the last row and column of
// cells reaching to the image's bottom and right edges, all clipped to the image: the
// cells partition the image, and each holds its window (clipped) whole. One thread per
// cell assigns every element of it: the window's share where the gather would add one
// (dy at the first maximum; dy / count over an average's window) and 0 elsewhere. Each
// element gets at most one share, and 0.0 + share in double is the share, so dx has the
// gather's bits.
bool cells_partition(const Pool2dGeometry& g) {
  return g.stride_h >= g.window_h && g.stride_w >= g.window_w && g.pad_top == 0 &&
         g.pad_left == 0 && g.p > 0 && g.q > 0;
}

__global__ void __launch_bounds__(detail::kThreads, kBlocks)
    pool2d_backward_cells_kernel(const Pool2dGeometry g, const FastDivisor by_q,
                                 const FastDivisor by_p, const float* __restrict__ x,
                                 const float* __restrict__ dy, float* __restrict__ dx) {
  const int total = static_cast<int>(g.output_size()), hw = g.h * g.w;
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < total; i += stride) {
    int m, p, q;
    split_output(by_q, by_p, i, m, p, q);
    const float* map = x + m * hw;
    float* dmap = dx + m * hw;
    const int h0 = p * g.stride_h, w0 = q * g.stride_w;
    int h_end = p + 1 == g.p ? g.h : h0 + g.stride_h, w_end = q + 1 == g.q ? g.w : w0 + g.stride_w;
    if (h_end > g.h) h_end = g.h;
    if (w_end > g.w) w_end = g.w;
    const Window win = window_of(g, p, q);
    const double d = static_cast<double>(dy[i]);
    // As the gather sums: 0.0 + share (which turns a -0 share into +0, as there).
    int64_t best = -1;
    float share = 0.f;
    if (g.mode == PoolMode::Max) {
      best = argmax(g, map, win);
      share = static_cast<float>(0.0 + d);
    } else if (win.count() > 0) {
      share = static_cast<float>(0.0 + d / win.count());
    }
    for (int h = h0; h < h_end; ++h)
      for (int w = w0; w < w_end; ++w) {
        const bool in_window = h >= win.h0 && h < win.h1 && w >= win.w0 && w < win.w1;
        const bool gets = g.mode == PoolMode::Max ? int64_t(h) * g.w + w == best : in_window;
        dmap[h * g.w + w] = gets ? share : 0.f;
      }
  }
}

}  // namespace

cudaError_t pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, cudaStream_t stream) {
  const int64_t total = g.output_size();
  if (total <= 0) return cudaSuccess;
  if (total < kNarrowElements && g.input_size() < kNarrowElements) {
    detail::launch(pool2d_forward_narrow_kernel, detail::grid_for(total), detail::kThreads, 0,
                   stream, g, FastDivisor(g.q), FastDivisor(g.p), x, y);
    return cudaGetLastError();
  }
  detail::launch(pool2d_forward_kernel, detail::grid_for(total), detail::kThreads, 0, stream, g, x,
                 y);
  return cudaGetLastError();
}

cudaError_t pool2d_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx,
                            cudaStream_t stream) {
  const int64_t total = g.input_size();
  if (total <= 0) return cudaSuccess;
  if (g.stride_h <= 0 || g.stride_w <= 0) return cudaErrorInvalidValue;
  // The cells kernel counts outputs in 32 bits as well: padding below or to the right can
  // make them outnumber the inputs.
  if (cells_partition(g) && g.input_size() < kNarrowElements && g.output_size() < kNarrowElements) {
    const int64_t cells = g.output_size();
    detail::launch(pool2d_backward_cells_kernel, detail::grid_for(cells), detail::kThreads, 0,
                   stream, g, FastDivisor(g.q), FastDivisor(g.p), x, dy, dx);
    return cudaGetLastError();
  }
  detail::launch(pool2d_backward_kernel, detail::grid_for(total), detail::kThreads, 0, stream, g, x,
                 dy, dx);
  return cudaGetLastError();
}

}  // namespace cnnk
