// Batch normalization with the semantics of cnn::ref::batchnorm_* (batchnorm_ref.cpp).
//
// Training forward and backward reduce over each channel's m = n * spatial values, in
// double, in a fixed order: the result depends only on the shape, never on scheduling.
// - Short channels (m <= kChunk): one block per channel reduces (two passes: the mean,
//   then the centred squares; or the sums of dy and dy * xhat) and then writes the
//   channel's outputs, all in one launch.
// - Long channels: one block per channel would leave most SMs idle (a 16-channel layer at
//   batch 256 has 16 blocks of 200,704 values each), so each channel is cut into S
//   chunks of at most kChunk values (S from the shape alone) and two launches share the
//   work over S * C blocks. The first writes each chunk's partial sums to the workspace;
//   the second combines the S partials of its channel (warp 0, fixed order) and writes its
//   chunk's outputs. The variance is combined as Chan et al. do: each chunk keeps its sum
//   and its squares centred on its own mean, and the total adds n_s (mean_s - mean)^2 per
//   chunk, which is as exact as two passes and needs the values only once.
// The elementwise formulas use explicitly rounded double operations (no contraction into
// fma) in the reference's order, so outputs match it to the last bit but for the rounding
// of the sums themselves.
//
// Inference: a 2-D grid, y over channels, x over the channel's values; each thread works
// out its channel's constants once.
#include <cstdint>

#include "cnnk/batchnorm.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::block_sum;
using detail::ChannelWalk;
using detail::kScratch;
using detail::kWarp;

constexpr int kMaxReduceThreads = 512;

// (x - mean) * scale + shift, rounded at each step as the reference's double code is.
__device__ __forceinline__ float affine(float x, double mean, double scale, double shift) {
  return static_cast<float>(
      __dadd_rn(__dmul_rn(__dsub_rn(static_cast<double>(x), mean), scale), shift));
}

// running = momentum * running + (1 - momentum) * batch, in double as the reference.
__device__ __forceinline__ float blend(double momentum, float running, double batch) {
  return static_cast<float>(__dadd_rn(__dmul_rn(momentum, static_cast<double>(running)),
                                      __dmul_rn(1.0 - momentum, batch)));
}

// xhat = (x - mean) * invstd, rounded as the reference.
__device__ __forceinline__ double normalized(float x, double mean, double invstd) {
  return __dmul_rn(static_cast<double>(x) - mean, invstd);
}

// dx = k * (m * dy - sum(dy) - xhat * sum(dy * xhat)), k = gamma * invstd / m, rounded as
// the reference.
__device__ __forceinline__ float input_grad(double k, double m, float dy, double sum_dy,
                                            double xhat, double sum_dy_xhat) {
  const double inner = __dsub_rn(__dsub_rn(__dmul_rn(m, static_cast<double>(dy)), sum_dy),
                                 __dmul_rn(xhat, sum_dy_xhat));
  return static_cast<float>(__dmul_rn(k, inner));
}

// Calls f(i) for the values j = first, first + step, ... of channel c (in the order
// j = n * spatial + s), i being the value's index in the tensor: the one walk of every
// kernel here. Without `end` it runs to the channel's end (the whole-channel kernels);
// with it, to `end` (a chunk), at the price of one more 64-bit counter.
template <class F>
__device__ __forceinline__ void for_each_value(const BatchNormGeometry& g, int c, int64_t first,
                                               int64_t step, F f) {
  for (ChannelWalk it(g.n, g.c, g.spatial, c, first, step); it.valid(); it.next()) f(it.offset());
}
template <class F>
__device__ __forceinline__ void for_each_value(const BatchNormGeometry& g, int c, int64_t first,
                                               int64_t end, int64_t step, F f) {
  int64_t j = first;
  for (ChannelWalk it(g.n, g.c, g.spatial, c, first, step); j < end; j += step, it.next())
    f(it.offset());
}

// What normalising a channel takes, from its mean and the sum of its squares centred on
// it over m values (m may be 0 or 1, as the reference allows).
struct ChannelNorm {
  double mean, unbiased, invstd, scale, shift;
};
__device__ __forceinline__ ChannelNorm channel_norm(double mean, double sq, double m,
                                                    double epsilon, float gamma, float beta) {
  const double var = m > 0 ? sq / m : 0.0;             // biased: normalisation
  const double unbiased = m > 1 ? sq / (m - 1) : var;  // unbiased: running variance
  const double invstd = __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(var, epsilon)));
  return {mean, unbiased, invstd, __dmul_rn(static_cast<double>(gamma), invstd),
          static_cast<double>(beta)};
}

// The running statistics' update and the statistics saved for the backward, of channel c.
__device__ __forceinline__ void store_statistics(int c, const ChannelNorm& s, double momentum,
                                                 float* running_mean, float* running_var,
                                                 float* save_mean, float* save_invstd) {
  running_mean[c] = blend(momentum, running_mean[c], s.mean);
  running_var[c] = blend(momentum, running_var[c], s.unbiased);
  save_mean[c] = static_cast<float>(s.mean);
  save_invstd[c] = static_cast<float>(s.invstd);
}

// Two sums in double: (sum of x, sum of (x - chunk mean)^2) forward, (sum of dy, sum of
// dy * xhat) backward. The chunked path's workspace holds one per (channel, chunk),
// channel-major.
struct Partial {
  double first, second;
};

// This thread's sums of dy and dy * xhat over the values `walk` visits (walk(f) calls
// f(i) for each, as for_each_value).
template <class Walk>
__device__ __forceinline__ Partial grad_sums(Walk walk, const float* x, const float* dy,
                                             double mean, double invstd) {
  Partial sums{0.0, 0.0};
  walk([&](int64_t i) {
    const double d = static_cast<double>(dy[i]);
    sums.first += d;
    sums.second += d * normalized(x[i], mean, invstd);
  });
  return sums;
}

// y may alias x: x is read by the two reductions before any y is written (block_sum
// synchronizes), and the last pass reads x[i] just before writing y[i] in the same thread.
__global__ void __launch_bounds__(kMaxReduceThreads)
    batchnorm_training_kernel(const BatchNormGeometry g, const float* x,
                              const float* __restrict__ gamma, const float* __restrict__ beta,
                              double momentum, double epsilon, float* __restrict__ running_mean,
                              float* __restrict__ running_var, float* y,
                              float* __restrict__ save_mean, float* __restrict__ save_invstd) {
  __shared__ double scratch[kScratch];
  const double m = static_cast<double>(g.reduction());
  for (int c = blockIdx.x; c < g.c; c += gridDim.x) {
    auto walk = [&](auto f) { for_each_value(g, c, threadIdx.x, blockDim.x, f); };
    double sum = 0.0;
    walk([&](int64_t i) { sum += static_cast<double>(x[i]); });
    sum = block_sum(sum, scratch);
    const double mean = m > 0 ? sum / m : 0.0;

    double sq = 0.0;
    walk([&](int64_t i) {
      const double d = static_cast<double>(x[i]) - mean;
      sq += d * d;
    });
    sq = block_sum(sq, scratch);
    const ChannelNorm cn = channel_norm(mean, sq, m, epsilon, gamma[c], beta[c]);
    walk([&](int64_t i) { y[i] = affine(x[i], cn.mean, cn.scale, cn.shift); });
    if (threadIdx.x == 0)
      store_statistics(c, cn, momentum, running_mean, running_var, save_mean, save_invstd);
  }
}

// y may alias x (elementwise).
__global__ void __launch_bounds__(detail::kThreads)
    batchnorm_inference_kernel(const BatchNormGeometry g, const float* x,
                               const float* __restrict__ gamma, const float* __restrict__ beta,
                               const float* __restrict__ running_mean,
                               const float* __restrict__ running_var, double epsilon, float* y) {
  for (int c = blockIdx.y; c < g.c; c += gridDim.y) {
    const double invstd =
        __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(static_cast<double>(running_var[c]), epsilon)));
    const double mean = static_cast<double>(running_mean[c]);
    const double scale = __dmul_rn(static_cast<double>(gamma[c]), invstd);
    const double shift = static_cast<double>(beta[c]);
    for_each_value(g, c, detail::global_index(), detail::global_stride(),
                   [&](int64_t i) { y[i] = affine(x[i], mean, scale, shift); });
  }
}

// With xhat = (x - mean) * invstd: dbeta = sum dy, dgamma = sum dy * xhat,
// dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma).
__global__ void __launch_bounds__(kMaxReduceThreads)
    batchnorm_backward_kernel(const BatchNormGeometry g, const float* __restrict__ x,
                              const float* __restrict__ dy, const float* __restrict__ gamma,
                              const float* __restrict__ save_mean,
                              const float* __restrict__ save_invstd, float* __restrict__ dx,
                              float* __restrict__ dgamma, float* __restrict__ dbeta) {
  __shared__ double scratch[kScratch];
  const double m = static_cast<double>(g.reduction());
  for (int c = blockIdx.x; c < g.c; c += gridDim.x) {
    const double mean = static_cast<double>(save_mean[c]);
    const double invstd = static_cast<double>(save_invstd[c]);
    auto walk = [&](auto f) { for_each_value(g, c, threadIdx.x, blockDim.x, f); };
    const Partial mine = grad_sums(walk, x, dy, mean, invstd);
    const double sum_dy = block_sum(mine.first, scratch);
    const double sum_dy_xhat = block_sum(mine.second, scratch);
    const double k = m > 0 ? __ddiv_rn(__dmul_rn(static_cast<double>(gamma[c]), invstd), m) : 0.0;
    walk([&](int64_t i) {
      dx[i] = input_grad(k, m, dy[i], sum_dy, normalized(x[i], mean, invstd), sum_dy_xhat);
    });
    if (threadIdx.x == 0) {
      dgamma[c] = static_cast<float>(sum_dy_xhat);
      dbeta[c] = static_cast<float>(sum_dy);
    }
  }
}

// ---- long channels: S chunks per channel, two launches -------------------------------

constexpr int kSplitThreads = 256;
constexpr int kPerThread = 16;  // values a thread of the statistics kernel holds at once
constexpr int64_t kChunk = int64_t(kSplitThreads) * kPerThread;  // 4096 values per block
// Past kMaxSplits * kChunk values per channel the chunks grow instead (the statistics
// kernel then walks its chunk kChunk values at a time), so that combining stays cheap.
constexpr int64_t kMaxSplits = 128;

// How channel values j in [0, m) are cut: chunk s holds [s * length, min((s+1) * length, m)).
// From the shape alone, so the order of every sum is fixed. A chunk is never empty:
// chunks - 1 full chunks hold fewer than m values since (chunks - 1)^2 < m.
struct Split {
  int64_t chunks = 1, length = 0;
  __device__ __forceinline__ int64_t begin(int64_t s) const { return s * length; }
  __device__ __forceinline__ int64_t end(int64_t s, int64_t m) const {
    return (s + 1) * length < m ? (s + 1) * length : m;
  }
};

// This thread's walk (as for_each_value) over chunk s of channel c.
__device__ __forceinline__ auto chunk_walk(const BatchNormGeometry& g, const Split& split, int c,
                                           int64_t s) {
  const int64_t first = split.begin(s) + threadIdx.x, end = split.end(s, g.reduction());
  return [=](auto f) { for_each_value(g, c, first, end, kSplitThreads, f); };
}

Split split_of(const BatchNormGeometry& g) {
  const int64_t m = g.reduction();
  int64_t chunks = (m + kChunk - 1) / kChunk;
  chunks = chunks < 1 ? 1 : (chunks > kMaxSplits ? kMaxSplits : chunks);
  return {chunks, (m + chunks - 1) / chunks};
}

// Statistics of chunk blockIdx.y of channel blockIdx.x. Each value is read once: up to
// kChunk of them sit in registers, summed, then centred on their own mean; a chunk longer
// than kChunk merges its pieces in order (Chan's pairwise update).
__global__ void __launch_bounds__(kSplitThreads)
    batchnorm_chunk_stats_kernel(const BatchNormGeometry g, const Split split,
                                 const float* __restrict__ x, Partial* __restrict__ partials) {
  __shared__ double scratch[kScratch];
  const int c = static_cast<int>(blockIdx.x);
  const int64_t s = blockIdx.y, m = g.reduction();
  const int64_t j1 = split.end(s, m);
  double count = 0.0, sum = 0.0, m2 = 0.0;
  for (int64_t lo = split.begin(s); lo < j1; lo += kChunk) {
    const int64_t hi = lo + kChunk < j1 ? lo + kChunk : j1;
    const int64_t first = lo + threadIdx.x;
    const int mine =
        first < hi ? static_cast<int>((hi - first + kSplitThreads - 1) / kSplitThreads) : 0;
    float v[kPerThread];
    double part = 0.0;
    ChannelWalk it(g.n, g.c, g.spatial, c, first, kSplitThreads);
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      v[k] = k < mine ? x[it.offset()] : 0.f;
      part += static_cast<double>(v[k]);
      it.next();
    }
    const double piece_sum = block_sum(part, scratch);
    const double piece_n = static_cast<double>(hi - lo);
    const double piece_mean = piece_sum / piece_n;
    double sq = 0.0;
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const double d = static_cast<double>(v[k]) - piece_mean;
      if (k < mine) sq += d * d;
    }
    const double piece_m2 = block_sum(sq, scratch);
    if (count > 0.0) {
      const double delta = piece_mean - sum / count;
      m2 = m2 + piece_m2 + delta * delta * (count * piece_n / (count + piece_n));
    } else {
      m2 = piece_m2;
    }
    sum += piece_sum;
    count += piece_n;
  }
  if (threadIdx.x == 0) partials[int64_t(c) * split.chunks + s] = Partial{sum, m2};
}

// Warp 0 adds channel c's chunk partials in a fixed order (lane-strided, then the warp's
// butterfly) as `term(s, partial)` makes them; the total reaches every thread through
// `shared` (the block must call it together).
template <class Term>
__device__ double combine_partials(const Partial* __restrict__ p, int64_t chunks, Term term,
                                   double* shared) {
  if (threadIdx.x < kWarp) {
    double t = 0.0;
    for (int64_t s = threadIdx.x; s < chunks; s += kWarp) t += term(s, p[s]);
    t = detail::warp_sum(t);
    if (threadIdx.x == 0) *shared = t;
  }
  __syncthreads();
  const double total = *shared;
  __syncthreads();  // before a second call overwrites it
  return total;
}

// y may alias x: each thread reads x[i] just before it writes y[i].
__global__ void __launch_bounds__(kSplitThreads)
    batchnorm_chunk_apply_kernel(const BatchNormGeometry g, const Split split,
                                 const Partial* __restrict__ partials, const float* x,
                                 const float* __restrict__ gamma, const float* __restrict__ beta,
                                 double momentum, double epsilon, float* __restrict__ running_mean,
                                 float* __restrict__ running_var, float* y,
                                 float* __restrict__ save_mean, float* __restrict__ save_invstd) {
  __shared__ double total;
  const int c = static_cast<int>(blockIdx.x);
  const int64_t s = blockIdx.y, m = g.reduction();
  const double md = static_cast<double>(m);
  const Partial* p = partials + int64_t(c) * split.chunks;
  const double sum = combine_partials(
      p, split.chunks, [](int64_t, Partial q) { return q.first; }, &total);
  const double mean = sum / md;
  // Each chunk's centred squares, moved to the channel's mean: + n_s (mean_s - mean)^2.
  const double sq = combine_partials(
      p, split.chunks,
      [&](int64_t i, Partial q) {
        const double n_i = static_cast<double>(split.end(i, m) - split.begin(i));
        const double d = q.first / n_i - mean;
        return q.second + n_i * d * d;
      },
      &total);
  const ChannelNorm cn = channel_norm(mean, sq, md, epsilon, gamma[c], beta[c]);
  chunk_walk(g, split, c, s)([&](int64_t i) { y[i] = affine(x[i], cn.mean, cn.scale, cn.shift); });
  if (s == 0 && threadIdx.x == 0)
    store_statistics(c, cn, momentum, running_mean, running_var, save_mean, save_invstd);
}

// Chunk blockIdx.y of channel blockIdx.x: its sums of dy and dy * xhat.
__global__ void __launch_bounds__(kSplitThreads)
    batchnorm_chunk_grad_sums_kernel(const BatchNormGeometry g, const Split split,
                                     const float* __restrict__ x, const float* __restrict__ dy,
                                     const float* __restrict__ save_mean,
                                     const float* __restrict__ save_invstd,
                                     Partial* __restrict__ partials) {
  __shared__ double scratch[kScratch];
  const int c = static_cast<int>(blockIdx.x);
  const int64_t s = blockIdx.y;
  const double mean = static_cast<double>(save_mean[c]);
  const double invstd = static_cast<double>(save_invstd[c]);
  const Partial mine = grad_sums(chunk_walk(g, split, c, s), x, dy, mean, invstd);
  const double sum_dy = block_sum(mine.first, scratch);
  const double sum_dy_xhat = block_sum(mine.second, scratch);
  if (threadIdx.x == 0) partials[int64_t(c) * split.chunks + s] = Partial{sum_dy, sum_dy_xhat};
}

__global__ void __launch_bounds__(kSplitThreads) batchnorm_chunk_grad_apply_kernel(
    const BatchNormGeometry g, const Split split, const Partial* __restrict__ partials,
    const float* __restrict__ x, const float* __restrict__ dy, const float* __restrict__ gamma,
    const float* __restrict__ save_mean, const float* __restrict__ save_invstd,
    float* __restrict__ dx, float* __restrict__ dgamma, float* __restrict__ dbeta) {
  __shared__ double total;
  const int c = static_cast<int>(blockIdx.x);
  const int64_t s = blockIdx.y, m = g.reduction();
  const double md = static_cast<double>(m);
  const Partial* p = partials + int64_t(c) * split.chunks;
  const double sum_dy = combine_partials(
      p, split.chunks, [](int64_t, Partial q) { return q.first; }, &total);
  const double sum_dy_xhat = combine_partials(
      p, split.chunks, [](int64_t, Partial q) { return q.second; }, &total);
  const double mean = static_cast<double>(save_mean[c]);
  const double invstd = static_cast<double>(save_invstd[c]);
  const double k = __ddiv_rn(__dmul_rn(static_cast<double>(gamma[c]), invstd), md);
  chunk_walk(g, split, c, s)([&](int64_t i) {
    dx[i] = input_grad(k, md, dy[i], sum_dy, normalized(x[i], mean, invstd), sum_dy_xhat);
  });
  if (s == 0 && threadIdx.x == 0) {
    dgamma[c] = static_cast<float>(sum_dy_xhat);
    dbeta[c] = static_cast<float>(sum_dy);
  }
}

// The chunked grid: x over channels (up to 2^31 - 1), y over a channel's chunks.
dim3 chunk_grid(const BatchNormGeometry& g, const Split& split) {
  return dim3(static_cast<unsigned>(g.c), static_cast<unsigned>(split.chunks));
}

// Whether this shape takes the chunked path (the workspace is then non-empty).
bool chunked(const BatchNormGeometry& g) { return g.c > 0 && g.reduction() > kChunk; }

// The chunked path's workspace is usable: present, large enough and aligned for Partial.
bool workspace_ok(const BatchNormGeometry& g, const void* workspace, size_t workspace_bytes) {
  return workspace != nullptr && workspace_bytes >= batchnorm_workspace_bytes(g) &&
         reinterpret_cast<uintptr_t>(workspace) % alignof(Partial) == 0;
}

// One block per channel; the block size depends only on the reduction length.
dim3 channel_blocks(const BatchNormGeometry& g) { return dim3(static_cast<unsigned>(g.c)); }
int channel_threads(const BatchNormGeometry& g) {
  return detail::reduce_threads(g.reduction(), kMaxReduceThreads);
}

}  // namespace

size_t batchnorm_workspace_bytes(const BatchNormGeometry& g) {
  if (!chunked(g)) return 0;
  return static_cast<size_t>(g.c) * static_cast<size_t>(split_of(g).chunks) * sizeof(Partial);
}

// A batch of n = 0 still updates the running statistics and the saved ones, as the
// reference does (the batch mean and variance read as 0): only c = 0 launches nothing.
cudaError_t batchnorm_forward_training(const BatchNormGeometry& g, const float* x,
                                       const float* gamma, const float* beta, float momentum,
                                       float epsilon, float* running_mean, float* running_var,
                                       float* y, float* save_mean, float* save_invstd,
                                       void* workspace, size_t workspace_bytes,
                                       cudaStream_t stream) {
  if (g.c <= 0) return cudaSuccess;
  if (chunked(g)) {
    if (!workspace_ok(g, workspace, workspace_bytes)) return cudaErrorInvalidValue;
    const Split split = split_of(g);
    Partial* partials = static_cast<Partial*>(workspace);
    detail::launch(batchnorm_chunk_stats_kernel, chunk_grid(g, split), kSplitThreads, 0, stream, g,
                   split, x, partials);
    if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
    detail::launch(batchnorm_chunk_apply_kernel, chunk_grid(g, split), kSplitThreads, 0, stream, g,
                   split, static_cast<const Partial*>(partials), x, gamma, beta,
                   static_cast<double>(momentum), static_cast<double>(epsilon), running_mean,
                   running_var, y, save_mean, save_invstd);
    return cudaGetLastError();
  }
  detail::launch(batchnorm_training_kernel, channel_blocks(g), channel_threads(g), 0, stream, g, x,
                 gamma, beta, static_cast<double>(momentum), static_cast<double>(epsilon),
                 running_mean, running_var, y, save_mean, save_invstd);
  return cudaGetLastError();
}

cudaError_t batchnorm_forward_inference(const BatchNormGeometry& g, const float* x,
                                        const float* gamma, const float* beta,
                                        const float* running_mean, const float* running_var,
                                        float epsilon, float* y, cudaStream_t stream) {
  if (g.size() <= 0) return cudaSuccess;
  detail::launch(batchnorm_inference_kernel, detail::channel_grid(g.c, g.reduction()),
                 detail::kThreads, 0, stream, g, x, gamma, beta, running_mean, running_var,
                 static_cast<double>(epsilon), y);
  return cudaGetLastError();
}

// dgamma and dbeta are assigned (0 for an empty batch); dx is assigned.
cudaError_t batchnorm_backward(const BatchNormGeometry& g, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_invstd,
                               float* dx, float* dgamma, float* dbeta, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream) {
  if (g.c <= 0) return cudaSuccess;
  // The kernels take x, dy and dx as __restrict__: an in-place backward is refused.
  if (dx != nullptr && (dx == x || dx == dy)) return cudaErrorInvalidValue;
  if (chunked(g)) {
    if (!workspace_ok(g, workspace, workspace_bytes)) return cudaErrorInvalidValue;
    const Split split = split_of(g);
    Partial* partials = static_cast<Partial*>(workspace);
    detail::launch(batchnorm_chunk_grad_sums_kernel, chunk_grid(g, split), kSplitThreads, 0, stream,
                   g, split, x, dy, save_mean, save_invstd, partials);
    if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
    detail::launch(batchnorm_chunk_grad_apply_kernel, chunk_grid(g, split), kSplitThreads, 0,
                   stream, g, split, static_cast<const Partial*>(partials), x, dy, gamma, save_mean,
                   save_invstd, dx, dgamma, dbeta);
    return cudaGetLastError();
  }
  detail::launch(batchnorm_backward_kernel, channel_blocks(g), channel_threads(g), 0, stream, g, x,
                 dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  return cudaGetLastError();
}

}  // namespace cnnk
