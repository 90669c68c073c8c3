#include "engine/ops/pool2d/pool2d_cudnn.h"

#include <fmt/format.h>

#include "engine/backend/cuda/cudnn_context.h"
#include "engine/ops/pool2d/pool2d.h"

namespace cnn::cudnn {
namespace {

using cuda::CudnnContext;
using cuda::TensorDesc;

struct PoolPlan {
  TensorDesc x, y;
  cudnnPoolingDescriptor_t pool = nullptr;
  // cuDNN documents CUDNN_POOLING_MAX's backward as not reproducible run to run (it uses
  // atomics); CUDNN_POOLING_MAX_DETERMINISTIC is, and is what --deterministic asks for.
  PoolPlan(const cnnk::Pool2dGeometry& g, bool deterministic)
      : x(g.n, g.c, g.h, g.w), y(g.n, g.c, g.p, g.q) {
    CNN_CUDA(cudnnCreatePoolingDescriptor(&pool));
    const cudnnPoolingMode_t max =
        deterministic ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_MAX;
    const cudnnPoolingMode_t mode =
        g.mode == cnnk::PoolMode::Max ? max : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    CNN_CUDA(cudnnSetPooling2dDescriptor(pool, mode, CUDNN_NOT_PROPAGATE_NAN, g.window_h,
                                         g.window_w, g.pad_top, g.pad_left, g.stride_h,
                                         g.stride_w));
  }
  ~PoolPlan() {
    if (pool) cudnnDestroyPoolingDescriptor(pool);
  }
  PoolPlan(const PoolPlan&) = delete;
  PoolPlan& operator=(const PoolPlan&) = delete;
};

PoolPlan& plan_for(CudnnContext& ctx, const cnnk::Pool2dGeometry& g) {
  const std::string key = "pool2d " + describe(g);
  return ctx.plan<PoolPlan>(key, [&] { return std::make_unique<PoolPlan>(g, ctx.deterministic); });
}

int cudnn_out(int in, int pad, int window, int stride) {
  const int span = in + 2 * pad - window;
  return span < 0 ? 0 : span / stride + 1;
}

}  // namespace

cnnk::Support pool2d_supports(const cnnk::Pool2dGeometry& g) {
  if (cudnn_out(g.h, g.pad_top, g.window_h, g.stride_h) != g.p ||
      cudnn_out(g.w, g.pad_left, g.window_w, g.stride_w) != g.q)
    return cnnk::Support::no("asymmetric padding that changes the output size");
  if (!cuda::descriptor_fits(g.n, g.c, g.h, g.w))
    return cnnk::Support::no("a tensor over cuDNN's 32-bit element count");
  return cnnk::Support::yes();
}

void pool2d_forward(CudnnContext& ctx, const cnnk::Pool2dGeometry& g, const float* x, float* y) {
  PoolPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnPoolingForward(ctx.handle(), p.pool, &one, p.x.d, x, &zero, p.y.d, y));
}

void pool2d_backward(CudnnContext& ctx, const cnnk::Pool2dGeometry& g, const float* x,
                     const float* y, const float* dy, float* dx) {
  PoolPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnPoolingBackward(ctx.handle(), p.pool, &one, p.y.d, y, p.y.d, dy, p.x.d, x, &zero,
                                p.x.d, dx));
}

}  // namespace cnn::cudnn
