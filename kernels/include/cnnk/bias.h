// The bias of convolution and dense layers and the activation fused with it, over an
// [n, c, spatial] tensor (c the channels or units, spatial 1 for a dense layer).
//
// Forward: y = f(y + b[c]) in place, one pass (a dense layer's GEMM writes y first).
// Backward: dz = dy * f'(.) through the forward output y, and db[c] = the sum of dz over
// n and spatial, in one pass over the tensor: the gradient is read once instead of
// written by the activation pass and read again by a bias reduction. A channel longer
// than one block's share is cut into chunks that many blocks reduce at once, and a
// second, small launch adds each channel's chunk sums in a fixed order: the result
// depends on the shape alone, never on the schedule.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cnnk/activation.h"

namespace cnnk {

// y[n, c, s] = f(y[n, c, s] + b[c]); b may be null (the activation alone).
cudaError_t bias_activation_forward(ActKind kind, int64_t n, int64_t c, int64_t spatial,
                                    const float* b, float* y, cudaStream_t stream);

// The chunk sums' workspace for a [n, c, spatial] backward: 0 when every channel fits in
// one block's chunk (that block then writes db itself).
size_t bias_backward_workspace_bytes(int64_t n, int64_t c, int64_t spatial);

// dz = dy * f'(y) (dz may alias dy; with Linear, dz may be null or dy, and y may be null:
// nothing is written but db) and, when db is not null, db[c] = sum over n and spatial of
// dz (assigned; an empty batch gives 0). A workspace shorter than
// bias_backward_workspace_bytes, or a channel of 2^31 - 2049 values (n * spatial) or more,
// gives cudaErrorInvalidValue.
cudaError_t bias_activation_backward(ActKind kind, int64_t n, int64_t c, int64_t spatial,
                                     const float* y, const float* dy, float* dz, float* db,
                                     void* workspace, size_t workspace_bytes, cudaStream_t stream);

// db[c] = sum over n and spatial of dy[n, c, s]: bias_activation_backward with Linear.
cudaError_t bias_backward(int64_t n, int64_t c, int64_t spatial, const float* dy, float* db,
                          void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace cnnk
