// The simulated cuDNN (include/cudnn.h): the legacy calls the engine makes, as plain loops
// with double accumulation over NCHW float32 tensors, on the simulated device's streams
// (cnnk_sim::enqueue), so that a captured call runs at each replay with the values it was
// given.
//
// Each call first checks what the real library would refuse, or what would make it compute
// garbage on a GPU (a pointer that is not device memory covering its tensor, shapes that do
// not agree, a workspace too small for the algorithm), and refuses with a status and a
// message (cudnnGetLastErrorString, and stderr) instead of running.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cnnk_sim_device.h"
#include "cudnn.h"

namespace {

// The dimensions of an NCHW float32 tensor (a filter's k, c, r, s as n, c, h, w).
struct Dims4 {
  int n = 0, c = 0, h = 0, w = 0;

  int64_t count() const { return int64_t(n) * c * h * w; }
  size_t bytes() const { return static_cast<size_t>(count()) * sizeof(float); }
  int64_t at(int in, int ic, int ih, int iw) const {
    return ((int64_t(in) * c + ic) * h + ih) * w + iw;
  }
  bool operator==(const Dims4& o) const { return n == o.n && c == o.c && h == o.h && w == o.w; }
  bool operator!=(const Dims4& o) const { return !(*this == o); }
  std::string str() const {
    return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
           std::to_string(w);
  }
};

struct ConvParams {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
};

struct PoolParams {
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  int window_h = 1, window_w = 1, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
};

}  // namespace

// The opaque objects of cudnn.h. `set`: whether a Set call has filled the descriptor.
struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  bool set = false;
  Dims4 dims;
};
struct cudnnFilterStruct {
  bool set = false;
  Dims4 dims;
};
struct cudnnConvolutionStruct {
  bool set = false;
  ConvParams params;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // recorded; the results are FP32 regardless
};
struct cudnnPoolingStruct {
  bool set = false;
  PoolParams params;
};
struct cudnnActivationStruct {
  bool set = false;
  cudnnActivationMode_t mode = CUDNN_ACTIVATION_RELU;
};

namespace {

// ---- Refusals ----------------------------------------------------------------------------

// Why a call is refused; no status when it is acceptable.
struct Problem {
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  std::string why;
  explicit operator bool() const { return status != CUDNN_STATUS_SUCCESS; }
};
Problem bad(std::string why) { return Problem{CUDNN_STATUS_BAD_PARAM, std::move(why)}; }
Problem unsupported(std::string why) {
  return Problem{CUDNN_STATUS_NOT_SUPPORTED, "the simulated cuDNN does not model " + why};
}

// The message cudnnGetLastErrorString hands out, per host thread as cuDNN keeps it.
thread_local std::string t_last_message;

cudnnStatus_t refuse(const char* call, const Problem& p) {
  t_last_message = std::string(call) + ": " + p.why;
  std::fprintf(stderr, "simulated cuDNN: %s\n", t_last_message.c_str());
  return p.status;
}

// ---- Checks shared by the calls --------------------------------------------------------------

Problem usable(cudnnHandle_t handle) { return handle ? Problem{} : bad("the handle is null"); }

// A descriptor argument: present and filled by its Set call.
template <class Desc>
Problem described(const char* name, const Desc* d) {
  if (!d) return bad(std::string(name) + " is null");
  if (!d->set) return bad(std::string(name) + " was created but never set");
  return {};
}

// cuDNN reads the scaling factors from host memory when the call is made.
Problem host_scalars(const void* alpha, const void* beta) {
  if (!alpha || !beta) return bad("a scaling factor (alpha or beta) is null");
  if (cnnk_sim::is_device_memory(alpha, sizeof(float)) ||
      cnnk_sim::is_device_memory(beta, sizeof(float)))
    return bad(
        "a scaling factor (alpha or beta) points to device memory; cuDNN reads them "
        "from host memory");
  return {};
}

// Device memory a call touches: checked when the call is made, and again when the work
// runs, since a replay of a captured call can come after the memory was freed.
struct Region {
  const char* name;
  const void* p;
  size_t bytes;
};
using Regions = std::vector<Region>;

Problem on_device(const Regions& regions) {
  for (const Region& r : regions)
    if (!cnnk_sim::is_device_memory(r.p, r.bytes))
      return bad(std::string(r.name) + (r.p ? "" : " (null)") +
                 " is not device memory covering its " + std::to_string(r.bytes) + " bytes");
  return {};
}

Problem same_dims(const char* a_name, const Dims4& a, const char* b_name, const Dims4& b) {
  if (a == b) return {};
  return bad(std::string(a_name) + " is " + a.str() + " but " + b_name + " is " + b.str() +
             "; they must agree");
}

// The per-channel parameter tensors of batch norm and the bias of a convolution: 1xCx1x1.
Problem per_channel(const char* name, const Dims4& d, int channels) {
  const Dims4 want{1, channels, 1, 1};
  if (d == want) return {};
  return bad(std::string(name) + " is " + d.str() + "; it must be " + want.str());
}

// ---- Running the work ---------------------------------------------------------------------------

// The scaling of an output: out = alpha * result + beta * out. With beta == 0 the prior
// output is not read (it may be NaN), as cuDNN documents.
struct Blend {
  float alpha = 1.0f, beta = 0.0f;

  void store(float* out, double result) const {
    double v = static_cast<double>(alpha) * result;
    if (beta != 0.0f) v += static_cast<double>(beta) * static_cast<double>(*out);
    *out = static_cast<float>(v);
  }
  void store_all(const std::vector<double>& results, float* out) const {
    for (size_t i = 0; i < results.size(); ++i) store(out + i, results[i]);
  }
};
// The values behind the host pointers, now: a captured call keeps these.
Blend blend_of(const void* alpha, const void* beta) {
  return Blend{*static_cast<const float*>(alpha), *static_cast<const float*>(beta)};
}

// Puts `work` in the handle's stream: it runs now, or at each replay of a capture.
cudnnStatus_t submit(cudnnHandle_t handle, const char* call, Regions regions,
                     std::function<void()> work) {
  const cudaError_t queued =
      cnnk_sim::enqueue(handle->stream, call, [call, regions = std::move(regions), work] {
        if (Problem p = on_device(regions)) {
          cnnk_sim::report(cudaErrorLaunchFailure,
                           std::string("simulated cuDNN: ") + call + " when it ran: " + p.why);
          return;
        }
        work();
      });
  if (queued == cudaSuccess) return CUDNN_STATUS_SUCCESS;
  return refuse(call,
                Problem{CUDNN_STATUS_EXECUTION_FAILED,
                        std::string("the stream refused the work: ") + cudaGetErrorString(queued)});
}

const float* floats(const void* p) { return static_cast<const float*>(p); }
float* floats(void* p) { return static_cast<float*>(p); }

// ---- Convolution
// -----------------------------------------------------------------------------------

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
// budget runs, and so does its skipping of entries that failed.
struct Offer {
  int algo;
  bool needs_buffer;
  cudnnStatus_t status;
};
using Offers = std::array<Offer, 3>;
constexpr Offers kFwdOffers{
    {{CUDNN_CONVOLUTION_FWD_ALGO_GEMM, true, CUDNN_STATUS_SUCCESS},
     {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, false, CUDNN_STATUS_SUCCESS},
     {CUDNN_CONVOLUTION_FWD_ALGO_FFT, false, CUDNN_STATUS_NOT_SUPPORTED}}};
constexpr Offers kBwdDataOffers{
    {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, CUDNN_STATUS_SUCCESS},
     {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, false, CUDNN_STATUS_SUCCESS},
     {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, false, CUDNN_STATUS_NOT_SUPPORTED}}};
constexpr Offers kBwdFilterOffers{
    {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, CUDNN_STATUS_SUCCESS},
     {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, false, CUDNN_STATUS_SUCCESS},
     {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, false, CUDNN_STATUS_NOT_SUPPORTED}}};

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
    r.determinism = CUDNN_DETERMINISTIC;
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

// ---- Pooling
// -----------------------------------------------------------------------------------------

struct PoolShape {
  Dims4 x, y;
  PoolParams p;
};

// cudnnGetPooling2dForwardOutputDim's rule for one axis; 0 when the window does not fit.
int pool_out_dim(int in, int pad, int window, int stride) {
  const int span = in + 2 * pad - window;
  return span < 0 ? 0 : span / stride + 1;
}

// The output tensor(s) of a pooling agree with its input and window.
Problem pool_problem(const PoolShape& s, const char* y_name) {
  const Dims4 out{s.x.n, s.x.c, pool_out_dim(s.x.h, s.p.pad_h, s.p.window_h, s.p.stride_h),
                  pool_out_dim(s.x.w, s.p.pad_w, s.p.window_w, s.p.stride_w)};
  if (out.h == 0 || out.w == 0)
    return bad("the window is larger than the padded input " + s.x.str());
  if (s.y != out)
    return bad(std::string(y_name) + " is " + s.y.str() + " but the pooling gives " + out.str());
  return {};
}

// The in-bounds part [begin, end) of the window of output position `out` on one axis.
struct Span {
  int begin, end;
};
Span window(int out, int stride, int pad, int size, int extent) {
  const int start = out * stride - pad;
  return Span{std::max(start, 0), std::min(start + size, extent)};
}
Span window_rows(const PoolShape& s, int p) {
  return window(p, s.p.stride_h, s.p.pad_h, s.p.window_h, s.x.h);
}
Span window_cols(const PoolShape& s, int q) {
  return window(q, s.p.stride_w, s.p.pad_w, s.p.window_w, s.x.w);
}

// Max: padding never wins (and a NaN input does not either: CUDNN_NOT_PROPAGATE_NAN).
// Average: the mean of the in-bounds inputs (CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING).
std::vector<double> pool_forward(const PoolShape& s, const float* x) {
  std::vector<double> y(static_cast<size_t>(s.y.count()));
  for (int n = 0; n < s.y.n; ++n)
    for (int c = 0; c < s.y.c; ++c)
      for (int p = 0; p < s.y.h; ++p)
        for (int q = 0; q < s.y.w; ++q) {
          const Span rows = window_rows(s, p), cols = window_cols(s, q);
          double best = -std::numeric_limits<double>::infinity(), sum = 0.0;
          for (int h = rows.begin; h < rows.end; ++h)
            for (int w = cols.begin; w < cols.end; ++w) {
              const double v = static_cast<double>(x[s.x.at(n, c, h, w)]);
              if (v > best) best = v;
              sum += v;
            }
          const int count = (rows.end - rows.begin) * (cols.end - cols.begin);
          y[static_cast<size_t>(s.y.at(n, c, p, q))] =
              s.p.mode == CUDNN_POOLING_MAX ? best : sum / count;
        }
  return y;
}

// The gradient of a max window goes to the first input (in row-major order) equal to the
// forward's output y, which is how y enters the computation: a y that is not the forward's
// output leaves windows without a winner, reported as a failed kernel would be. Average
// windows spread it evenly over their in-bounds inputs.
std::vector<double> pool_backward(const PoolShape& s, const float* y, const float* dy,
                                  const float* x, int64_t* orphans) {
  std::vector<double> dx(static_cast<size_t>(s.x.count()), 0.0);
  *orphans = 0;
  for (int n = 0; n < s.y.n; ++n)
    for (int c = 0; c < s.y.c; ++c)
      for (int p = 0; p < s.y.h; ++p)
        for (int q = 0; q < s.y.w; ++q) {
          const Span rows = window_rows(s, p), cols = window_cols(s, q);
          const int64_t o = s.y.at(n, c, p, q);
          const double g = static_cast<double>(dy[o]);
          if (s.p.mode == CUDNN_POOLING_MAX) {
            int64_t winner = -1;
            for (int h = rows.begin; h < rows.end && winner < 0; ++h)
              for (int w = cols.begin; w < cols.end && winner < 0; ++w)
                if (x[s.x.at(n, c, h, w)] == y[o]) winner = s.x.at(n, c, h, w);
            if (winner < 0)
              ++*orphans;
            else
              dx[static_cast<size_t>(winner)] += g;
          } else {
            const int count = (rows.end - rows.begin) * (cols.end - cols.begin);
            for (int h = rows.begin; h < rows.end; ++h)
              for (int w = cols.begin; w < cols.end; ++w)
                dx[static_cast<size_t>(s.x.at(n, c, h, w))] += g / count;
          }
        }
  return dx;
}

// ---- Batch normalization
// ------------------------------------------------------------------------------

// Calls `f` with the index of every element of channel `c`: the (n, h, w) it reduces over.
template <class F>
void for_channel(const Dims4& d, int c, F f) {
  for (int n = 0; n < d.n; ++n)
    for (int h = 0; h < d.h; ++h)
      for (int w = 0; w < d.w; ++w) f(d.at(n, c, h, w));
}

// A channel's mean and its biased variance over the batch.
struct Moments {
  double mean, var;
};
Moments moments(const Dims4& d, const float* x, int c) {
  const double m = static_cast<double>(d.n) * d.h * d.w;
  double sum = 0.0, sq = 0.0;
  for_channel(d, c, [&](int64_t i) { sum += static_cast<double>(x[i]); });
  const double mean = sum / m;
  for_channel(d, c, [&](int64_t i) {
    const double e = static_cast<double>(x[i]) - mean;
    sq += e * e;
  });
  return Moments{mean, sq / m};
}

// Only the spatial mode (statistics per channel over n, h, w) is modelled.
Problem bn_mode(cudnnBatchNormMode_t mode) {
  if (mode == CUDNN_BATCHNORM_SPATIAL) return {};
  if (mode == CUDNN_BATCHNORM_PER_ACTIVATION || mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT)
    return unsupported("batch-norm mode " + std::to_string(static_cast<int>(mode)) +
                       " (only CUDNN_BATCHNORM_SPATIAL)");
  return bad("mode is not a cudnnBatchNormMode_t");
}

Problem bn_epsilon(double epsilon) {
  if (epsilon >= CUDNN_BN_MIN_EPSILON) return {};
  return bad("epsilon " + std::to_string(epsilon) + " is below CUDNN_BN_MIN_EPSILON");
}

// Optional outputs that cuDNN takes in pairs: both null or both given.
Problem pair_given(const char* names, const void* a, const void* b) {
  if (!a == !b) return {};
  return bad(std::string(names) + ": one is null and the other is not; give both or neither");
}

// The descriptors of a batch-norm call: x-like tensors all alike, parameters 1xCx1x1.
Problem bn_shapes(cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t y, const char* y_name,
                  cudnnTensorDescriptor_t param, const char* param_name) {
  if (Problem p = described("xDesc", x)) return p;
  if (Problem p = described(y_name, y)) return p;
  if (Problem p = described(param_name, param)) return p;
  if (Problem p = same_dims("xDesc", x->dims, y_name, y->dims)) return p;
  return per_channel(param_name, param->dims, x->dims.c);
}

// ---- Activations and softmax
// --------------------------------------------------------------------------

double activate(cudnnActivationMode_t mode, double x) {
  switch (mode) {
    case CUDNN_ACTIVATION_RELU:
      return x > 0.0 ? x : 0.0;
    case CUDNN_ACTIVATION_SIGMOID:
      // exp of a non-positive argument only, so a large |x| does not overflow.
      return x >= 0.0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
    case CUDNN_ACTIVATION_TANH:
      return std::tanh(x);
    default:
      return std::numeric_limits<double>::quiet_NaN();  // refused at cudnnSetActivationDescriptor
  }
}

// dx from the forward's input x, output y and the incoming gradient dy.
double activate_grad(cudnnActivationMode_t mode, double x, double y, double dy) {
  switch (mode) {
    case CUDNN_ACTIVATION_RELU:
      return x > 0.0 ? dy : 0.0;
    case CUDNN_ACTIVATION_SIGMOID:
      return dy * y * (1.0 - y);
    case CUDNN_ACTIVATION_TANH:
      return dy * (1.0 - y * y);
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

// Softmax over the channels at every (n, h, w): CUDNN_SOFTMAX_MODE_CHANNEL.
template <class F>
void for_channel_columns(const Dims4& d, F f) {
  for (int n = 0; n < d.n; ++n)
    for (int h = 0; h < d.h; ++h)
      for (int w = 0; w < d.w; ++w) f(d.at(n, 0, h, w), int64_t(d.h) * d.w);
}

Problem softmax_kind(cudnnSoftmaxAlgorithm_t algo, cudnnSoftmaxMode_t mode) {
  if (algo != CUDNN_SOFTMAX_ACCURATE)
    return unsupported("softmax algorithm " + std::to_string(static_cast<int>(algo)) +
                       " (only CUDNN_SOFTMAX_ACCURATE)");
  if (mode != CUDNN_SOFTMAX_MODE_CHANNEL)
    return unsupported("softmax mode " + std::to_string(static_cast<int>(mode)) +
                       " (only CUDNN_SOFTMAX_MODE_CHANNEL)");
  return {};
}

// Two or more descriptors of an elementwise call: set, and all alike.
Problem alike(std::initializer_list<std::pair<const char*, cudnnTensorDescriptor_t>> descs) {
  for (const auto& d : descs)
    if (Problem p = described(d.first, d.second)) return p;
  const auto& first = *descs.begin();
  for (const auto& d : descs)
    if (Problem p = same_dims(first.first, first.second->dims, d.first, d.second->dims)) return p;
  return {};
}

}  // namespace

// ==== The API ==================================================================================

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED:
      return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR:
      return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (!message || max_size == 0) return;
  const size_t n = std::min(t_last_message.size(), max_size - 1);
  std::memcpy(message, t_last_message.data(), n);
  message[n] = '\0';
  t_last_message.clear();
}

// ---- Handle ------------------------------------------------------------------------------------

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return refuse("cudnnCreate", bad("the handle pointer is null"));
  *handle = new cudnnContext;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  if (Problem p = usable(handle)) return refuse("cudnnSetStream", p);
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

// ---- Descriptors
// ---------------------------------------------------------------------------------

namespace {

template <class Desc>
cudnnStatus_t create(const char* call, Desc** d) {
  if (!d) return refuse(call, bad("the descriptor pointer is null"));
  *d = new Desc;
  return CUDNN_STATUS_SUCCESS;
}

// The four dimensions of a tensor or filter descriptor: NCHW float32, none empty.
Problem dims_problem(cudnnTensorFormat_t format, cudnnDataType_t type, const Dims4& d) {
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return bad("format is not a cudnnTensorFormat_t");
  if (format != CUDNN_TENSOR_NCHW) return unsupported("layouts other than CUDNN_TENSOR_NCHW");
  if (type != CUDNN_DATA_FLOAT) return unsupported("data types other than CUDNN_DATA_FLOAT");
  if (d.n < 0 || d.c < 0 || d.h < 0 || d.w < 0) return bad("negative dimension in " + d.str());
  if (d.count() == 0) return unsupported("empty tensors (" + d.str() + ")");
  if (d.count() > std::numeric_limits<int32_t>::max())
    return unsupported("tensors of more than 2^31 - 1 elements (" + d.str() + ")");
  return {};
}

}  // namespace

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
  return create("cudnnCreateTensorDescriptor", tensorDesc);
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  delete tensorDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc,
                                         cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                         int n, int c, int h, int w) {
  const char* call = "cudnnSetTensor4dDescriptor";
  if (!tensorDesc) return refuse(call, bad("tensorDesc is null"));
  const Dims4 d{n, c, h, w};
  if (Problem p = dims_problem(format, dataType, d)) return refuse(call, p);
  tensorDesc->dims = d;
  tensorDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
  return create("cudnnCreateFilterDescriptor", filterDesc);
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  delete filterDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  const char* call = "cudnnSetFilter4dDescriptor";
  if (!filterDesc) return refuse(call, bad("filterDesc is null"));
  const Dims4 d{k, c, h, w};
  if (Problem p = dims_problem(format, dataType, d)) return refuse(call, p);
  filterDesc->dims = d;
  filterDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  return create("cudnnCreateConvolutionDescriptor", convDesc);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  delete convDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  const char* call = "cudnnSetConvolution2dDescriptor";
  if (!convDesc) return refuse(call, bad("convDesc is null"));
  if (pad_h < 0 || pad_w < 0) return refuse(call, bad("negative padding"));
  if (u <= 0 || v <= 0) return refuse(call, bad("a stride is not positive"));
  if (dilation_h <= 0 || dilation_w <= 0) return refuse(call, bad("a dilation is not positive"));
  if (mode == CUDNN_CONVOLUTION)
    return refuse(call, unsupported("CUDNN_CONVOLUTION (flipped filters); only "
                                    "CUDNN_CROSS_CORRELATION"));
  if (mode != CUDNN_CROSS_CORRELATION) return refuse(call, bad("mode is not a convolution mode"));
  if (computeType != CUDNN_DATA_FLOAT)
    return refuse(call, unsupported("compute types other than CUDNN_DATA_FLOAT"));
  convDesc->params = ConvParams{pad_h, pad_w, u, v, dilation_h, dilation_w};
  convDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType) {
  const char* call = "cudnnSetConvolutionMathType";
  if (!convDesc) return refuse(call, bad("convDesc is null"));
  switch (mathType) {
    case CUDNN_DEFAULT_MATH:
    case CUDNN_TENSOR_OP_MATH:
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
    case CUDNN_FMA_MATH:
      convDesc->math = mathType;
      return CUDNN_STATUS_SUCCESS;
  }
  return refuse(call, bad("mathType is not a cudnnMathType_t"));
}
cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t* mathType) {
  if (!convDesc || !mathType)
    return refuse("cudnnGetConvolutionMathType", bad("convDesc or mathType is null"));
  *mathType = convDesc->math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* poolingDesc) {
  return create("cudnnCreatePoolingDescriptor", poolingDesc);
}
cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t poolingDesc) {
  delete poolingDesc;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t poolingDesc,
                                          cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight,
                                          int windowWidth, int verticalPadding,
                                          int horizontalPadding, int verticalStride,
                                          int horizontalStride) {
  const char* call = "cudnnSetPooling2dDescriptor";
  if (!poolingDesc) return refuse(call, bad("poolingDesc is null"));
  if (windowHeight <= 0 || windowWidth <= 0 || verticalStride <= 0 || horizontalStride <= 0)
    return refuse(call, bad("a window size or stride is not positive"));
  if (verticalPadding < 0 || horizontalPadding < 0) return refuse(call, bad("negative padding"));
  if (mode != CUDNN_POOLING_MAX && mode != CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING)
    return refuse(call, unsupported("pooling mode " + std::to_string(static_cast<int>(mode)) +
                                    " (only MAX and AVERAGE_COUNT_EXCLUDE_PADDING)"));
  if (maxpoolingNanOpt != CUDNN_NOT_PROPAGATE_NAN)
    return refuse(call, unsupported("NaN propagation (only CUDNN_NOT_PROPAGATE_NAN)"));
  // A window could then lie wholly in the padding, whose result cuDNN does not document.
  if (verticalPadding >= windowHeight || horizontalPadding >= windowWidth)
    return refuse(call, unsupported("padding as large as the window"));
  poolingDesc->params =
      PoolParams{mode,           windowHeight,    windowWidth, verticalPadding, horizontalPadding,
                 verticalStride, horizontalStride};
  poolingDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t* activationDesc) {
  return create("cudnnCreateActivationDescriptor", activationDesc);
}
cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t activationDesc) {
  delete activationDesc;
  return CUDNN_STATUS_SUCCESS;
}
// coef matters only to the clipped ReLU and ELU, which are refused.
cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t activationDesc,
                                           cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t reluNanOpt, double /*coef*/) {
  const char* call = "cudnnSetActivationDescriptor";
  if (!activationDesc) return refuse(call, bad("activationDesc is null"));
  if (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_SIGMOID &&
      mode != CUDNN_ACTIVATION_TANH)
    return refuse(call, unsupported("activation mode " + std::to_string(static_cast<int>(mode)) +
                                    " (only RELU, SIGMOID, TANH)"));
  if (reluNanOpt != CUDNN_NOT_PROPAGATE_NAN)
    return refuse(call, unsupported("NaN propagation (only CUDNN_NOT_PROPAGATE_NAN)"));
  activationDesc->mode = mode;
  activationDesc->set = true;
  return CUDNN_STATUS_SUCCESS;
}

// ---- Convolution
// ------------------------------------------------------------------------------------

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  const char* call = "cudnnGetConvolutionForwardAlgorithm_v7";
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(srcDesc, filterDesc, convDesc, destDesc,
                               {"srcDesc", "filterDesc", "destDesc"}, &s))
    return refuse(call, p);
  if (Problem p = heuristics_outputs(requestedAlgoCount, returnedAlgoCount, perfResults))
    return refuse(call, p);
  list_offers<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      kFwdOffers, s, convDesc->math, requestedAlgoCount, returnedAlgoCount, perfResults);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  const char* call = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(gradDesc, filterDesc, convDesc, diffDesc,
                               {"gradDesc", "filterDesc", "diffDesc"}, &s))
    return refuse(call, p);
  if (Problem p = heuristics_outputs(requestedAlgoCount, returnedAlgoCount, perfResults))
    return refuse(call, p);
  list_offers<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      kBwdDataOffers, s, convDesc->math, requestedAlgoCount, returnedAlgoCount, perfResults);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnTensorDescriptor_t diffDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  const char* call = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
  ConvShape s;
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = conv_problem(srcDesc, gradDesc, convDesc, diffDesc,
                               {"srcDesc", "gradDesc", "diffDesc"}, &s))
    return refuse(call, p);
  if (Problem p = heuristics_outputs(requestedAlgoCount, returnedAlgoCount, perfResults))
    return refuse(call, p);
  list_offers<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      kBwdFilterOffers, s, convDesc->math, requestedAlgoCount, returnedAlgoCount, perfResults);
  return CUDNN_STATUS_SUCCESS;
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

// ---- Pooling
// ---------------------------------------------------------------------------------------------

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                  const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                  const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* call = "cudnnPoolingForward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("poolingDesc", poolingDesc)) return refuse(call, p);
  if (Problem p = described("xDesc", xDesc)) return refuse(call, p);
  if (Problem p = described("yDesc", yDesc)) return refuse(call, p);
  const PoolShape s{xDesc->dims, yDesc->dims, poolingDesc->params};
  if (Problem p = pool_problem(s, "yDesc")) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"x", x, s.x.bytes()}, {"y", y, s.y.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float* xf = floats(x);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions),
                [s, xf, yf, blend] { blend.store_all(pool_forward(s, xf), yf); });
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                   const void* alpha, const cudnnTensorDescriptor_t yDesc,
                                   const void* y, const cudnnTensorDescriptor_t dyDesc,
                                   const void* dy, const cudnnTensorDescriptor_t xDesc,
                                   const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* call = "cudnnPoolingBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("poolingDesc", poolingDesc)) return refuse(call, p);
  if (Problem p = alike({{"yDesc", yDesc}, {"dyDesc", dyDesc}})) return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"dxDesc", dxDesc}})) return refuse(call, p);
  const PoolShape s{xDesc->dims, yDesc->dims, poolingDesc->params};
  if (Problem p = pool_problem(s, "yDesc")) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"y", y, s.y.bytes()},
                  {"dy", dy, s.y.bytes()},
                  {"x", x, s.x.bytes()},
                  {"dx", dx, s.x.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *yf = floats(y), *dyf = floats(dy), *xf = floats(x);
  float* dxf = floats(dx);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [s, yf, dyf, xf, dxf, blend] {
    int64_t orphans = 0;
    blend.store_all(pool_backward(s, yf, dyf, xf, &orphans), dxf);
    if (orphans > 0)
      cnnk_sim::report(cudaErrorLaunchFailure,
                       "simulated cuDNN: cudnnPoolingBackward: " + std::to_string(orphans) +
                           " max-pooling windows have no input equal to their y: y must be the "
                           "output of the forward pass on this x");
  });
}

// ---- Batch normalization
// ---------------------------------------------------------------------------------

cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc,
    void* y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
    const void* bnBias, double exponentialAverageFactor, void* resultRunningMean,
    void* resultRunningVariance, double epsilon, void* resultSaveMean,
    void* resultSaveInvVariance) {
  const char* call = "cudnnBatchNormalizationForwardTraining";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = bn_mode(mode)) return refuse(call, p);
  if (Problem p =
          bn_shapes(xDesc, yDesc, "yDesc", bnScaleBiasMeanVarDesc, "bnScaleBiasMeanVarDesc"))
    return refuse(call, p);
  const Dims4 d = xDesc->dims;
  const size_t param_bytes = static_cast<size_t>(d.c) * sizeof(float);
  // The running variance takes the unbiased batch variance, undefined for one value.
  if (d.count() / d.c < 2)
    return refuse(call, unsupported("training statistics over fewer than 2 values per channel"));
  if (Problem p = bn_epsilon(epsilon)) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  if (Problem p = pair_given("resultRunningMean, resultRunningVariance", resultRunningMean,
                             resultRunningVariance))
    return refuse(call, p);
  if (Problem p = pair_given("resultSaveMean, resultSaveInvVariance", resultSaveMean,
                             resultSaveInvVariance))
    return refuse(call, p);
  Regions regions{{"x", x, d.bytes()},
                  {"y", y, d.bytes()},
                  {"bnScale", bnScale, param_bytes},
                  {"bnBias", bnBias, param_bytes}};
  if (resultRunningMean) {
    regions.push_back({"resultRunningMean", resultRunningMean, param_bytes});
    regions.push_back({"resultRunningVariance", resultRunningVariance, param_bytes});
  }
  if (resultSaveMean) {
    regions.push_back({"resultSaveMean", resultSaveMean, param_bytes});
    regions.push_back({"resultSaveInvVariance", resultSaveInvVariance, param_bytes});
  }
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *xf = floats(x), *scale = floats(bnScale), *bias = floats(bnBias);
  float *yf = floats(y), *run_mean = floats(resultRunningMean),
        *run_var = floats(resultRunningVariance), *save_mean = floats(resultSaveMean),
        *save_invvar = floats(resultSaveInvVariance);
  const Blend blend = blend_of(alpha, beta);
  const double factor = exponentialAverageFactor;
  return submit(handle, call, std::move(regions), [=] {
    const double m = static_cast<double>(d.count() / d.c);
    for (int c = 0; c < d.c; ++c) {
      const Moments mo = moments(d, xf, c);
      const double invstd = 1.0 / std::sqrt(mo.var + epsilon);
      const double g = static_cast<double>(scale[c]), b = static_cast<double>(bias[c]);
      for_channel(d, c, [&](int64_t i) {
        blend.store(yf + i, g * (static_cast<double>(xf[i]) - mo.mean) * invstd + b);
      });
      // running = (1 - factor) * running + factor * batch, the variance unbiased.
      if (run_mean) {
        run_mean[c] = static_cast<float>((1.0 - factor) * static_cast<double>(run_mean[c]) +
                                         factor * mo.mean);
        run_var[c] = static_cast<float>((1.0 - factor) * static_cast<double>(run_var[c]) +
                                        factor * mo.var * m / (m - 1.0));
      }
      if (save_mean) {
        save_mean[c] = static_cast<float>(mo.mean);
        save_invvar[c] = static_cast<float>(invstd);
      }
    }
  });
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc,
    void* y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
    const void* bnBias, const void* estimatedMean, const void* estimatedVariance, double epsilon) {
  const char* call = "cudnnBatchNormalizationForwardInference";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = bn_mode(mode)) return refuse(call, p);
  if (Problem p =
          bn_shapes(xDesc, yDesc, "yDesc", bnScaleBiasMeanVarDesc, "bnScaleBiasMeanVarDesc"))
    return refuse(call, p);
  const Dims4 d = xDesc->dims;
  const size_t param_bytes = static_cast<size_t>(d.c) * sizeof(float);
  if (Problem p = bn_epsilon(epsilon)) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  Regions regions{{"x", x, d.bytes()},
                  {"y", y, d.bytes()},
                  {"bnScale", bnScale, param_bytes},
                  {"bnBias", bnBias, param_bytes},
                  {"estimatedMean", estimatedMean, param_bytes},
                  {"estimatedVariance", estimatedVariance, param_bytes}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *xf = floats(x), *scale = floats(bnScale), *bias = floats(bnBias),
              *mean = floats(estimatedMean), *var = floats(estimatedVariance);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [=] {
    for (int c = 0; c < d.c; ++c) {
      const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + epsilon);
      const double mu = static_cast<double>(mean[c]);
      const double g = static_cast<double>(scale[c]), b = static_cast<double>(bias[c]);
      for_channel(d, c, [&](int64_t i) {
        blend.store(yf + i, g * (static_cast<double>(xf[i]) - mu) * invstd + b);
      });
    }
  });
}

cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff,
    const void* betaDataDiff, const void* alphaParamDiff, const void* betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const cudnnTensorDescriptor_t bnScaleBiasDiffDesc, const void* bnScale, void* resultBnScaleDiff,
    void* resultBnBiasDiff, double epsilon, const void* savedMean, const void* savedInvVariance) {
  const char* call = "cudnnBatchNormalizationBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = bn_mode(mode)) return refuse(call, p);
  if (Problem p = bn_shapes(xDesc, dyDesc, "dyDesc", bnScaleBiasDiffDesc, "bnScaleBiasDiffDesc"))
    return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"dxDesc", dxDesc}})) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  const size_t param_bytes = static_cast<size_t>(d.c) * sizeof(float);
  if (Problem p = bn_epsilon(epsilon)) return refuse(call, p);
  if (Problem p = host_scalars(alphaDataDiff, betaDataDiff)) return refuse(call, p);
  if (Problem p = host_scalars(alphaParamDiff, betaParamDiff)) return refuse(call, p);
  if (Problem p = pair_given("savedMean, savedInvVariance", savedMean, savedInvVariance))
    return refuse(call, p);
  Regions regions{{"x", x, d.bytes()},
                  {"dy", dy, d.bytes()},
                  {"dx", dx, d.bytes()},
                  {"bnScale", bnScale, param_bytes},
                  {"resultBnScaleDiff", resultBnScaleDiff, param_bytes},
                  {"resultBnBiasDiff", resultBnBiasDiff, param_bytes}};
  if (savedMean) {
    regions.push_back({"savedMean", savedMean, param_bytes});
    regions.push_back({"savedInvVariance", savedInvVariance, param_bytes});
  }
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *xf = floats(x), *dyf = floats(dy), *scale = floats(bnScale),
              *saved_mean = floats(savedMean), *saved_invvar = floats(savedInvVariance);
  float *dxf = floats(dx), *dscale = floats(resultBnScaleDiff), *dbias = floats(resultBnBiasDiff);
  const Blend data = blend_of(alphaDataDiff, betaDataDiff);
  const Blend param = blend_of(alphaParamDiff, betaParamDiff);
  // With xhat = (x - mean) * invstd over the m values of a channel: dbias = sum dy,
  // dscale = sum dy * xhat, dx = scale * invstd / m * (m * dy - dbias - xhat * dscale).
  // Without saved statistics they are recomputed from x with this call's epsilon.
  return submit(handle, call, std::move(regions), [=] {
    const double m = static_cast<double>(d.count() / d.c);
    for (int c = 0; c < d.c; ++c) {
      double mean = 0.0, invstd = 0.0;
      if (saved_mean) {
        mean = static_cast<double>(saved_mean[c]);
        invstd = static_cast<double>(saved_invvar[c]);
      } else {
        const Moments mo = moments(d, xf, c);
        mean = mo.mean;
        invstd = 1.0 / std::sqrt(mo.var + epsilon);
      }
      double sum_dy = 0.0, sum_dy_xhat = 0.0;
      for_channel(d, c, [&](int64_t i) {
        sum_dy += static_cast<double>(dyf[i]);
        sum_dy_xhat += static_cast<double>(dyf[i]) * (static_cast<double>(xf[i]) - mean) * invstd;
      });
      const double k = static_cast<double>(scale[c]) * invstd / m;
      for_channel(d, c, [&](int64_t i) {
        const double xhat = (static_cast<double>(xf[i]) - mean) * invstd;
        data.store(dxf + i, k * (m * static_cast<double>(dyf[i]) - sum_dy - xhat * sum_dy_xhat));
      });
      param.store(dscale + c, sum_dy_xhat);
      param.store(dbias + c, sum_dy);
    }
  });
}

// ---- Activations and softmax
// ---------------------------------------------------------------------------

// In place (x == y) is allowed, as in cuDNN: each element is read before it is written.
cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle,
                                     cudnnActivationDescriptor_t activationDesc, const void* alpha,
                                     const cudnnTensorDescriptor_t xDesc, const void* x,
                                     const void* beta, const cudnnTensorDescriptor_t yDesc,
                                     void* y) {
  const char* call = "cudnnActivationForward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("activationDesc", activationDesc)) return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"yDesc", yDesc}})) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  Regions regions{{"x", x, d.bytes()}, {"y", y, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const cudnnActivationMode_t mode = activationDesc->mode;
  const float* xf = floats(x);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, mode, xf, yf, blend] {
    for (int64_t i = 0; i < d.count(); ++i)
      blend.store(yf + i, activate(mode, static_cast<double>(xf[i])));
  });
}

// ReLU's gradient is gated by x > 0, sigmoid's and tanh's are functions of y.
cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle,
                                      cudnnActivationDescriptor_t activationDesc, const void* alpha,
                                      const cudnnTensorDescriptor_t yDesc, const void* y,
                                      const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                      const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                      void* dx) {
  const char* call = "cudnnActivationBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = described("activationDesc", activationDesc)) return refuse(call, p);
  if (Problem p =
          alike({{"yDesc", yDesc}, {"dyDesc", dyDesc}, {"xDesc", xDesc}, {"dxDesc", dxDesc}}))
    return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  Regions regions{
      {"y", y, d.bytes()}, {"dy", dy, d.bytes()}, {"x", x, d.bytes()}, {"dx", dx, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const cudnnActivationMode_t mode = activationDesc->mode;
  const float *yf = floats(y), *dyf = floats(dy), *xf = floats(x);
  float* dxf = floats(dx);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, mode, yf, dyf, xf, dxf, blend] {
    for (int64_t i = 0; i < d.count(); ++i)
      blend.store(dxf + i, activate_grad(mode, static_cast<double>(xf[i]),
                                         static_cast<double>(yf[i]), static_cast<double>(dyf[i])));
  });
}

// y = exp(x - max) / sum exp(x - max) over the channels (the max keeps exp from overflowing).
cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                  cudnnSoftmaxMode_t mode, const void* alpha,
                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                  const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* call = "cudnnSoftmaxForward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = softmax_kind(algo, mode)) return refuse(call, p);
  if (Problem p = alike({{"xDesc", xDesc}, {"yDesc", yDesc}})) return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = xDesc->dims;
  Regions regions{{"x", x, d.bytes()}, {"y", y, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float* xf = floats(x);
  float* yf = floats(y);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, xf, yf, blend] {
    std::vector<double> e(static_cast<size_t>(d.c));
    for_channel_columns(d, [&](int64_t base, int64_t step) {
      double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
      for (int j = 0; j < d.c; ++j) mx = std::max(mx, static_cast<double>(xf[base + j * step]));
      for (int j = 0; j < d.c; ++j) {
        e[static_cast<size_t>(j)] = std::exp(static_cast<double>(xf[base + j * step]) - mx);
        sum += e[static_cast<size_t>(j)];
      }
      for (int j = 0; j < d.c; ++j)
        blend.store(yf + base + j * step, e[static_cast<size_t>(j)] / sum);
    });
  });
}

// dx = y * (dy - sum over the channels of dy * y).
cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                   cudnnSoftmaxMode_t mode, const void* alpha,
                                   const cudnnTensorDescriptor_t yDesc, const void* y,
                                   const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                   const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                   void* dx) {
  const char* call = "cudnnSoftmaxBackward";
  if (Problem p = usable(handle)) return refuse(call, p);
  if (Problem p = softmax_kind(algo, mode)) return refuse(call, p);
  if (Problem p = alike({{"yDesc", yDesc}, {"dyDesc", dyDesc}, {"dxDesc", dxDesc}}))
    return refuse(call, p);
  if (Problem p = host_scalars(alpha, beta)) return refuse(call, p);
  const Dims4 d = yDesc->dims;
  Regions regions{{"y", y, d.bytes()}, {"dy", dy, d.bytes()}, {"dx", dx, d.bytes()}};
  if (Problem p = on_device(regions)) return refuse(call, p);
  const float *yf = floats(y), *dyf = floats(dy);
  float* dxf = floats(dx);
  const Blend blend = blend_of(alpha, beta);
  return submit(handle, call, std::move(regions), [d, yf, dyf, dxf, blend] {
    std::vector<double> g(static_cast<size_t>(d.c));
    for_channel_columns(d, [&](int64_t base, int64_t step) {
      double dot = 0.0;
      for (int j = 0; j < d.c; ++j) {
        const double yj = static_cast<double>(yf[base + j * step]);
        dot += static_cast<double>(dyf[base + j * step]) * yj;
      }
      // All of a column's results before any is stored: dx may alias dy.
      for (int j = 0; j < d.c; ++j)
        g[static_cast<size_t>(j)] = static_cast<double>(yf[base + j * step]) *
                                    (static_cast<double>(dyf[base + j * step]) - dot);
      for (int j = 0; j < d.c; ++j) blend.store(dxf + base + j * step, g[static_cast<size_t>(j)]);
    });
  });
}
