#include "engine/ops/activation/activation_cudnn.h"

#include "engine/backend/cuda/cudnn_context.h"
#include "engine/core/error.h"

namespace cnn::cudnn {
namespace {

using cuda::CudnnContext;
using cuda::TensorDesc;

struct ActDesc {
  cudnnActivationDescriptor_t d = nullptr;
  explicit ActDesc(Activation a) {
    cudnnActivationMode_t mode = CUDNN_ACTIVATION_RELU;
    switch (a) {
      case Activation::Relu:
        mode = CUDNN_ACTIVATION_RELU;
        break;
      case Activation::Sigmoid:
        mode = CUDNN_ACTIVATION_SIGMOID;
        break;
      case Activation::Tanh:
        mode = CUDNN_ACTIVATION_TANH;
        break;
      default:
        throw Error("cuDNN activation descriptor for a non-elementwise activation");
    }
    CNN_CUDA(cudnnCreateActivationDescriptor(&d));
    CNN_CUDA(cudnnSetActivationDescriptor(d, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  }
  ~ActDesc() {
    if (d) cudnnDestroyActivationDescriptor(d);
  }
  ActDesc(const ActDesc&) = delete;
  ActDesc& operator=(const ActDesc&) = delete;
};

}  // namespace

void activation_forward(CudnnContext& ctx, Activation a, const ActivationGeometry& g,
                        const float* x, float* y) {
  const float one = 1.0f, zero = 0.0f;
  TensorDesc t(g.n, g.c, g.spatial, 1);
  if (a == Activation::Softmax) {
    CNN_CUDA(cudnnSoftmaxForward(ctx.handle(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL,
                                 &one, t.d, x, &zero, t.d, y));
    return;
  }
  ActDesc act(a);
  CNN_CUDA(cudnnActivationForward(ctx.handle(), act.d, &one, t.d, x, &zero, t.d, y));
}

void activation_backward(CudnnContext& ctx, Activation a, const ActivationGeometry& g,
                         const float* y, const float* dy, float* dx) {
  const float one = 1.0f, zero = 0.0f;
  TensorDesc t(g.n, g.c, g.spatial, 1);
  if (a == Activation::Softmax) {
    CNN_CUDA(cudnnSoftmaxBackward(ctx.handle(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL,
                                  &one, t.d, y, t.d, dy, &zero, t.d, dx));
    return;
  }
  ActDesc act(a);
  CNN_CUDA(
      cudnnActivationBackward(ctx.handle(), act.d, &one, t.d, y, t.d, dy, t.d, y, &zero, t.d, dx));
}

}  // namespace cnn::cudnn
