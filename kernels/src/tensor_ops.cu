// Small device ops: fill, add, accumulate, channel copies (concat), the batch gather and
// the bias of dense layers. Elementwise ones are grid-stride loops; bias_backward is one
// block per channel with a fixed-order reduction in double (deterministic).
#include "cnnk/tensor_ops.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::ChannelWalk;
using detail::global_index;
using detail::global_stride;

__global__ void fill_kernel(int64_t size, float value, float* __restrict__ y) {
  for (int64_t i = global_index(); i < size; i += global_stride()) y[i] = value;
}

// y may alias a or b.
__global__ void add_kernel(int64_t size, const float* a, const float* b, float* y) {
  for (int64_t i = global_index(); i < size; i += global_stride()) y[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(int64_t size, const float* __restrict__ src,
                                  float* __restrict__ dst) {
  for (int64_t i = global_index(); i < size; i += global_stride()) dst[i] += src[i];
}

// Element i of the copy is (n, j, s) with s fastest: count * spatial contiguous values
// per sample on each side.
__global__ void channel_copy_kernel(const ChannelCopy g, const float* __restrict__ src,
                                    float* __restrict__ dst) {
  const int64_t run = g.count * g.spatial;  // values copied per sample
  const int64_t total = g.n * run;
  for (int64_t i = global_index(); i < total; i += global_stride()) {
    const int64_t n = i / run, r = i - n * run;  // r = j * spatial + s
    dst[(n * g.dst_c + g.dst_offset) * g.spatial + r] =
        src[(n * g.src_c + g.src_offset) * g.spatial + r];
  }
}

__global__ void store_step_kernel(StepScalars s, StepScalars* __restrict__ dst) { *dst = s; }

__global__ void gather_rows_kernel(const float* __restrict__ src, int64_t row_len,
                                   Live<const int32_t*> live_indices, int64_t count,
                                   float* __restrict__ dst) {
  const int32_t* __restrict__ indices = live_indices.get();
  const int64_t total = count * row_len;
  for (int64_t i = global_index(); i < total; i += global_stride()) {
    const int64_t row = i / row_len, k = i - row * row_len;
    dst[i] = src[static_cast<int64_t>(indices[row]) * row_len + k];
  }
}

// 2-D grid: y over channels, x over the channel's n * spatial values.
__global__ void bias_add_kernel(int64_t n, int64_t c, int64_t spatial, const float* __restrict__ b,
                                float* __restrict__ y) {
  for (int64_t ch = blockIdx.y; ch < c; ch += gridDim.y) {
    const float bias = b[ch];
    for (ChannelWalk it(n, c, spatial, ch, global_index(), global_stride()); it.valid(); it.next())
      y[it.offset()] += bias;
  }
}

constexpr int kMaxReduceThreads = 256;

__global__ void __launch_bounds__(kMaxReduceThreads)
    bias_backward_kernel(int64_t n, int64_t c, int64_t spatial, const float* __restrict__ dy,
                         float* __restrict__ db) {
  __shared__ double scratch[detail::kScratch];
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double sum = 0.0;
    for (ChannelWalk it(n, c, spatial, ch, threadIdx.x, blockDim.x); it.valid(); it.next())
      sum += static_cast<double>(dy[it.offset()]);
    sum = detail::block_sum(sum, scratch);
    if (threadIdx.x == 0) db[ch] = static_cast<float>(sum);
  }
}

}  // namespace

cudaError_t fill(int64_t size, float value, float* y, cudaStream_t stream) {
  if (size <= 0) return cudaSuccess;
  detail::launch(fill_kernel, detail::grid_for(size), detail::kThreads, 0, stream, size, value, y);
  return cudaGetLastError();
}

cudaError_t add(int64_t size, const float* a, const float* b, float* y, cudaStream_t stream) {
  if (size <= 0) return cudaSuccess;
  detail::launch(add_kernel, detail::grid_for(size), detail::kThreads, 0, stream, size, a, b, y);
  return cudaGetLastError();
}

cudaError_t accumulate(int64_t size, const float* src, float* dst, cudaStream_t stream) {
  if (size <= 0) return cudaSuccess;
  detail::launch(accumulate_kernel, detail::grid_for(size), detail::kThreads, 0, stream, size, src,
                 dst);
  return cudaGetLastError();
}

cudaError_t channel_copy(const ChannelCopy& g, const float* src, float* dst, cudaStream_t stream) {
  if (g.n <= 0 || g.count <= 0 || g.spatial <= 0) return cudaSuccess;
  const int64_t total = g.n * g.count * g.spatial;
  detail::launch(channel_copy_kernel, detail::grid_for(total), detail::kThreads, 0, stream, g, src,
                 dst);
  return cudaGetLastError();
}

cudaError_t gather_rows(const float* src, int64_t row_len, Live<const int32_t*> indices,
                        int64_t count, float* dst, cudaStream_t stream) {
  if (row_len <= 0 || count <= 0) return cudaSuccess;
  const int64_t total = count * row_len;
  detail::launch(gather_rows_kernel, detail::grid_for(total), detail::kThreads, 0, stream, src,
                 row_len, indices, count, dst);
  return cudaGetLastError();
}

cudaError_t store_step_scalars(const StepScalars& s, StepScalars* dst, cudaStream_t stream) {
  detail::launch(store_step_kernel, 1, 1, 0, stream, s, dst);
  return cudaGetLastError();
}

cudaError_t bias_add(int64_t n, int64_t c, int64_t spatial, const float* b, float* y,
                     cudaStream_t stream) {
  if (n <= 0 || c <= 0 || spatial <= 0) return cudaSuccess;
  detail::launch(bias_add_kernel, detail::channel_grid(c, n * spatial), detail::kThreads, 0, stream,
                 n, c, spatial, b, y);
  return cudaGetLastError();
}

// db assigned; an empty batch (n = 0) gives db = 0, so only c = 0 launches nothing.
cudaError_t bias_backward(int64_t n, int64_t c, int64_t spatial, const float* dy, float* db,
                          cudaStream_t stream) {
  if (c <= 0) return cudaSuccess;
  if (c > 0x7fffffff) return cudaErrorInvalidValue;
  const int threads = detail::reduce_threads(n * spatial, kMaxReduceThreads);
  detail::launch(bias_backward_kernel, static_cast<unsigned>(c), threads, 0, stream, n, c, spatial,
                 dy, db);
  return cudaGetLastError();
}

}  // namespace cnnk
