// Small device ops the executor and layers need: fill, add, accumulate, channel copies
// (concat) and the batch gather. The bias of dense layers is in cnnk/bias.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cnnk/step.h"

namespace cnnk {

cudaError_t fill(int64_t size, float value, float* y, cudaStream_t stream);
cudaError_t add(int64_t size, const float* a, const float* b, float* y, cudaStream_t stream);
cudaError_t accumulate(int64_t size, const float* src, float* dst, cudaStream_t stream);
// As cnn::ChannelCopyGeometry (engine/ops/tensor_ops/tensor_ops.h), flattened here so
// kernels/ needs nothing of the engine.
struct ChannelCopy {
  int64_t n = 0, spatial = 1;
  int64_t src_c = 0, src_offset = 0;
  int64_t dst_c = 0, dst_offset = 0;
  int64_t count = 0;
};
cudaError_t channel_copy(const ChannelCopy& g, const float* src, float* dst, cudaStream_t stream);
// dst[i, :] = src[indices[i], :], i < count; the indices pointer may be Live.
cudaError_t gather_rows(const float* src, int64_t row_len, Live<const int32_t*> indices,
                        int64_t count, float* dst, cudaStream_t stream);
// *dst = s, in stream order: a launch's arguments are copied when it is enqueued, so the
// host needs no pinned buffer and no synchronization to hand a step its scalars.
cudaError_t store_step_scalars(const StepScalars& s, StepScalars* dst, cudaStream_t stream);
}  // namespace cnnk
