// Activations through cuDNN: relu, sigmoid, tanh (cudnnActivation*) and softmax over the
// channel axis (cudnnSoftmax*, CHANNEL mode). Linear is a copy the caller skips.
#pragma once

#include "engine/ops/activation/activation.h"

namespace cnn::cuda {
class CudnnContext;
}

namespace cnn::cudnn {

void activation_forward(cuda::CudnnContext& ctx, Activation a, const ActivationGeometry& g,
                        const float* x, float* y);
// In terms of the output y. cuDNN's activation backward also takes x; for relu, sigmoid
// and tanh the derivative is a function of y (relu: y > 0 exactly when x > 0), so y is
// passed for x.
void activation_backward(cuda::CudnnContext& ctx, Activation a, const ActivationGeometry& g,
                         const float* y, const float* dy, float* dx);

}  // namespace cnn::cudnn
