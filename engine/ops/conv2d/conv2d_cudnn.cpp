#include "engine/ops/conv2d/conv2d_cudnn.h"

#include <fmt/format.h>

#include "engine/backend/cuda/cudnn_context.h"
#include "engine/core/error.h"
#include "engine/ops/conv2d/conv2d.h"

namespace cnn::cudnn {
namespace {

using cuda::CudnnContext;
using cuda::TensorDesc;

std::string key_of(const cnnk::Conv2dGeometry& g) { return "conv2d " + describe(g); }

// Descriptors and the algorithms chosen for one geometry.
struct ConvPlan {
  TensorDesc x, y, bias;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;

  ConvPlan(const cnnk::Conv2dGeometry& g, bool tf32)
      : x(g.n, g.c, g.h, g.w), y(g.n, g.k, g.p, g.q), bias(1, g.k, 1, 1) {
    CNN_CUDA(cudnnCreateFilterDescriptor(&w));
    CNN_CUDA(
        cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.k, g.c, g.r, g.s));
    CNN_CUDA(cudnnCreateConvolutionDescriptor(&conv));
    CNN_CUDA(cudnnSetConvolution2dDescriptor(conv, g.pad_top, g.pad_left, g.stride_h, g.stride_w,
                                             g.dil_h, g.dil_w, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT));
    // Strict FP32 unless --tf32: CUDNN_DEFAULT_MATH would allow TF32 tensor cores on Ampere
    // and later; CUDNN_FMA_MATH forbids them, CUDNN_TENSOR_OP_MATH allows them.
    CNN_CUDA(cudnnSetConvolutionMathType(conv, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  }
  ~ConvPlan() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
  }
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
};

// The first algorithm in cuDNN's heuristic order that succeeds within the budget.
template <class Perf, class Algo>
void pick(CudnnContext& ctx, const char* pass, const std::string& key, const Perf* perf, int count,
          Algo* algo, size_t* bytes) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (perf[i].memory > ctx.workspace_limit()) continue;
    *algo = perf[i].algo;
    *bytes = perf[i].memory;
    if (i > 0 && perf[0].status == CUDNN_STATUS_SUCCESS)
      ctx.log(
          fmt::format("cudnn {} {}: algorithm {} needs {} bytes of workspace, over the "
                      "budget of {}; using algorithm {} ({} bytes)",
                      pass, key, static_cast<int>(perf[0].algo), perf[0].memory,
                      ctx.workspace_limit(), static_cast<int>(perf[i].algo), perf[i].memory));
    return;
  }
  throw DeviceError(fmt::format("cuDNN has no {} algorithm for {} within a workspace of {} bytes",
                                pass, key, ctx.workspace_limit()));
}

ConvPlan& plan_for(CudnnContext& ctx, const cnnk::Conv2dGeometry& g) {
  const std::string key = key_of(g);
  return ctx.plan<ConvPlan>(key, [&] {
    auto p = std::make_unique<ConvPlan>(g, ctx.tf32);
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CNN_CUDA(cudnnGetConvolutionForwardAlgorithm_v7(ctx.handle(), p->x.d, p->w, p->conv, p->y.d,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fwd));
    pick(ctx, "forward", key, fwd, n, &p->fwd, &p->fwd_bytes);
    cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CNN_CUDA(
        cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.handle(), p->w, p->y.d, p->conv, p->x.d,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, bd));
    pick(ctx, "backward-data", key, bd, n, &p->bwd_data, &p->bwd_data_bytes);
    cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CNN_CUDA(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        ctx.handle(), p->x.d, p->y.d, p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
        bf));
    pick(ctx, "backward-filter", key, bf, n, &p->bwd_filter, &p->bwd_filter_bytes);
    return p;
  });
}

// cuDNN's output size for symmetric padding pad on one axis.
int cudnn_out(int in, int pad, int window, int dil, int stride) {
  const int span = in + 2 * pad - ((window - 1) * dil + 1);
  return span < 0 ? 0 : span / stride + 1;
}

}  // namespace

cnnk::Support conv2d_supports(const cnnk::Conv2dGeometry& g) {
  if (cudnn_out(g.h, g.pad_top, g.r, g.dil_h, g.stride_h) != g.p ||
      cudnn_out(g.w, g.pad_left, g.s, g.dil_w, g.stride_w) != g.q)
    return cnnk::Support::no("asymmetric padding that changes the output size");
  return cnnk::Support::yes();
}

void conv2d_forward(CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* x,
                    const float* w, const float* b, float* y) {
  ConvPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnConvolutionForward(ctx.handle(), &one, p.x.d, x, p.w, w, p.conv, p.fwd,
                                   ctx.workspace(p.fwd_bytes), p.fwd_bytes, &zero, p.y.d, y));
  if (b) CNN_CUDA(cudnnAddTensor(ctx.handle(), &one, p.bias.d, b, &one, p.y.d, y));
}

void conv2d_backward_data(CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* dy,
                          const float* w, float* dx) {
  ConvPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnConvolutionBackwardData(ctx.handle(), &one, p.w, w, p.y.d, dy, p.conv, p.bwd_data,
                                        ctx.workspace(p.bwd_data_bytes), p.bwd_data_bytes, &zero,
                                        p.x.d, dx));
}

void conv2d_backward_filter(CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* x,
                            const float* dy, float* dw, float* db) {
  ConvPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  CNN_CUDA(cudnnConvolutionBackwardFilter(ctx.handle(), &one, p.x.d, x, p.y.d, dy, p.conv,
                                          p.bwd_filter, ctx.workspace(p.bwd_filter_bytes),
                                          p.bwd_filter_bytes, &zero, p.w, dw));
  if (db)
    CNN_CUDA(cudnnConvolutionBackwardBias(ctx.handle(), &one, p.y.d, dy, &zero, p.bias.d, db));
}

}  // namespace cnn::cudnn
