#include "engine/ops/bias/bias_cudnn.h"

#include "engine/backend/cuda/cudnn_context.h"

namespace cnn::cudnn {

void bias_backward(cuda::CudnnContext& ctx, int64_t n, int64_t c, int64_t spatial, const float* dz,
                   float* db) {
  const cuda::TensorDesc dz_desc(n, c, spatial, 1), db_desc(1, c, 1, 1);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnConvolutionBackwardBias(ctx.handle(), &one, dz_desc.d, dz, &zero, db_desc.d, db));
}

}  // namespace cnn::cudnn
