// Softmax cross-entropy with the semantics of cnn::ref::softmax_xent_* (softmax_xent_ref
// .cpp), and softmax over the channel axis as cnn::ref's Activation::Softmax
// (activation_ref.cpp).
//
// softmax_xent: a warp per row; lanes stride over the classes and combine in fixed
// butterflies (every lane ends with the same bits), in double as the reference:
//   mx = the row's max, lse = log(sum_j exp(z_j - mx)),
//   loss = sum_j [t_j != 0] t_j * (lse - (z_j - mx)),  dlogits_j = (p_j - t_j) * grad_scale.
// Then a single block adds row_loss and row_correct, in a fixed order, into the metrics.
//
// softmax over channels: a thread per (n, spatial) position, three passes over c.
#include <math_constants.h>

#include "cnnk/loss.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::global_index;
using detail::global_stride;
using detail::kWarp;

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kXentThreads = 256;  // 8 rows at a time per block
constexpr int kMetricsThreads = 512;

// The reference's argmax: best = 0, then v[j] > v[best] moves it. So v[0] stands unless a
// later value is strictly greater, a NaN after index 0 never wins, and a NaN at index 0 is
// never beaten. Every lane of the warp returns the same index.
__device__ int64_t warp_argmax(const float* __restrict__ v, int64_t count, int lane) {
  const float v0 = v[0];
  if (v0 != v0) return 0;
  int64_t best = -1;  // none yet
  float best_v = 0.f;
  for (int64_t j = lane; j < count; j += kWarp) {
    const float x = v[j];
    if (x == x && (best < 0 || x > best_v)) {
      best = j;
      best_v = x;
    }
  }
  // The larger value wins; equal values go to the smaller index: the first maximum.
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) {
    const long long other = __shfl_xor_sync(kFullMask, static_cast<long long>(best), offset);
    const float other_v = __shfl_xor_sync(kFullMask, best_v, offset);
    if (other >= 0 && (best < 0 || other_v > best_v || (other_v == best_v && other < best))) {
      best = other;
      best_v = other_v;
    }
  }
  return best;
}

__global__ void __launch_bounds__(kXentThreads)
    softmax_xent_kernel(int64_t rows, int64_t classes, const float* __restrict__ logits,
                        const float* __restrict__ labels, bool sparse, float grad_scale,
                        float* __restrict__ dlogits, float* __restrict__ row_loss,
                        float* __restrict__ row_correct, int* __restrict__ bad_labels) {
  const int lane = threadIdx.x % kWarp;
  const int64_t first = global_index() / kWarp, step = global_stride() / kWarp;
  const double scale = static_cast<double>(grad_scale);
  // `row` is the same on every lane of a warp: the whole warp takes each branch together.
  for (int64_t row = first; row < rows; row += step) {
    const float* z = logits + row * classes;
    const float* t = sparse ? nullptr : labels + row * classes;
    float* dz = dlogits ? dlogits + row * classes : nullptr;
    int64_t label = 0;
    if (sparse) {
      const double l = static_cast<double>(labels[row]);
      if (!(l >= 0 && l < static_cast<double>(classes) && l == floor(l))) {
        // A bad label: loss 0, wrong, zero gradient, and the flag.
        if (dz)
          for (int64_t j = lane; j < classes; j += kWarp) dz[j] = 0.f;
        if (lane == 0) {
          row_loss[row] = 0.f;
          row_correct[row] = 0.f;
          if (bad_labels) *bad_labels = 1;
        }
        continue;
      }
      label = static_cast<int64_t>(l);
    } else {
      label = warp_argmax(t, classes, lane);
    }
    const int64_t best = warp_argmax(z, classes, lane);
    // The reference's max over doubles is the value at the first argmax (NaN at 0 aside,
    // where both give NaN everywhere).
    const double mx = static_cast<double>(z[best]);

    double sum = 0.0;
    for (int64_t j = lane; j < classes; j += kWarp) sum += exp(static_cast<double>(z[j]) - mx);
    sum = detail::warp_sum(sum);
    const double lse = log(sum);

    double loss = 0.0;
    if (sparse) {
      loss = lse - (static_cast<double>(z[label]) - mx);
    } else {
      for (int64_t j = lane; j < classes; j += kWarp) {
        const double tj = static_cast<double>(t[j]);
        if (tj != 0.0) loss += tj * (lse - (static_cast<double>(z[j]) - mx));
      }
      loss = detail::warp_sum(loss);
    }

    if (dz)
      for (int64_t j = lane; j < classes; j += kWarp) {
        const double p = exp(static_cast<double>(z[j]) - mx) / sum;
        const double tj = sparse ? (j == label ? 1.0 : 0.0) : static_cast<double>(t[j]);
        dz[j] = static_cast<float>((p - tj) * scale);
      }
    if (lane == 0) {
      row_loss[row] = static_cast<float>(loss);
      row_correct[row] = best == label ? 1.f : 0.f;
    }
  }
}

// One block: each thread sums rows r = tid, tid + blockDim, ... in order, then a fixed
// tree; the totals are added to the metrics by thread 0 (one block: no race).
__global__ void __launch_bounds__(kMetricsThreads)
    metrics_kernel(int64_t rows, const float* __restrict__ row_loss,
                   const float* __restrict__ row_correct, DeviceMetrics* __restrict__ metrics) {
  __shared__ double loss_scratch[detail::kScratch];
  __shared__ unsigned long long hit_scratch[detail::kScratch];
  double loss = 0.0;
  unsigned long long hits = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    loss += static_cast<double>(row_loss[r]);
    hits += row_correct[r] != 0.f ? 1ull : 0ull;
  }
  loss = detail::block_sum(loss, loss_scratch);
  hits = detail::block_sum(hits, hit_scratch);
  if (threadIdx.x == 0) {
    metrics->loss_sum += loss;
    metrics->correct += hits;
    metrics->count += static_cast<unsigned long long>(rows);
  }
}

// y may alias x: a thread reads x[k] just before writing y[k], and no other thread
// touches its position.
__global__ void __launch_bounds__(detail::kThreads)
    softmax_forward_kernel(int64_t n, int64_t c, int64_t spatial, const float* x, float* y) {
  const int64_t positions = n * spatial;
  for (int64_t i = global_index(); i < positions; i += global_stride()) {
    const int64_t nn = i / spatial, s = i - nn * spatial;
    const int64_t base = nn * c * spatial + s;  // channel j at base + j * spatial
    double mx = -CUDART_INF;
    for (int64_t j = 0; j < c; ++j) {
      const double v = static_cast<double>(x[base + j * spatial]);
      mx = mx < v ? v : mx;  // std::max(mx, v): a NaN never replaces mx
    }
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += exp(static_cast<double>(x[base + j * spatial]) - mx);
    for (int64_t j = 0; j < c; ++j) {
      const int64_t k = base + j * spatial;
      y[k] = static_cast<float>(exp(static_cast<double>(x[k]) - mx) / sum);
    }
  }
}

// dx_j = y_j * (dy_j - sum_k dy_k y_k). One thread owns a position: it reads all of dy
// before writing dx there, so dx may alias dy (no __restrict__ on them).
__global__ void __launch_bounds__(detail::kThreads)
    softmax_backward_kernel(int64_t n, int64_t c, int64_t spatial, const float* __restrict__ y,
                            const float* dy, float* dx) {
  const int64_t positions = n * spatial;
  for (int64_t i = global_index(); i < positions; i += global_stride()) {
    const int64_t nn = i / spatial, s = i - nn * spatial;
    const int64_t base = nn * c * spatial + s;
    double dot = 0.0;
    for (int64_t j = 0; j < c; ++j) {
      const int64_t k = base + j * spatial;
      dot += static_cast<double>(dy[k]) * static_cast<double>(y[k]);
    }
    for (int64_t j = 0; j < c; ++j) {
      const int64_t k = base + j * spatial;
      dx[k] = static_cast<float>(static_cast<double>(y[k]) * (static_cast<double>(dy[k]) - dot));
    }
  }
}

}  // namespace

cudaError_t softmax_xent(int64_t rows, int64_t classes, const float* logits, const float* labels,
                         bool sparse, float grad_scale, float* dlogits, float* row_loss,
                         float* row_correct, DeviceMetrics* metrics, int* bad_labels,
                         cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (classes <= 0 || !row_loss || !row_correct) return cudaErrorInvalidValue;
  const int rows_per_block = kXentThreads / kWarp;
  const int64_t blocks64 = (rows + rows_per_block - 1) / rows_per_block;
  const unsigned blocks =
      static_cast<unsigned>(blocks64 < detail::kMaxBlocks ? blocks64 : detail::kMaxBlocks);
  detail::launch(softmax_xent_kernel, blocks, kXentThreads, 0, stream, rows, classes, logits,
                 labels, sparse, grad_scale, dlogits, row_loss, row_correct, bad_labels);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || !metrics) return err;
  detail::launch(metrics_kernel, 1, kMetricsThreads, 0, stream, rows, row_loss, row_correct,
                 metrics);
  return cudaGetLastError();
}

cudaError_t softmax_forward(int64_t n, int64_t c, int64_t spatial, const float* x, float* y,
                            cudaStream_t stream) {
  if (n <= 0 || c <= 0 || spatial <= 0) return cudaSuccess;
  const int64_t positions = n * spatial;
  detail::launch(softmax_forward_kernel, detail::grid_for(positions), detail::kThreads, 0, stream,
                 n, c, spatial, x, y);
  return cudaGetLastError();
}

cudaError_t softmax_backward(int64_t n, int64_t c, int64_t spatial, const float* y, const float* dy,
                             float* dx, cudaStream_t stream) {
  if (n <= 0 || c <= 0 || spatial <= 0) return cudaSuccess;
  const int64_t positions = n * spatial;
  detail::launch(softmax_backward_kernel, detail::grid_for(positions), detail::kThreads, 0, stream,
                 n, c, spatial, y, dy, dx);
  return cudaGetLastError();
}

}  // namespace cnnk
