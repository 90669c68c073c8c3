// Small device ops: fill, add, accumulate, channel copies (concat) and the batch gather,
// grid-stride loops all. The bias of dense layers is bias.cu's.
#include "cnnk/tensor_ops.h"
#include "launch_util.cuh"

namespace cnnk {
namespace {

using detail::global_index;
using detail::global_stride;

__global__ void __launch_bounds__(detail::kThreads)
    fill_kernel(int64_t size, float value, float* __restrict__ y) {
  for (int64_t i = global_index(); i < size; i += global_stride()) y[i] = value;
}

// y may alias a or b.
__global__ void __launch_bounds__(detail::kThreads)
    add_kernel(int64_t size, const float* a, const float* b, float* y) {
  for (int64_t i = global_index(); i < size; i += global_stride()) y[i] = a[i] + b[i];
}

__global__ void __launch_bounds__(detail::kThreads)
    accumulate_kernel(int64_t size, const float* __restrict__ src, float* __restrict__ dst) {
  for (int64_t i = global_index(); i < size; i += global_stride()) dst[i] += src[i];
}

// Element i of the copy is (n, j, s) with s fastest: count * spatial contiguous values
// per sample on each side.
__global__ void __launch_bounds__(detail::kThreads)
    channel_copy_kernel(const ChannelCopy g, const float* __restrict__ src,
                        float* __restrict__ dst) {
  const int64_t run = g.count * g.spatial;  // values copied per sample
  const int64_t total = g.n * run;
  for (int64_t i = global_index(); i < total; i += global_stride()) {
    const int64_t n = i / run, r = i - n * run;  // r = j * spatial + s
    dst[(n * g.dst_c + g.dst_offset) * g.spatial + r] =
        src[(n * g.src_c + g.src_offset) * g.spatial + r];
  }
}

__global__ void __launch_bounds__(1)
    store_step_kernel(StepScalars s, StepScalars* __restrict__ dst) {
  *dst = s;
}

__global__ void __launch_bounds__(detail::kThreads)
    gather_rows_kernel(const float* __restrict__ src, int64_t row_len,
                       Live<const int32_t*> live_indices, int64_t count, float* __restrict__ dst) {
  const int32_t* __restrict__ indices = live_indices.get();
  const int64_t total = count * row_len;
  for (int64_t i = global_index(); i < total; i += global_stride()) {
    const int64_t row = i / row_len, k = i - row * row_len;
    dst[i] = src[static_cast<int64_t>(indices[row]) * row_len + k];
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

}  // namespace cnnk
