// Pooling through cuDNN: max (padding never wins) and average excluding padding, as Keras.
#pragma once

#include "cnnk/geometry.h"
#include "cnnk/status.h"

namespace cnn::cuda {
class CudnnContext;
}

namespace cnn::cudnn {

// Symmetric padding only (see conv2d_supports).
cnnk::Support pool2d_supports(const cnnk::Pool2dGeometry& g);
void pool2d_forward(cuda::CudnnContext& ctx, const cnnk::Pool2dGeometry& g, const float* x,
                    float* y);
// cuDNN's backward needs the forward output y as well as x.
void pool2d_backward(cuda::CudnnContext& ctx, const cnnk::Pool2dGeometry& g, const float* x,
                     const float* y, const float* dy, float* dx);

}  // namespace cnn::cudnn
