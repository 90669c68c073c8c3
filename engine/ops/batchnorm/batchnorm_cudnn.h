// Batch normalization through cuDNN (spatial mode: statistics per channel over n, h, w).
// cuDNN's running variance uses the unbiased batch variance, as the reference does;
// its exponential average factor is 1 - momentum (Keras's momentum 0.99 -> 0.01).
#pragma once

#include "cnnk/geometry.h"

namespace cnn::cuda {
class CudnnContext;
}

namespace cnn::cudnn {

void batchnorm_forward_training(cuda::CudnnContext& ctx, const cnnk::BatchNormGeometry& g,
                                const float* x, const float* gamma, const float* beta,
                                float momentum, float epsilon, float* running_mean,
                                float* running_var, float* y, float* save_mean, float* save_invstd);
void batchnorm_forward_inference(cuda::CudnnContext& ctx, const cnnk::BatchNormGeometry& g,
                                 const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float epsilon,
                                 float* y);
// epsilon: the forward's (cuDNN asks for the same in both passes, though with the saved
// statistics given it reads them instead).
void batchnorm_backward(cuda::CudnnContext& ctx, const cnnk::BatchNormGeometry& g, const float* x,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_invstd, float epsilon, float* dx, float* dgamma,
                        float* dbeta);

}  // namespace cnn::cudnn
