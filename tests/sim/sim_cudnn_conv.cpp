// The simulated cuDNN's convolutions (the library itself: sim_cudnn.cpp): the algorithm
// queries, the forward, backward-data and backward-filter passes, the backward bias, and
// cudnnAddTensor, with which the engine adds a convolution's bias. A pass runs only an
// algorithm the simulated heuristics offer, given at least the workspace they report for it.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cnnk_sim_cudnn.h"
#include "cnnk_sim_device.h"
#include "cudnn.h"
#include "sim_cudnn_internal.h"

using cnnk_sim::cudnn::bad;
using cnnk_sim::cudnn::Blend;
using cnnk_sim::cudnn::blend_of;
using cnnk_sim::cudnn::ConvParams;
using cnnk_sim::cudnn::described;
using cnnk_sim::cudnn::Dims4;
using cnnk_sim::cudnn::floats;
using cnnk_sim::cudnn::for_channel;
using cnnk_sim::cudnn::host_scalars;
using cnnk_sim::cudnn::on_device;
using cnnk_sim::cudnn::per_channel;
using cnnk_sim::cudnn::Problem;
using cnnk_sim::cudnn::refuse;
using cnnk_sim::cudnn::Region;
using cnnk_sim::cudnn::Regions;
using cnnk_sim::cudnn::submit;
using cnnk_sim::cudnn::unsupported;
using cnnk_sim::cudnn::usable;

namespace {

// set_cudnn_first_algorithm_run_status: the library's state, as the device's size is the
// simulated device's.
std::atomic<cudnnStatus_t> first_algorithm_status{CUDNN_STATUS_SUCCESS};

// The runtime error that the failed launch behind a refusal leaves, as a real cuDNN's
// does: it returns the status and cudaGetLastError still holds the launch's error.
cudaError_t launch_error_behind(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT:
      return cudaErrorInvalidValue;  // more shared memory than a block may have
    case CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH:
      return cudaErrorNoKernelImageForDevice;
    default:
      return cudaSuccess;  // turned down before any launch
  }
}

// A convolution's tensors and parameters as they were when the call was made.
struct ConvShape {
  Dims4 x, w, y;  // w: k, c, r, s
  ConvParams p;
};

// cudnnGetConvolution2dForwardOutputDim's rule for one axis (symmetric padding); 0 when the
// dilated filter does not fit the padded input.
int conv_out_dim(int in, int pad, int window, int dil, int stride) {
  const int span = in + 2 * pad - ((window - 1) * dil + 1);
  return span < 0 ? 0 : span / stride + 1;
}

// The descriptors of a convolution pass, named as that call names them (`names`: the
// input-side tensor, the filter, the output-side tensor), agree with each other.
Problem conv_problem(cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                     cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd,
                     const std::array<const char*, 3>& names, ConvShape* shape) {
  if (Problem p = described(names[0], xd)) return p;
  if (Problem p = described(names[1], wd)) return p;
  if (Problem p = described("convDesc", cd)) return p;
  if (Problem p = described(names[2], yd)) return p;
  const ConvShape s{xd->dims, wd->dims, yd->dims, cd->params};
  if (s.x.c != s.w.c)
    return bad(std::string(names[0]) + " has " + std::to_string(s.x.c) + " channels but " +
               names[1] + " is " + s.w.str() + " (k x c x r x s)");
  const Dims4 out{s.x.n, s.w.n, conv_out_dim(s.x.h, s.p.pad_h, s.w.h, s.p.dil_h, s.p.stride_h),
                  conv_out_dim(s.x.w, s.p.pad_w, s.w.w, s.p.dil_w, s.p.stride_w)};
  if (out.h == 0 || out.w == 0)
    return bad("the dilated filter is larger than the padded input " + s.x.str());
  if (s.y != out)
    return bad(std::string(names[2]) + " is " + s.y.str() + " but the convolution gives " +
               out.str());
  *shape = s;
  return {};
}

// What the simulated heuristics offer for a pass, best first: an algorithm that needs an
// im2col-sized workspace, then a lean one that needs none, then one reported as not
// supported. So a caller's fallback to a leaner algorithm when the first does not fit its
// budget runs, and so does its skipping of entries that failed. Each is reported
// deterministic or not as cuDNN's documentation says of it: the backward passes' lean
// algorithm 0 adds with atomics, so a deterministic caller with no workspace has none.
struct Offer {
  int algo;
  bool needs_buffer;
  cudnnStatus_t status;
  bool deterministic;
};
using Offers = std::array<Offer, 3>;
constexpr Offers kFwdOffers{
    {{CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, CUDNN_STATUS_SUCCESS, true},
     {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, false, CUDNN_STATUS_SUCCESS, true},
     {CUDNN_CONVOLUTION_FWD_ALGO_FFT, false, CUDNN_STATUS_NOT_SUPPORTED, true}}};
constexpr Offers kBwdDataOffers{
    {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, CUDNN_STATUS_SUCCESS, true},
     {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, false, CUDNN_STATUS_SUCCESS, false},
     {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, false, CUDNN_STATUS_NOT_SUPPORTED, true}}};
constexpr Offers kBwdFilterOffers{
    {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, CUDNN_STATUS_SUCCESS, true},
     {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, false, CUDNN_STATUS_SUCCESS, false},
     {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, false, CUDNN_STATUS_NOT_SUPPORTED, true}}};

// The heavy algorithms' workspace: the im2col buffer of the whole batch (n*c*r*s*p*q
// floats), at least 1 MiB.
size_t buffer_bytes(const ConvShape& s) {
  const size_t col = static_cast<size_t>(s.x.n) * static_cast<size_t>(s.w.count()) *
                     static_cast<size_t>(s.y.h) * static_cast<size_t>(s.y.w) * sizeof(float);
  return std::max(col, size_t(1) << 20);
}
size_t offer_bytes(const Offer& o, const ConvShape& s) {
  return o.needs_buffer ? buffer_bytes(s) : 0;
}

template <class Perf, class Algo>
void list_offers(const Offers& offers, const ConvShape& s, cudnnMathType_t math, int requested,
                 int* returned, Perf* perf) {
  const int count = std::min(requested, static_cast<int>(offers.size()));
  for (int i = 0; i < count; ++i) {
    Perf r{};
    r.algo = static_cast<Algo>(offers[static_cast<size_t>(i)].algo);
    r.status = offers[static_cast<size_t>(i)].status;
    r.time = static_cast<float>(i + 1);  // in the order given: the heuristics' ranking
    r.memory = offer_bytes(offers[static_cast<size_t>(i)], s);
    r.determinism = offers[static_cast<size_t>(i)].deterministic ? CUDNN_DETERMINISTIC
                                                                 : CUDNN_NON_DETERMINISTIC;
    r.mathType = math;
    perf[i] = r;
  }
  *returned = count;
}

Problem heuristics_outputs(int requested, const int* returned, const void* perf) {
  if (requested < 1) return bad("requestedAlgoCount must be at least 1");
  if (!returned || !perf) return bad("returnedAlgoCount or perfResults is null");
  return {};
}

// One of the three _v7 heuristics queries: the descriptors checked (named as `call` names
// them), then `offers` listed in order with the workspace each needs.
template <class Perf, class Algo>
cudnnStatus_t query_offers(const char* call, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                           cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                           cudnnTensorDescriptor_t yd, const std::array<const char*, 3>& names,
                           const Offers& offers, int requested, int* returned, Perf* perf) {
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(xd, wd, cd, yd, names, &s)) return refuse(call, p);
  if (Problem p = heuristics_outputs(requested, returned, perf)) return refuse(call, p);
  list_offers<Perf, Algo>(offers, s, cd->math, requested, returned, perf);
  return CUDNN_STATUS_SUCCESS;
}

// The workspace `algo` needs, or why it cannot run.
Problem algorithm_workspace(const Offers& offers, int algo, int algo_count, const ConvShape& s,
                            size_t* bytes) {
  if (algo < 0 || algo >= algo_count)
    return bad("algo " + std::to_string(algo) + " is not an algorithm of this pass");
  for (const Offer& o : offers)
    if (o.algo == algo && o.status == CUDNN_STATUS_SUCCESS) {
      *bytes = offer_bytes(o, s);
      return {};
    }
  return unsupported("algorithm " + std::to_string(algo) + " (it offers " +
                     std::to_string(offers[0].algo) + " and " + std::to_string(offers[1].algo) +
                     ")");
}

// One of the three workspace-size queries: the descriptors checked (named as `call` names
// them), then the workspace of `algo` among `offers`, or NOT_SUPPORTED for one it lacks.
cudnnStatus_t query_workspace(const char* call, cudnnHandle_t handle, cudnnTensorDescriptor_t xd,
                              cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                              cudnnTensorDescriptor_t yd, const std::array<const char*, 3>& names,
                              const Offers& offers, int algo, int algo_count, size_t* bytes) {
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(xd, wd, cd, yd, names, &s)) return refuse(call, p);
  if (!bytes) return refuse(call, bad("sizeInBytes is null"));
  if (Problem p = algorithm_workspace(offers, algo, algo_count, s, bytes)) return refuse(call, p);
  return CUDNN_STATUS_SUCCESS;
}

Problem workspace_problem(const void* workspace, size_t given, size_t needed) {
  if (given < needed)
    return bad("workSpaceSizeInBytes " + std::to_string(given) + " is less than the " +
               std::to_string(needed) + " bytes the algorithm needs");
  if (given > 0 && !cnnk_sim::is_device_memory(workspace, given))
    return bad("workSpace is not device memory covering workSpaceSizeInBytes (" +
               std::to_string(given) + ")");
  return {};
}

// The input row (or column) that output position `out` reads through filter tap `tap`.
int source(int out, int tap, int stride, int pad, int dil) {
  return out * stride - pad + tap * dil;
}
bool inside(int i, int size) { return i >= 0 && i < size; }

// y[n,k,p,q] = sum over c, r, s of x[n, c, source rows/cols] * w[k,c,r,s] (cross-correlation;
// taps in the padding read zero).
std::vector<double> conv_forward(const ConvShape& s, const float* x, const float* w) {
  std::vector<double> y(static_cast<size_t>(s.y.count()));
  for (int n = 0; n < s.y.n; ++n)
    for (int k = 0; k < s.y.c; ++k)
      for (int p = 0; p < s.y.h; ++p)
        for (int q = 0; q < s.y.w; ++q) {
          double sum = 0.0;
          for (int c = 0; c < s.x.c; ++c)
            for (int r = 0; r < s.w.h; ++r) {
              const int ih = source(p, r, s.p.stride_h, s.p.pad_h, s.p.dil_h);
              if (!inside(ih, s.x.h)) continue;
              for (int t = 0; t < s.w.w; ++t) {
                const int iw = source(q, t, s.p.stride_w, s.p.pad_w, s.p.dil_w);
                if (!inside(iw, s.x.w)) continue;
                sum += static_cast<double>(x[s.x.at(n, c, ih, iw)]) *
                       static_cast<double>(w[s.w.at(k, c, r, t)]);
              }
            }
          y[static_cast<size_t>(s.y.at(n, k, p, q))] = sum;
        }
  return y;
}

// The output position that reads input position `in` through tap `tap`, or -1 if none
// (the gather form of the transpose: strides skip some pairs).
int reader(int in, int tap, int stride, int pad, int dil, int out_size) {
  const int t = in + pad - tap * dil;
  if (t < 0 || t % stride != 0) return -1;
  return t / stride < out_size ? t / stride : -1;
}

// dx[n,c,h,w] = sum over k, r, s of dy at the output that read (h, w) through (r, s), times
// w[k,c,r,s].
std::vector<double> conv_backward_data(const ConvShape& s, const float* dy, const float* w) {
  std::vector<double> dx(static_cast<size_t>(s.x.count()));
  for (int n = 0; n < s.x.n; ++n)
    for (int c = 0; c < s.x.c; ++c)
      for (int ih = 0; ih < s.x.h; ++ih)
        for (int iw = 0; iw < s.x.w; ++iw) {
          double sum = 0.0;
          for (int k = 0; k < s.y.c; ++k)
            for (int r = 0; r < s.w.h; ++r) {
              const int p = reader(ih, r, s.p.stride_h, s.p.pad_h, s.p.dil_h, s.y.h);
              if (p < 0) continue;
              for (int t = 0; t < s.w.w; ++t) {
                const int q = reader(iw, t, s.p.stride_w, s.p.pad_w, s.p.dil_w, s.y.w);
                if (q < 0) continue;
                sum += static_cast<double>(dy[s.y.at(n, k, p, q)]) *
                       static_cast<double>(w[s.w.at(k, c, r, t)]);
              }
            }
          dx[static_cast<size_t>(s.x.at(n, c, ih, iw))] = sum;
        }
  return dx;
}

// dw[k,c,r,s] = sum over n, p, q of dy[n,k,p,q] * the x that tap (r, s) read for (p, q).
std::vector<double> conv_backward_filter(const ConvShape& s, const float* x, const float* dy) {
  std::vector<double> dw(static_cast<size_t>(s.w.count()));
  for (int k = 0; k < s.w.n; ++k)
    for (int c = 0; c < s.w.c; ++c)
      for (int r = 0; r < s.w.h; ++r)
        for (int t = 0; t < s.w.w; ++t) {
          double sum = 0.0;
          for (int n = 0; n < s.x.n; ++n)
            for (int p = 0; p < s.y.h; ++p) {
              const int ih = source(p, r, s.p.stride_h, s.p.pad_h, s.p.dil_h);
              if (!inside(ih, s.x.h)) continue;
              for (int q = 0; q < s.y.w; ++q) {
                const int iw = source(q, t, s.p.stride_w, s.p.pad_w, s.p.dil_w);
                if (!inside(iw, s.x.w)) continue;
                sum += static_cast<double>(dy[s.y.at(n, k, p, q)]) *
                       static_cast<double>(x[s.x.at(n, c, ih, iw)]);
              }
            }
          dw[static_cast<size_t>(s.w.at(k, c, r, t))] = sum;
        }
  return dw;
}

// The checks of the three convolution calls beyond the descriptors: scalars, data,
// algorithm and workspace. `regions` gets the workspace added when it has bytes.
Problem conv_call_problem(const void* alpha, const void* beta, Regions* regions,
                          const Offers& offers, int algo, int algo_count, const ConvShape& s,
                          void* workspace, size_t workspace_bytes) {
  if (Problem p = host_scalars(alpha, beta)) return p;
  if (Problem p = on_device(*regions)) return p;
  size_t needed = 0;
  if (Problem p = algorithm_workspace(offers, algo, algo_count, s, &needed)) return p;
  if (const cudnnStatus_t st = first_algorithm_status;
      st != CUDNN_STATUS_SUCCESS && algo == offers[0].algo) {
    cnnk_sim::leave_last_error(launch_error_behind(st));
    return Problem{st, "algorithm " + std::to_string(algo) +
                           " refuses this problem (set_cudnn_first_algorithm_run_status)"};
  }
  if (Problem p = workspace_problem(workspace, workspace_bytes, needed)) return p;
  if (workspace_bytes > 0) regions->push_back(Region{"workSpace", workspace, workspace_bytes});
  return {};
}

// Runs one convolution pass in the handle's stream: the workspace is overwritten with NaN
// bytes first, as an algorithm's scratch use would destroy whatever the caller left there,
// then the result is blended into `out`.
cudnnStatus_t run_conv(cudnnHandle_t handle, const char* call, Regions regions, void* workspace,
                       size_t workspace_bytes, Blend blend, float* out,
                       std::function<std::vector<double>()> compute) {
  return submit(handle, call, std::move(regions),
                [workspace, workspace_bytes, blend, out, compute = std::move(compute)] {
                  if (workspace_bytes > 0) std::memset(workspace, 0xff, workspace_bytes);
                  blend.store_all(compute(), out);
                });
}

}  // namespace

void cnnk_sim::set_cudnn_first_algorithm_run_status(cudnnStatus_t status) {
  first_algorithm_status = status;
}

namespace {
cudnnStatus_t max_count(const char* call, cudnnHandle_t handle, int algorithms, int* count) {
  if (Problem p = usable(handle)) return refuse(call, p);
  if (!count) return refuse(call, bad("count is null"));
  *count = algorithms;
  return CUDNN_STATUS_SUCCESS;
}
}  // namespace

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  return max_count("cudnnGetConvolutionForwardAlgorithmMaxCount", handle,
                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, count);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  return max_count("cudnnGetConvolutionBackwardDataAlgorithmMaxCount", handle,
                   CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, count);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  return max_count("cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", handle,
                   CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, count);
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  return query_offers<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      "cudnnGetConvolutionForwardAlgorithm_v7", handle, srcDesc, filterDesc, convDesc, destDesc,
      {"srcDesc", "filterDesc", "destDesc"}, kFwdOffers, requestedAlgoCount, returnedAlgoCount,
      perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  return query_offers<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      "cudnnGetConvolutionBackwardDataAlgorithm_v7", handle, gradDesc, filterDesc, convDesc,
      diffDesc, {"gradDesc", "filterDesc", "diffDesc"}, kBwdDataOffers, requestedAlgoCount,
      returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  return query_offers<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      "cudnnGetConvolutionBackwardFilterAlgorithm_v7", handle, srcDesc, gradDesc, convDesc,
      diffDesc, {"srcDesc", "gradDesc", "diffDesc"}, kBwdFilterOffers, requestedAlgoCount,
      returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
  return query_workspace("cudnnGetConvolutionForwardWorkspaceSize", handle, xDesc, wDesc, convDesc,
                         yDesc, {"xDesc", "wDesc", "yDesc"}, kFwdOffers, algo,
                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  return query_workspace("cudnnGetConvolutionBackwardDataWorkspaceSize", handle, dxDesc, wDesc,
                         convDesc, dyDesc, {"dxDesc", "wDesc", "dyDesc"}, kBwdDataOffers, algo,
                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
  return query_workspace("cudnnGetConvolutionBackwardFilterWorkspaceSize", handle, xDesc, gradDesc,
                         convDesc, dyDesc, {"xDesc", "gradDesc", "dyDesc"}, kBwdFilterOffers, algo,
                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, sizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                      const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                      size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* call = "cudnnConvolutionForward";
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(xDesc, wDesc, convDesc, yDesc, {"xDesc", "wDesc", "yDesc"}, &s))
    return refuse(call, p);
  Regions regions{{"x", x, s.x.bytes()}, {"w", w, s.w.bytes()}, {"y", y, s.y.bytes()}};
  if (Problem p =
          conv_call_problem(alpha, beta, &regions, kFwdOffers, algo,
                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, s, workSpace, workSpaceSizeInBytes))
    return refuse(call, p);
  const float *xf = floats(x), *wf = floats(w);
  return run_conv(handle, call, std::move(regions), workSpace, workSpaceSizeInBytes,
                  blend_of(alpha, beta), floats(y),
                  [s, xf, wf] { return conv_forward(s, xf, wf); });
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void* w,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* call = "cudnnConvolutionBackwardData";
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(dxDesc, wDesc, convDesc, dyDesc, {"dxDesc", "wDesc", "dyDesc"}, &s))
    return refuse(call, p);
  Regions regions{{"w", w, s.w.bytes()}, {"dy", dy, s.y.bytes()}, {"dx", dx, s.x.bytes()}};
  if (Problem p = conv_call_problem(alpha, beta, &regions, kBwdDataOffers, algo,
                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, s, workSpace,
                                    workSpaceSizeInBytes))
    return refuse(call, p);
  const float *dyf = floats(dy), *wf = floats(w);
  return run_conv(handle, call, std::move(regions), workSpace, workSpaceSizeInBytes,
                  blend_of(alpha, beta), floats(dx),
                  [s, dyf, wf] { return conv_backward_data(s, dyf, wf); });
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void* x,
                                             const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  const char* call = "cudnnConvolutionBackwardFilter";
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(xDesc, dwDesc, convDesc, dyDesc, {"xDesc", "dwDesc", "dyDesc"}, &s))
    return refuse(call, p);
  Regions regions{{"x", x, s.x.bytes()}, {"dy", dy, s.y.bytes()}, {"dw", dw, s.w.bytes()}};
  if (Problem p = conv_call_problem(alpha, beta, &regions, kBwdFilterOffers, algo,
                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, s, workSpace,
                                    workSpaceSizeInBytes))
    return refuse(call, p);
  const float *xf = floats(x), *dyf = floats(dy);
  return run_conv(handle, call, std::move(regions), workSpace, workSpaceSizeInBytes,
                  blend_of(alpha, beta), floats(dw),
                  [s, xf, dyf] { return conv_backward_filter(s, xf, dyf); });
}

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                           void* db) {
  const char* call = "cudnnConvolutionBackwardBias";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("dyDesc", dyDesc)) return refuse(call, p);
  if (Problem p = described("dbDesc", dbDesc)) return refuse(call, p);
  const Dims4 d = dyDesc->dims;
  if (Problem p = per_channel("dbDesc", dbDesc->dims, d.c)) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"dy", dy, d.bytes()}, {"db", db, dbDesc->dims.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float* dyf = floats(dy);
  float* dbf = floats(db);
  const Blend blend = blend_of(alpha, beta);
  // db[k] = the sum of dy over n, h, w.
  return submit(handle, call, std::move(regions), [d, dyf, dbf, blend] {
    for (int k = 0; k < d.c; ++k) {
      double sum = 0.0;
      for_channel(d, k, [&](int64_t i) { sum += static_cast<double>(dyf[i]); });
      blend.store(dbf + k, sum);
    }
  });
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha,
                             const cudnnTensorDescriptor_t aDesc, const void* A, const void* beta,
                             const cudnnTensorDescriptor_t cDesc, void* C) {
  const char* call = "cudnnAddTensor";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("aDesc", aDesc)) return refuse(call, p);
  if (Problem p = described("cDesc", cDesc)) return refuse(call, p);
  const Dims4 a = aDesc->dims, c = cDesc->dims;
  const bool fits = (a.n == c.n || a.n == 1) && (a.c == c.c || a.c == 1) &&
                    (a.h == c.h || a.h == 1) && (a.w == c.w || a.w == 1);
  if (!fits)
    return refuse(call, bad("aDesc " + a.str() + " does not broadcast to cDesc " + c.str() +
                            ": each dimension must match or be 1"));
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"A", A, a.bytes()}, {"C", C, c.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float* af = floats(A);
  float* cf = floats(C);
  const Blend blend = blend_of(alpha, beta);
  // A's dimensions of size 1 are read at index 0 for every index of C's.
  return submit(handle, call, std::move(regions), [a, c, af, cf, blend] {
    for (int n = 0; n < c.n; ++n)
      for (int ch = 0; ch < c.c; ++ch)
        for (int h = 0; h < c.h; ++h)
          for (int w = 0; w < c.w; ++w) {
            const int64_t from =
                a.at(a.n == 1 ? 0 : n, a.c == 1 ? 0 : ch, a.h == 1 ? 0 : h, a.w == 1 ? 0 : w);
            blend.store(cf + c.at(n, ch, h, w), static_cast<double>(af[from]));
          }
  });
}
