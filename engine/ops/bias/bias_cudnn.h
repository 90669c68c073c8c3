// The bias gradient through cuDNN (cudnnConvolutionBackwardBias): db[c] = the sum of dz
// over the batch and the spatial positions of channel c. The --impl cudnn path uses it, so
// that this path shares no kernel with the native one and `cnn verify` compares two
// independent computations.
#pragma once

#include <cstdint>

namespace cnn::cuda {
class CudnnContext;
}

namespace cnn::cudnn {

// dz is [n, c, spatial] (NCHW with the spatial positions flattened); db is [c], assigned.
void bias_backward(cuda::CudnnContext& ctx, int64_t n, int64_t c, int64_t spatial, const float* dz,
                   float* db);

}  // namespace cnn::cudnn
