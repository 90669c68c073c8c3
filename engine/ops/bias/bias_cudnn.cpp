#include "engine/ops/bias/bias_cudnn.h"

#include <limits>

#include "engine/backend/cuda/cudnn_context.h"
#include "engine/core/error.h"

namespace cnn::cudnn {

void bias_backward(cuda::CudnnContext& ctx, int64_t n, int64_t c, int64_t spatial, const float* dz,
                   float* db) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  CNN_CHECK(n <= kMax && c <= kMax && spatial <= kMax && n * c * spatial <= kMax, ConfigError,
            "cuDNN bias gradient: [{}, {}, {}] does not fit cuDNN's 32-bit tensor sizes", n, c,
            spatial);
  const cuda::TensorDesc dz_desc(static_cast<int>(n), static_cast<int>(c),
                                 static_cast<int>(spatial), 1);
  const cuda::TensorDesc db_desc(1, static_cast<int>(c), 1, 1);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnConvolutionBackwardBias(ctx.handle(), &one, dz_desc.d, dz, &zero, db_desc.d, db));
}

}  // namespace cnn::cudnn
