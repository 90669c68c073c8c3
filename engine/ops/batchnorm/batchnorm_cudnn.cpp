#include "engine/ops/batchnorm/batchnorm_cudnn.h"

#include "engine/backend/cuda/cudnn_context.h"

namespace cnn::cudnn {
namespace {

using cuda::CudnnContext;
using cuda::TensorDesc;

// [n, c, spatial] viewed as NCHW with h = spatial, w = 1: spatial mode reduces over
// n, h, w, which is exactly (n, spatial).
struct BnDescs {
  TensorDesc x, param;
  explicit BnDescs(const cnnk::BatchNormGeometry& g)
      : x(g.n, g.c, g.spatial, 1), param(1, g.c, 1, 1) {}
};

}  // namespace

void batchnorm_forward_training(CudnnContext& ctx, const cnnk::BatchNormGeometry& g, const float* x,
                                const float* gamma, const float* beta, float momentum,
                                float epsilon, float* running_mean, float* running_var, float* y,
                                float* save_mean, float* save_invstd) {
  BnDescs d(g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnBatchNormalizationForwardTraining(
      ctx.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.d, x, d.x.d, y, d.param.d, gamma,
      beta, 1.0 - static_cast<double>(momentum), running_mean, running_var,
      static_cast<double>(epsilon), save_mean, save_invstd));
}

void batchnorm_forward_inference(CudnnContext& ctx, const cnnk::BatchNormGeometry& g,
                                 const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float epsilon,
                                 float* y) {
  BnDescs d(g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnBatchNormalizationForwardInference(
      ctx.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.d, x, d.x.d, y, d.param.d, gamma,
      beta, running_mean, running_var, static_cast<double>(epsilon)));
}

void batchnorm_backward(CudnnContext& ctx, const cnnk::BatchNormGeometry& g, const float* x,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float epsilon, float* dx, float* dgamma,
                        float* dbeta) {
  BnDescs d(g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnBatchNormalizationBackward(
      ctx.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.x.d, x, d.x.d, dy, d.x.d,
      dx, d.param.d, gamma, dgamma, dbeta, static_cast<double>(epsilon), save_mean, save_invstd));
}

}  // namespace cnn::cudnn
