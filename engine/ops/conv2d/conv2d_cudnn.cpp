#include "engine/ops/conv2d/conv2d_cudnn.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "engine/backend/cuda/cudnn_context.h"
#include "engine/core/error.h"
#include "engine/ops/conv2d/conv2d.h"

namespace cnn::cudnn {
namespace {

using cuda::CudnnContext;
using cuda::TensorDesc;

std::string key_of(const cnnk::Conv2dGeometry& g) { return "conv2d " + describe(g); }

// A pass's algorithm and its workspace, chosen on the pass's first use: inference never
// asks for the backward passes' algorithms, which under --deterministic and a small
// workspace budget may not exist. The heuristics' ranking is kept, so that an algorithm
// that refuses to run (run_pass()) gives way to the next.
template <class Perf>
struct Chosen {
  using Algo = decltype(Perf::algo);
  bool made = false;
  std::vector<Perf> ranked;  // the heuristics' list, best first
  size_t index = 0;          // of the chosen entry in `ranked`
  Algo algo{};
  size_t bytes = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;  // set on the descriptor before each run
};

// The math type the heuristics are asked under.
cudnnMathType_t asked_math(bool tf32) { return tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH; }

// Descriptors and the algorithms chosen for one geometry.
struct ConvPlan {
  TensorDesc x, y, bias;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Chosen<cudnnConvolutionFwdAlgoPerf_t> fwd;
  Chosen<cudnnConvolutionBwdDataAlgoPerf_t> bwd_data;
  Chosen<cudnnConvolutionBwdFilterAlgoPerf_t> bwd_filter;

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
    // and later; CUDNN_FMA_MATH forbids them, CUDNN_TENSOR_OP_MATH allows them. This is the
    // math the heuristics are asked under; each pass then runs under the math type of the
    // entry chosen for it (pick()), set on the shared descriptor before the call.
    CNN_CUDA(cudnnSetConvolutionMathType(conv, asked_math(tf32)));
  }
  ~ConvPlan() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
  }
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
};

// cuDNN's names for its algorithms, in the lower-case hyphenated form of the reports.
const char* algorithm_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
      return "implicit-gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
      return "implicit-precomp-gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
      return "gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT:
      return "direct";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
      return "fft";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
      return "fft-tiling";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
      return "winograd";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
      return "winograd-nonfused";
    default:
      return "other";
  }
}
const char* algorithm_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0:
      return "algo-0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1:
      return "algo-1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT:
      return "fft";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING:
      return "fft-tiling";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD:
      return "winograd";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED:
      return "winograd-nonfused";
    default:
      return "other";
  }
}
const char* algorithm_name(cudnnConvolutionBwdFilterAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0:
      return "algo-0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1:
      return "algo-1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT:
      return "fft";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3:
      return "algo-3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED:
      return "winograd-nonfused";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING:
      return "fft-tiling";
    default:
      return "other";
  }
}

// Whether an entry's math type may use tensor cores: never in strict FP32.
bool uses_tensor_cores(cudnnMathType_t math) {
  return math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

const char* math_name(cudnnMathType_t math) {
  switch (math) {
    case CUDNN_DEFAULT_MATH:
      return "default math";
    case CUDNN_TENSOR_OP_MATH:
      return "tensor-op math";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
      return "tensor-op math with conversion";
    case CUDNN_FMA_MATH:
      return "FMA math";
  }
  return "unknown math";
}

// Whether a status says that an algorithm cannot run this problem, so that the next one
// may: cuDNN 9's NOT_SUPPORTED category, but only its sub-codes about the problem (the
// shape, data type, layout, shared memory, padding, a launch parameter). The same category
// holds faults of the installation (a driver or runtime too old, kernels built for other
// GPUs, a missing sub-library or NVRTC), which every algorithm would meet in turn: those
// fail the pass at once with cuDNN's message. (cmake/CnnCuda.cmake requires cuDNN 9.)
bool refused(cudnnStatus_t st) {
  switch (static_cast<int>(st)) {
    case 3000:  // CUDNN_STATUS_NOT_SUPPORTED
    case 3002:  // _SHAPE
    case 3003:  // _DATA_TYPE
    case 3004:  // _LAYOUT
    case 3010:  // _SHARED_MEMORY_INSUFFICIENT
    case 3011:  // _PADDING
    case 3012:  // _BAD_LAUNCH_PARAM
      return true;
    default:
      return false;
  }
}

// The first algorithm in cuDNN's heuristic order (c->ranked, from index `first`) that
// succeeds within the workspace budget and, under --deterministic, that cuDNN reports
// deterministic (its documentation names backward-data algorithm 0 and backward-filter
// algorithms 0 and 3 as using atomics). Passing over an algorithm that would have run is
// logged with the reason; the choice is recorded under `id` ("conv2d <pass> <shape>", the
// backend's choice ids).
//
// The heuristics rank (algorithm, math type) pairs, and an entry's determinism holds for
// its own math type, which may differ from the descriptor's. So under --tf32 the pass runs
// under the entry's math type, but never one that lets cuDNN convert FP32 data to FP16
// (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: 10 bits of mantissa in the data, not only in the
// products). In strict FP32 it runs under CUDNN_FMA_MATH, and an entry that would use
// tensor cores is passed over. The workspace is asked of cuDNN again under the math type
// the pass will run with (`workspace_of(algo, math, &bytes)`, which sets it on the
// descriptor): the entry's figure holds for the entry's math type, and an algorithm that
// cannot run under the final one says so here, where the next entry can be taken, rather
// than failing at its first run.
//
// `passed_over` starts with what the caller already knows of the entries before `first`.
template <class Perf, class WorkspaceOf>
void pick(CudnnContext& ctx, const std::string& id, size_t first, std::string passed_over,
          Chosen<Perf>* c, WorkspaceOf workspace_of) {
  for (size_t i = first; i < c->ranked.size(); ++i) {
    const Perf& p = c->ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    const bool deterministic = p.determinism == CUDNN_DETERMINISTIC;
    const cudnnMathType_t math = ctx.tf32 ? p.mathType : CUDNN_FMA_MATH;
    size_t bytes = p.memory;
    std::string why;
    if (ctx.deterministic && !deterministic)
      why = fmt::format("{} is not deterministic", algorithm_name(p.algo));
    else if (!ctx.tf32 && uses_tensor_cores(p.mathType))
      why = fmt::format("{} would use TF32 tensor cores, not strict FP32", algorithm_name(p.algo));
    else if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
      why = fmt::format("{} would convert the data to FP16", algorithm_name(p.algo));
    else if (const cudnnStatus_t st = workspace_of(p.algo, math, &bytes); refused(st))
      why = fmt::format("{} cannot run under {} ({})", algorithm_name(p.algo), math_name(math),
                        cuda::cudnn_status_text(st));
    else if (st != CUDNN_STATUS_SUCCESS)
      throw DeviceError(fmt::format("cudnn {}: the workspace query for {} under {} failed: {}", id,
                                    algorithm_name(p.algo), math_name(math),
                                    cuda::cudnn_status_text(st)));
    else if ((bytes = std::max(bytes, p.memory)) > ctx.workspace_limit())
      why = fmt::format("{} needs {} bytes of workspace, over the budget of {}",
                        algorithm_name(p.algo), bytes, ctx.workspace_limit());
    if (!why.empty()) {
      passed_over += (passed_over.empty() ? "" : "; ") + why;
      continue;
    }
    c->index = i;
    c->algo = p.algo;
    c->bytes = bytes;
    c->math = math;
    ctx.record_algorithm(id, fmt::format("{}{}", algorithm_name(p.algo),
                                         deterministic ? "" : ", not deterministic"));
    if (!passed_over.empty())
      ctx.log(fmt::format("cudnn {}: {}; using {} ({} bytes)", id, passed_over,
                          algorithm_name(p.algo), bytes));
    return;
  }
  throw DeviceError(fmt::format(
      "cuDNN has no {}algorithm for {} within a workspace of {} bytes{}; raise the workspace "
      "budget (--workspace-mb) or run the native kernels (--impl native)",
      ctx.deterministic ? "deterministic " : "", id, ctx.workspace_limit(),
      passed_over.empty() ? "" : " (" + passed_over + ")"));
}

ConvPlan& plan_for(CudnnContext& ctx, const cnnk::Conv2dGeometry& g) {
  return ctx.plan<ConvPlan>(key_of(g), [&] { return std::make_unique<ConvPlan>(g, ctx.tf32); });
}

// Runs one pass through cuDNN. Its algorithm is chosen by pick() the first time, from what
// `query(count, &returned, perf)` (one of the _v7 heuristics calls) lists, asked for as
// many entries as `max_count` (the pass's cudnnGet*AlgorithmMaxCount, named
// `max_count_call`) says it may give: more than the pass's kCount algorithms where the
// heuristics list an algorithm once per math type, and a shorter array would lose the FMA
// entries ranked below tensor-core ones, which strict FP32 passes over. `size(algo,
// &bytes)` is the pass's workspace-size call, asked under each candidate's final math
// type; `run(algo, workspace, bytes)` is the pass's own call, named `call`. Two things
// only a run can tell pass an algorithm over, and the next candidate takes its place, for
// this run and the later ones, logged: a workspace the GPU has no room for (within the
// budget, but the memory is taken), and kernels that refuse the problem only when asked to
// run it (a refused() status, with nothing enqueued). The pass fails only when no listed
// algorithm runs. A step's first run is not captured (the trainer captures its second), so
// a change of workspace allocates there.
template <int kCount, class Perf, class Query, class Size, class Run>
void run_pass(CudnnContext& ctx, ConvPlan& plan, Chosen<Perf>& c, const std::string& id,
              cudnnStatus_t (*max_count)(cudnnHandle_t, int*), const char* max_count_call,
              Query query, Size size, const char* call, Run run) {
  auto workspace_of = [&](decltype(Perf::algo) algo, cudnnMathType_t math, size_t* bytes) {
    CNN_CUDA(cudnnSetConvolutionMathType(plan.conv, math));
    return size(algo, bytes);
  };
  if (!c.made) {
    // Another pass may have left its entry's math type on the shared descriptor.
    CNN_CUDA(cudnnSetConvolutionMathType(plan.conv, asked_math(ctx.tf32)));
    int count = 0;
    cuda::check(max_count(ctx.handle(), &count), max_count_call, __FILE__, __LINE__);
    count = std::max(count, kCount);
    std::vector<Perf> perf(static_cast<size_t>(count));
    int n = 0;
    query(count, &n, perf.data());
    c.ranked.assign(perf.begin(), perf.begin() + std::clamp(n, 0, count));
    pick(ctx, id, 0, std::string(), &c, workspace_of);
    c.made = true;
  }
  for (;;) {
    void* workspace = nullptr;
    try {
      workspace = ctx.workspace(c.bytes);
    } catch (const OutOfDeviceMemory& e) {
      pick(ctx, id, c.index + 1,
           fmt::format("{} needs {} bytes of workspace, which the GPU has no room for ({})",
                       algorithm_name(c.algo), c.bytes, e.message()),
           &c, workspace_of);
      continue;
    }
    CNN_CUDA(cudnnSetConvolutionMathType(plan.conv, c.math));
    const cudnnStatus_t st = run(c.algo, workspace, c.bytes);
    if (!refused(st)) return cuda::check(st, call, __FILE__, __LINE__);
    // A refusal may come from a launch of cuDNN's that failed (too much shared memory,
    // say), whose error the runtime still holds: it belongs to this refusal, not to the
    // next kernel that checks for one.
    cudaGetLastError();
    pick(ctx, id, c.index + 1,
         fmt::format("{} refused to run ({})", algorithm_name(c.algo), cuda::cudnn_status_text(st)),
         &c, workspace_of);
  }
}

// cuDNN's output size for symmetric padding pad on one axis.
int cudnn_out(int in, int pad, int window, int dil, int stride) {
  const int span = in + 2 * pad - ((window - 1) * dil + 1);
  return span < 0 ? 0 : span / stride + 1;
}

}  // namespace

std::string conv2d_algorithm_id(const char* pass, const cnnk::Conv2dGeometry& g) {
  return fmt::format("conv2d {} {}", pass, describe(g));
}

cnnk::Support conv2d_supports(const cnnk::Conv2dGeometry& g) {
  if (cudnn_out(g.h, g.pad_top, g.r, g.dil_h, g.stride_h) != g.p ||
      cudnn_out(g.w, g.pad_left, g.s, g.dil_w, g.stride_w) != g.q)
    return cnnk::Support::no("asymmetric padding that changes the output size");
  if (!cuda::descriptor_fits(g.n, g.c, g.h, g.w) || !cuda::descriptor_fits(g.n, g.k, g.p, g.q) ||
      !cuda::descriptor_fits(g.k, g.c, g.r, g.s))
    return cnnk::Support::no("a tensor over cuDNN's 32-bit element count");
  return cnnk::Support::yes();
}

void conv2d_forward(CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* x,
                    const float* w, const float* b, float* y) {
  ConvPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  run_pass<CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
      ctx, p, p.fwd, conv2d_algorithm_id("forward", g), cudnnGetConvolutionForwardAlgorithmMaxCount,
      "cudnnGetConvolutionForwardAlgorithmMaxCount",
      [&](int count, int* n, cudnnConvolutionFwdAlgoPerf_t* perf) {
        CNN_CUDA(cudnnGetConvolutionForwardAlgorithm_v7(ctx.handle(), p.x.d, p.w, p.conv, p.y.d,
                                                        count, n, perf));
      },
      [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(ctx.handle(), p.x.d, p.w, p.conv, p.y.d,
                                                       algo, bytes);
      },
      "cudnnConvolutionForward",
      [&](cudnnConvolutionFwdAlgo_t algo, void* workspace, size_t bytes) {
        return cudnnConvolutionForward(ctx.handle(), &one, p.x.d, x, p.w, w, p.conv, algo,
                                       workspace, bytes, &zero, p.y.d, y);
      });
  if (b) CNN_CUDA(cudnnAddTensor(ctx.handle(), &one, p.bias.d, b, &one, p.y.d, y));
}

void conv2d_backward_data(CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* dy,
                          const float* w, float* dx) {
  ConvPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  run_pass<CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      ctx, p, p.bwd_data, conv2d_algorithm_id("backward-data", g),
      cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
      "cudnnGetConvolutionBackwardDataAlgorithmMaxCount",
      [&](int count, int* n, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        CNN_CUDA(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.handle(), p.w, p.y.d, p.conv,
                                                             p.x.d, count, n, perf));
      },
      [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.handle(), p.w, p.y.d, p.conv, p.x.d,
                                                            algo, bytes);
      },
      "cudnnConvolutionBackwardData",
      [&](cudnnConvolutionBwdDataAlgo_t algo, void* workspace, size_t bytes) {
        return cudnnConvolutionBackwardData(ctx.handle(), &one, p.w, w, p.y.d, dy, p.conv, algo,
                                            workspace, bytes, &zero, p.x.d, dx);
      });
}

void conv2d_backward_filter(CudnnContext& ctx, const cnnk::Conv2dGeometry& g, const float* x,
                            const float* dy, float* dw, float* db) {
  ConvPlan& p = plan_for(ctx, g);
  const float one = 1.0f, zero = 0.0f;
  run_pass<CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      ctx, p, p.bwd_filter, conv2d_algorithm_id("backward-filter", g),
      cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
      "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount",
      [&](int count, int* n, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        CNN_CUDA(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.handle(), p.x.d, p.y.d, p.conv,
                                                               p.w, count, n, perf));
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.handle(), p.x.d, p.y.d, p.conv,
                                                              p.w, algo, bytes);
      },
      "cudnnConvolutionBackwardFilter",
      [&](cudnnConvolutionBwdFilterAlgo_t algo, void* workspace, size_t bytes) {
        return cudnnConvolutionBackwardFilter(ctx.handle(), &one, p.x.d, x, p.y.d, dy, p.conv, algo,
                                              workspace, bytes, &zero, p.w, dw);
      });
  if (db)
    CNN_CUDA(cudnnConvolutionBackwardBias(ctx.handle(), &one, p.y.d, dy, &zero, p.bias.d, db));
}

}  // namespace cnn::cudnn
