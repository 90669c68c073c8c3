// The bias and its fused activation, forward and backward (see cnnk/bias.h).
//
// Why the backward is cut into chunks: one block per channel, as the bias gradient ran
// before, sums 25,088 values per channel for the first layer of fashion-cnn at batch 32
// (200,704 at batch 256) on 64 blocks, each thread with one load in flight at a time:
// latency-bound, on half the multiprocessors. Here a block takes kChunk values of one
// channel, each thread issuing all of its kPerThread loads before the first use, and the
// grid holds chunks x channels blocks.
#include "activation_math.cuh"
#include "cnnk/bias.h"
#include "fast_divide.cuh"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using act_detail::Linear;
using act_detail::Relu;
using act_detail::Sigmoid;
using act_detail::Tanh;
using detail::ChannelWalk;

constexpr int kBiasThreads = 256;
constexpr int kPerThread = 8;
constexpr int64_t kChunk = int64_t(kBiasThreads) * kPerThread;
constexpr int64_t kMaxGridY = 65535;
// The most values of one channel a backward takes (its walk is in 32 bits): as the
// convolutions, which refuse N*P*Q past 2^30, far beyond any layer's.
constexpr int64_t kMaxChannelValues = (int64_t(1) << 31) - 1 - kChunk;

// Chunks per channel of an [n, c, spatial] tensor: at least 1, so that an empty batch
// still writes db = 0.
int64_t chunks_for(int64_t n, int64_t spatial) {
  const int64_t m = n > 0 && spatial > 0 ? n * spatial : 0;
  const int64_t chunks = (m + kChunk - 1) / kChunk;
  return chunks > 0 ? chunks : 1;
}

// 2-D grid: y over channels, x over the channel's values (as channel_grid).
template <class F>
__global__ void __launch_bounds__(detail::kThreads)
    bias_activation_forward_kernel(F f, int64_t n, int64_t c, int64_t spatial,
                                   const float* __restrict__ b, float* __restrict__ y) {
  for (int64_t ch = blockIdx.y; ch < c; ch += gridDim.y) {
    const float bias = b ? b[ch] : 0.f;
    for (ChannelWalk it(n, c, spatial, ch, detail::global_index(), detail::global_stride());
         it.valid(); it.next())
      y[it.offset()] = f.fwd(y[it.offset()] + bias);
  }
}

// One backward launch's shape. A channel's values are indexed j = image * spatial +
// pixel; the walk over them steps by kBiasThreads with the quotient and remainder of that
// step by spatial fixed for the launch, and starts with one multiply-high division
// (fast_divide.cuh): 32-bit arithmetic throughout, where 64-bit divisions would cost a
// thread more instructions than its eight elements. Hence the launcher's limit on m.
struct BiasProblem {
  int64_t c = 0, chunks = 1;
  int n = 0, spatial = 1;
  int step_n = 0, step_s = 0;  // kBiasThreads = step_n * spatial + step_s
  detail::FastDivisor by_spatial;
};

// Block (x, y) = (chunk, channel): dz over the chunk's values of the channel and their
// sum, written to out[channel * chunks + chunk] (db itself when chunks is 1). kReadY is
// false for Linear (f' needs no y); kWriteDz false when there is no dz to write (Linear
// with dz aliasing dy).
template <class F, bool kReadY, bool kWriteDz>
__global__ void __launch_bounds__(kBiasThreads)
    bias_grad_chunks_kernel(F f, const BiasProblem pb, const float* y, const float* dy, float* dz,
                            float* __restrict__ out) {
  __shared__ float scratch[detail::kScratch];
  const int j0 = static_cast<int>(blockIdx.x) * int(kChunk) + static_cast<int>(threadIdx.x);
  int n0, s0;
  pb.by_spatial.divmod(j0, n0, s0);
  const int64_t plane = pb.c * pb.spatial;
  for (int64_t ch = blockIdx.y; ch < pb.c; ch += gridDim.y) {
    // Every load before any store: dz may alias dy, and each element is read and written
    // by the same thread, so the order within a thread is all that matters.
    int64_t at[kPerThread];
    float yv[kPerThread], gv[kPerThread];
    int n = n0, s = s0;
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const bool inside = n < pb.n;
      at[k] = inside ? n * plane + ch * pb.spatial + s : -1;
      gv[k] = inside ? dy[at[k]] : 0.f;
      yv[k] = kReadY && inside ? y[at[k]] : 0.f;
      n += pb.step_n;
      s += pb.step_s;
      if (s >= pb.spatial) {  // s < 2 * spatial here: one wrap suffices
        s -= pb.spatial;
        ++n;
      }
    }
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      if (at[k] < 0) continue;
      const float g = f.bwd(yv[k], gv[k]);
      if (kWriteDz) dz[at[k]] = g;
      sum += g;
    }
    sum = detail::block_sum(sum, scratch);
    if (threadIdx.x == 0) out[ch * pb.chunks + blockIdx.x] = sum;
  }
}

// db[ch] = the sum of the channel's chunk sums, in chunk order within each lane and a
// fixed butterfly across lanes: one warp per channel.
__global__ void __launch_bounds__(kBiasThreads)
    bias_grad_combine_kernel(int64_t c, int64_t chunks, const float* __restrict__ partials,
                             float* __restrict__ db) {
  const int lane = threadIdx.x % detail::kWarp;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / detail::kWarp);
  for (int64_t ch =
           int64_t(blockIdx.x) * (blockDim.x / detail::kWarp) + threadIdx.x / detail::kWarp;
       ch < c; ch += warps) {  // uniform across the warp: the shuffles see every lane
    float s = 0.f;
    for (int64_t i = lane; i < chunks; i += detail::kWarp) s += partials[ch * chunks + i];
    s = detail::warp_sum(s);
    if (lane == 0) db[ch] = s;
  }
}

template <class F, bool kReadY, bool kWriteDz>
cudaError_t launch_backward(F f, int64_t n, int64_t c, int64_t spatial, const float* y,
                            const float* dy, float* dz, float* db, void* workspace,
                            cudaStream_t stream) {
  BiasProblem pb;
  pb.c = c;
  pb.chunks = chunks_for(n, spatial);
  if (n > 0 && spatial > 0) {  // else every walk is empty (n = 0) and db is 0
    pb.n = static_cast<int>(n);
    pb.spatial = static_cast<int>(spatial);
  }
  pb.step_n = kBiasThreads / pb.spatial;
  pb.step_s = kBiasThreads % pb.spatial;
  pb.by_spatial = detail::FastDivisor(pb.spatial);
  float* out = pb.chunks > 1 ? static_cast<float*>(workspace) : db;
  const dim3 grid(static_cast<unsigned>(pb.chunks),
                  static_cast<unsigned>(c < kMaxGridY ? c : kMaxGridY));
  detail::launch(bias_grad_chunks_kernel<F, kReadY, kWriteDz>, grid, kBiasThreads, 0, stream, f, pb,
                 y, dy, dz, out);
  if (pb.chunks == 1) return cudaGetLastError();
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  const int64_t warps_per_block = kBiasThreads / detail::kWarp;
  const int64_t blocks = (c + warps_per_block - 1) / warps_per_block;
  detail::launch(bias_grad_combine_kernel, static_cast<unsigned>(blocks < 4096 ? blocks : 4096),
                 kBiasThreads, 0, stream, c, pb.chunks, static_cast<const float*>(out), db);
  return cudaGetLastError();
}

template <class F>
cudaError_t launch_forward(F f, int64_t n, int64_t c, int64_t spatial, const float* b, float* y,
                           cudaStream_t stream) {
  detail::launch(bias_activation_forward_kernel<F>, detail::channel_grid(c, n * spatial),
                 detail::kThreads, 0, stream, f, n, c, spatial, b, y);
  return cudaGetLastError();
}

}  // namespace

cudaError_t bias_activation_forward(ActKind kind, int64_t n, int64_t c, int64_t spatial,
                                    const float* b, float* y, cudaStream_t stream) {
  if (n <= 0 || c <= 0 || spatial <= 0) return cudaSuccess;
  switch (kind) {
    case ActKind::Linear:
      return b ? launch_forward(Linear{}, n, c, spatial, b, y, stream) : cudaSuccess;
    case ActKind::Relu:
      return launch_forward(Relu{}, n, c, spatial, b, y, stream);
    case ActKind::Sigmoid:
      return launch_forward(Sigmoid{}, n, c, spatial, b, y, stream);
    case ActKind::Tanh:
      return launch_forward(Tanh{}, n, c, spatial, b, y, stream);
  }
  return cudaErrorInvalidValue;
}

size_t bias_backward_workspace_bytes(int64_t n, int64_t c, int64_t spatial) {
  const int64_t chunks = chunks_for(n, spatial);
  return chunks > 1 && c > 0 ? static_cast<size_t>(c * chunks) * sizeof(float) : 0;
}

cudaError_t bias_activation_backward(ActKind kind, int64_t n, int64_t c, int64_t spatial,
                                     const float* y, const float* dy, float* dz, float* db,
                                     void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (c <= 0) return cudaSuccess;
  if (!db) {  // no reduction: the elementwise pass, or nothing at all
    if (kind == ActKind::Linear && (dz == nullptr || dz == dy)) return cudaSuccess;
    const int64_t size = n > 0 && spatial > 0 ? n * c * spatial : 0;
    return activation_backward(kind, size, y, dy, dz, stream);
  }
  if (kind != ActKind::Linear && (y == nullptr || dz == nullptr)) return cudaErrorInvalidValue;
  if (n > 0 && spatial > 0 && n * spatial > kMaxChannelValues) return cudaErrorInvalidValue;
  const size_t need = bias_backward_workspace_bytes(n, c, spatial);
  if (need > 0 && (workspace == nullptr || workspace_bytes < need)) return cudaErrorInvalidValue;
  switch (kind) {
    case ActKind::Linear:
      if (dz == nullptr || dz == dy)
        return launch_backward<Linear, false, false>(Linear{}, n, c, spatial, y, dy, dz, db,
                                                     workspace, stream);
      return launch_backward<Linear, false, true>(Linear{}, n, c, spatial, y, dy, dz, db, workspace,
                                                  stream);
    case ActKind::Relu:
      return launch_backward<Relu, true, true>(Relu{}, n, c, spatial, y, dy, dz, db, workspace,
                                               stream);
    case ActKind::Sigmoid:
      return launch_backward<Sigmoid, true, true>(Sigmoid{}, n, c, spatial, y, dy, dz, db,
                                                  workspace, stream);
    case ActKind::Tanh:
      return launch_backward<Tanh, true, true>(Tanh{}, n, c, spatial, y, dy, dz, db, workspace,
                                               stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t bias_backward(int64_t n, int64_t c, int64_t spatial, const float* dy, float* db,
                          void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  return bias_activation_backward(ActKind::Linear, n, c, spatial, nullptr, dy, nullptr, db,
                                  workspace, workspace_bytes, stream);
}

}  // namespace cnnk
