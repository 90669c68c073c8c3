#include "engine/backend/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "cnnk/activation.h"
#include "cnnk/augment.h"
#include "cnnk/batchnorm.h"
#include "cnnk/bias.h"
#include "cnnk/conv2d.h"
#include "cnnk/dropout.h"
#include "cnnk/loss.h"
#include "cnnk/optim.h"
#include "cnnk/pool2d.h"
#include "cnnk/tensor_ops.h"
#include "engine/backend/cuda/cuda_check.h"
#include "engine/core/error.h"
#include "engine/ops/activation/activation_cudnn.h"
#include "engine/ops/batchnorm/batchnorm_cudnn.h"
#include "engine/ops/bias/bias_cudnn.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/conv2d/conv2d_cudnn.h"
#include "engine/ops/dense/dense_cublas.h"
#include "engine/ops/pool2d/pool2d.h"
#include "engine/ops/pool2d/pool2d_cudnn.h"

namespace cnn::cuda {
namespace {

// The native batch-norm, activation and pooling kernels support every configuration the
// graph can build; convolution asks its kernel (dilation goes to cuDNN).
const cnnk::Support kAlways = cnnk::Support::yes();

// Whether cuDNN can take an [n, c, spatial] tensor (its descriptors count elements in 32
// bits): the batch-norm, activation and bias paths ask; convolution and pooling ask in
// their own support checks.
cnnk::Support cudnn_fits(int64_t n, int64_t c, int64_t spatial) {
  return cuda::descriptor_fits(n, c, spatial, 1)
             ? cnnk::Support::yes()
             : cnnk::Support::no("a tensor over cuDNN's 32-bit element count");
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") != 0 && v[0] != '\0';
}

cnnk::ActKind act_kind(Activation a) {
  switch (a) {
    case Activation::Linear:
      return cnnk::ActKind::Linear;
    case Activation::Relu:
      return cnnk::ActKind::Relu;
    case Activation::Sigmoid:
      return cnnk::ActKind::Sigmoid;
    case Activation::Tanh:
      return cnnk::ActKind::Tanh;
    case Activation::Softmax:
      break;
  }
  throw Error("softmax is not an elementwise activation");
}

}  // namespace

CudaBackend::CudaBackend(const CudaOptions& options) : options_(options) {
  options_.sync_debug = options_.sync_debug || env_flag("CNN_SYNC_DEBUG");
  CNN_CUDA(cudaSetDevice(options_.device));
  allocator_ = std::make_shared<DeviceAllocator>(options_.device);
  CNN_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CNN_CUDA(cublasCreate(&cublas_));
  CNN_CUDA(cublasSetStream(cublas_, stream_));
  // TF32 needs compute capability 8.0 (Ampere); below it --tf32 is dropped, and said so.
  int cc_major = 0;
  CNN_CUDA(cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, options_.device));
  if (options_.tf32 && cc_major < 8) {
    if (options_.verbose)
      std::fprintf(stderr, "[cnn] --tf32 ignored: compute capability %d.x has no TF32 math\n",
                   cc_major);
    options_.tf32 = false;
  }
  const char* tf32_override = std::getenv("NVIDIA_TF32_OVERRIDE");
  if (options_.tf32 && options_.verbose && tf32_override && std::strcmp(tf32_override, "0") == 0)
    std::fprintf(stderr,
                 "[cnn] --tf32 with NVIDIA_TF32_OVERRIDE=0: cuBLAS and cuDNN stay in FP32, the "
                 "native kernels use TF32\n");
  // Strict FP32 unless --tf32: CUBLAS_DEFAULT_MATH never lowers FP32 GEMMs to TF32;
  // CUBLAS_TF32_TENSOR_OP_MATH allows it.
  CNN_CUDA(
      cublasSetMathMode(cublas_, options_.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (options_.deterministic && options_.policy == ImplPolicy::Auto) {
    // Timings differ between runs, and so would auto's choices and the bits they give.
    if (options_.verbose)
      std::fprintf(stderr,
                   "[cnn] --deterministic: --impl auto does not time; native runs where it "
                   "supports a layer, cuDNN elsewhere\n");
    options_.policy = ImplPolicy::Native;
  }
  // cuBLAS's own workspace would otherwise come from the driver on first use, possibly
  // inside a captured step; 32 MiB is what cuBLAS documents for Hopper.
  constexpr size_t kCublasWorkspace = size_t(32) << 20;
  cublas_workspace_ = allocator_->allocate(kCublasWorkspace, "the cuBLAS workspace");
  CNN_CUDA(cublasSetWorkspace(cublas_, cublas_workspace_, kCublasWorkspace));
  metrics_ = allocator_->allocate(sizeof(cnnk::DeviceMetrics) + sizeof(int), "loss metrics");
  metrics_reset();
  step_ = static_cast<cnnk::StepScalars*>(
      allocator_->allocate(sizeof(cnnk::StepScalars), "the step scalars"));
  set_step({});
}

CudnnContext& CudaBackend::cudnn_context() {
  if (!cudnn_) {
    cudnn_ = std::make_unique<CudnnContext>(stream_, allocator_, options_.workspace_limit);
    cudnn_->verbose = options_.verbose;
    cudnn_->tf32 = options_.tf32;
    cudnn_->deterministic = options_.deterministic;
  }
  return *cudnn_;
}

std::vector<std::string> CudaBackend::cudnn_log() const {
  return cudnn_ ? cudnn_->log_lines() : std::vector<std::string>{};
}

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  cudnn_.reset();
  if (scratch_) allocator_->release(scratch_);
  if (loss_rows_) allocator_->release(loss_rows_);
  if (metrics_) allocator_->release(metrics_);
  if (step_) allocator_->release(step_);
  if (cublas_) cublasDestroy(cublas_);
  if (cublas_workspace_) allocator_->release(cublas_workspace_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::launched(cudaError_t status, const char* kernel) {
  if (status != cudaSuccess) throw_cuda_error(status, kernel, __FILE__, __LINE__);
  if (options_.sync_debug) {
    const cudaError_t err = cudaStreamSynchronize(stream_);
    if (err != cudaSuccess)
      throw DeviceError(fmt::format("kernel {} failed (found by CNN_SYNC_DEBUG): {} ({})", kernel,
                                    cudaGetErrorString(err), cudaGetErrorName(err)));
  }
}

// ---- implementation choice ----------------------------------------------------------

// Under --impl auto, each candidate's time: the median of three runs after one that
// warms up (and makes its first-use plans), as `cnn bench` measures.
double CudaBackend::median_ms(const std::function<void()>& f) {
  std::vector<double> t = time_ms(f, 1, 3);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Impl CudaBackend::choose(const std::string& family, const std::string& pass, const std::string& key,
                         cnnk::Support native, cnnk::Support cudnn,
                         const std::function<void()>& run_native,
                         const std::function<void()>& run_cudnn) {
  const std::string id = family + " " + pass + " " + key;
  auto known = decided_.find(id);
  if (known != decided_.end()) return known->second;
  ImplChoice c = choose_impl(options_.policy, native, cudnn);
  std::string note = c.reason;
  if (c.needs_timing) {
    const double t_native = median_ms(run_native);
    try {
      const double t_cudnn = median_ms(run_cudnn);
      c = choose_impl(options_.policy, native, cudnn,
                      t_native <= t_cudnn ? Impl::Native : Impl::Cudnn);
      note = fmt::format("timed: native {:.3f} ms, cudnn {:.3f} ms", t_native, t_cudnn);
    } catch (const DeviceError& e) {
      // cuDNN failed where native ran: native it is, unless the failure left the stream
      // (and so the context) broken for both, which the synchronize reports.
      CNN_CUDA(cudaStreamSynchronize(stream_));
      c = choose_impl(options_.policy, native, cudnn, Impl::Native);
      note = fmt::format("timed: native {:.3f} ms; cudnn failed: {}", t_native, e.message());
    }
  }
  decided_[id] = c.impl;
  choices_[id] = cnn::impl_name(c.impl) + (note.empty() ? "" : " (" + note + ")");
  if (!note.empty() && options_.verbose)
    std::fprintf(stderr, "[cnn] %s: %s\n", id.c_str(), choices_[id].c_str());
  return c.impl;
}

std::string CudaBackend::impl_name(const std::string& op_family) const {
  if (op_family == "dense") return "cublas";
  std::set<std::string> used;
  for (const auto& [id, choice] : choices_)
    if (id.rfind(op_family + " ", 0) == 0) used.insert(choice.substr(0, choice.find(' ')));
  if (used.empty()) return impl_policy_name(options_.policy);
  std::string s;
  for (const std::string& u : used) s += (s.empty() ? "" : "+") + u;
  return s;
}

void* CudaBackend::scratch(size_t bytes) {
  if (bytes == 0) return nullptr;  // the kernel needs none: it is given none
  if (bytes > scratch_bytes_) {
    // Not back to the cache while a captured step may still use it.
    allocator_->release_after_graphs(scratch_);
    scratch_ = nullptr;
    scratch_bytes_ = 0;  // so that a failed allocation leaves no size without a buffer
    scratch_ = allocator_->allocate(bytes, "the native kernels' workspace");
    scratch_bytes_ = bytes;
  }
  return scratch_;
}

// ---- memory -------------------------------------------------------------------------

Tensor CudaBackend::empty(const Shape& shape) {
  const size_t elements = static_cast<size_t>(shape.numel());
  void* p = allocator_->allocate(std::max<size_t>(elements, 1) * sizeof(float),
                                 fmt::format("a tensor of shape {}", shape.str()));
  std::shared_ptr<DeviceAllocator> alloc = allocator_;
  auto storage = std::make_shared<Storage>(device(), static_cast<float*>(p), elements,
                                           [alloc](float* q) { alloc->release(q); });
  return Tensor(shape, std::move(storage));
}

void CudaBackend::fill(const Tensor& t, float value) {
  launched(cnnk::fill(t.numel(), value, t.data(), stream_), "fill");
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  CNN_CHECK(src.numel() == dst.numel(), Error, "copy of {} into {}", src.shape().str(),
            dst.shape().str());
  CNN_CUDA(cudaMemcpyAsync(dst.data(), src.data(), static_cast<size_t>(src.numel()) * sizeof(float),
                           cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::upload(const float* host, const Tensor& dst) {
  CNN_CUDA(cudaMemcpyAsync(dst.data(), host, static_cast<size_t>(dst.numel()) * sizeof(float),
                           cudaMemcpyHostToDevice, stream_));
  CNN_CUDA(cudaStreamSynchronize(stream_));  // the host buffer may go away on return
}

void CudaBackend::download(const Tensor& src, float* host) {
  CNN_CUDA(cudaMemcpyAsync(host, src.data(), static_cast<size_t>(src.numel()) * sizeof(float),
                           cudaMemcpyDeviceToHost, stream_));
  CNN_CUDA(cudaStreamSynchronize(stream_));
}

void CudaBackend::synchronize() { CNN_CUDA(cudaStreamSynchronize(stream_)); }

// ---- convolution ----------------------------------------------------------------------

namespace {
// Names what ran behind a choice of `impl`: "native (direct)" for a native convolution's
// kernel variant, "cudnn (implicit-precomp-gemm)" for cuDNN's algorithm, or
// "<impl> (<tag>; <note>)" when the choice carries a note already. Idempotent; nothing
// when the choice is another implementation's or the tag is empty.
void tag_choice(std::map<std::string, std::string>& choices, const std::string& id,
                const std::string& impl, const std::string& tag) {
  auto it = choices.find(id);
  if (tag.empty() || it == choices.end() || it->second.rfind(impl, 0) != 0 ||
      it->second.rfind(impl + " (" + tag, 0) == 0)
    return;
  if (it->second == impl)
    it->second = impl + " (" + tag + ")";
  else
    it->second.insert(impl.size() + 2, tag + "; ");
}
}  // namespace

void CudaBackend::run_conv(Impl impl, const char* pass, const cnnk::Conv2dGeometry& g,
                           cnnk::ConvPass conv_pass, const std::function<void()>& native,
                           const std::function<void()>& cudnn) {
  const std::string id = cudnn::conv2d_algorithm_id(pass, g);
  if (impl == Impl::Native) {
    const cnnk::ConvVariant v = cnnk::conv2d_variant(conv_pass, g, conv_options());
    tag_choice(choices_, id, "native", cnnk::conv2d_variant_name(v));
    native();
  } else {
    cudnn();  // makes the plan, which records the algorithm
    tag_choice(choices_, id, "cudnn", cudnn_context().algorithm(id));
  }
}

void CudaBackend::conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                                 const float* b, float* y) {
  conv2d_forward_fused(g, x, w, b, Activation::Linear, y);
}

void CudaBackend::conv2d_forward_fused(const cnnk::Conv2dGeometry& g, const float* x,
                                       const float* w, const float* b, Activation act, float* y) {
  // Softmax is no elementwise epilogue: the convolution, then softmax's own pass.
  if (act == Activation::Softmax) return Backend::conv2d_forward_fused(g, x, w, b, act, y);
  const cnnk::ConvOptions o = conv_options();
  auto native = [&] {
    const size_t bytes = cnnk::conv2d_forward_workspace_bytes(g, o);
    launched(cnnk::conv2d_forward(g, x, w, b, y, scratch(bytes), bytes, stream_, act_kind(act), o),
             "conv2d_forward");
  };
  // cuDNN: the convolution and bias, then the activation in place through this backend's
  // own activation_forward, so the result is what the unfused layer computed.
  auto cudnn = [&] {
    cudnn::conv2d_forward(cudnn_context(), g, x, w, b, y);
    if (act != Activation::Linear) {
      ActivationGeometry ag;
      ag.n = g.n;
      ag.c = g.k;
      ag.spatial = int64_t(g.p) * g.q;
      activation_forward(act, ag, y, y);
    }
  };
  const Impl impl = choose("conv2d", "forward", describe(g), cnnk::conv2d_supports(g),
                           cudnn::conv2d_supports(g), native, cudnn);
  run_conv(impl, "forward", g, cnnk::ConvPass::Forward, native, cudnn);
}

void CudaBackend::conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy,
                                       const float* w, float* dx) {
  const cnnk::ConvOptions o = conv_options();
  auto native = [&] {
    const size_t bytes = cnnk::conv2d_backward_data_workspace_bytes(g, o);
    launched(cnnk::conv2d_backward_data(g, dy, w, dx, scratch(bytes), bytes, stream_, o),
             "conv2d_backward_data");
  };
  auto cudnn = [&] { cudnn::conv2d_backward_data(cudnn_context(), g, dy, w, dx); };
  const Impl impl = choose("conv2d", "backward-data", describe(g), cnnk::conv2d_supports(g),
                           cudnn::conv2d_supports(g), native, cudnn);
  run_conv(impl, "backward-data", g, cnnk::ConvPass::BackwardData, native, cudnn);
}

void CudaBackend::conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x,
                                         const float* dy, float* dw, float* db) {
  const cnnk::ConvOptions o = conv_options();
  auto native = [&] {
    const size_t bytes = cnnk::conv2d_backward_filter_workspace_bytes(g, o);
    // One workspace for both launches (the bias reduction runs after the filter's partials
    // are summed), sized up front so that it is not regrown between them.
    const size_t bias_bytes =
        db ? cnnk::bias_backward_workspace_bytes(g.n, g.k, int64_t(g.p) * g.q) : 0;
    void* ws = scratch(std::max(bytes, bias_bytes));
    launched(cnnk::conv2d_backward_filter(g, x, dy, dw, ws, bytes, stream_, o),
             "conv2d_backward_filter");
    if (db)
      launched(cnnk::bias_backward(g.n, g.k, int64_t(g.p) * g.q, dy, db, ws, bias_bytes, stream_),
               "bias_backward");
  };
  auto cudnn = [&] { cudnn::conv2d_backward_filter(cudnn_context(), g, x, dy, dw, db); };
  const Impl impl = choose("conv2d", "backward-filter", describe(g), cnnk::conv2d_supports(g),
                           cudnn::conv2d_supports(g), native, cudnn);
  run_conv(impl, "backward-filter", g, cnnk::ConvPass::BackwardFilter, native, cudnn);
}

// ---- pooling, batch norm, activations --------------------------------------------------

void CudaBackend::pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y) {
  auto native = [&] { launched(cnnk::pool2d_forward(g, x, y, stream_), "pool2d_forward"); };
  auto cudnn = [&] { cudnn::pool2d_forward(cudnn_context(), g, x, y); };
  const Impl impl =
      choose("pool2d", "forward", describe(g), kAlways, cudnn::pool2d_supports(g), native, cudnn);
  impl == Impl::Native ? native() : cudnn();
}

void CudaBackend::pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float* y,
                                  const float* dy, float* dx) {
  auto native = [&] { launched(cnnk::pool2d_backward(g, x, dy, dx, stream_), "pool2d_backward"); };
  auto cudnn = [&] { cudnn::pool2d_backward(cudnn_context(), g, x, y, dy, dx); };
  const Impl impl =
      choose("pool2d", "backward", describe(g), kAlways, cudnn::pool2d_supports(g), native, cudnn);
  impl == Impl::Native ? native() : cudnn();
}

namespace {
std::string bn_key(const cnnk::BatchNormGeometry& g) {
  return fmt::format("n{} c{} spatial {}", g.n, g.c, g.spatial);
}
}  // namespace

void CudaBackend::batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const float* x,
                                             const float* gamma, const float* beta, float momentum,
                                             float epsilon, float* running_mean, float* running_var,
                                             float* y, float* save_mean, float* save_invstd) {
  // Timing would update the running statistics more than once, so auto does not time
  // this pass, and runs it native; the backward follows (batchnorm_backward).
  const ImplPolicy p = untimed(options_.policy);
  // cuDNN's running variance is the unbiased one (n / (n - 1) times the batch's), undefined
  // for one value per channel, where the native kernel keeps the biased one as the
  // reference does.
  const cnnk::Support cudnn_ok =
      g.reduction() > 1
          ? cudnn_fits(g.n, g.c, g.spatial)
          : cnnk::Support::no("one value per channel: cuDNN's unbiased variance divides by zero");
  const ImplChoice c = choose_impl(p, kAlways, cudnn_ok);
  const Impl impl = c.impl;
  const std::string key = bn_key(g);
  choices_["batchnorm forward-training " + key] =
      cnn::impl_name(impl) + (c.reason.empty() ? "" : " (" + c.reason + ")");
  bn_statistics_from_[key] = impl;
  if (impl == Impl::Native) {
    const size_t bytes = cnnk::batchnorm_workspace_bytes(g);
    launched(cnnk::batchnorm_forward_training(g, x, gamma, beta, momentum, epsilon, running_mean,
                                              running_var, y, save_mean, save_invstd,
                                              scratch(bytes), bytes, stream_),
             "batchnorm_forward_training");
  } else {
    cudnn::batchnorm_forward_training(cudnn_context(), g, x, gamma, beta, momentum, epsilon,
                                      running_mean, running_var, y, save_mean, save_invstd);
  }
}

void CudaBackend::batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const float* x,
                                              const float* gamma, const float* beta,
                                              const float* running_mean, const float* running_var,
                                              float epsilon, float* y) {
  auto native = [&] {
    launched(cnnk::batchnorm_forward_inference(g, x, gamma, beta, running_mean, running_var,
                                               epsilon, y, stream_),
             "batchnorm_forward_inference");
  };
  auto cudnn = [&] {
    cudnn::batchnorm_forward_inference(cudnn_context(), g, x, gamma, beta, running_mean,
                                       running_var, epsilon, y);
  };
  const Impl impl = choose("batchnorm", "forward-inference", bn_key(g), kAlways,
                           cudnn_fits(g.n, g.c, g.spatial), native, cudnn);
  impl == Impl::Native ? native() : cudnn();
}

void CudaBackend::batchnorm_backward(const cnnk::BatchNormGeometry& g, const float* x,
                                     const float* dy, const float* gamma, const float* save_mean,
                                     const float* save_invstd, float epsilon, float* dx,
                                     float* dgamma, float* dbeta) {
  auto native = [&] {
    const size_t bytes = cnnk::batchnorm_workspace_bytes(g);
    launched(cnnk::batchnorm_backward(g, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
                                      scratch(bytes), bytes, stream_),
             "batchnorm_backward");
  };
  auto cudnn = [&] {
    cudnn::batchnorm_backward(cudnn_context(), g, x, dy, gamma, save_mean, save_invstd, epsilon, dx,
                              dgamma, dbeta);
  };
  // The saved mean and inverse deviation are, to cuDNN, a cache of its own forward's, so
  // the backward runs on the implementation whose forward wrote them: native under auto
  // (whose forward is native) and wherever cuDNN's forward could not run. Only a backward
  // with no forward before it (a benchmark's) goes by the policy.
  const std::string key = bn_key(g);
  const auto wrote = bn_statistics_from_.find(key);
  const Impl impl =
      wrote != bn_statistics_from_.end()
          ? wrote->second
          : choose_impl(untimed(options_.policy), kAlways, cudnn_fits(g.n, g.c, g.spatial)).impl;
  choices_["batchnorm backward " + key] =
      cnn::impl_name(impl) + (wrote != bn_statistics_from_.end()
                                  ? " (as the forward: it reads its saved statistics)"
                                  : "");
  impl == Impl::Native ? native() : cudnn();
}

void CudaBackend::activation_forward(Activation a, const ActivationGeometry& g, const float* x,
                                     float* y) {
  if (a == Activation::Linear) {
    if (x != y)
      CNN_CUDA(cudaMemcpyAsync(y, x, static_cast<size_t>(g.size()) * sizeof(float),
                               cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  auto native = [&] {
    if (a == Activation::Softmax)
      launched(cnnk::softmax_forward(g.n, g.c, g.spatial, x, y, stream_), "softmax_forward");
    else
      launched(cnnk::activation_forward(act_kind(a), g.size(), x, y, stream_),
               "activation_forward");
  };
  auto cudnn = [&] { cudnn::activation_forward(cudnn_context(), a, g, x, y); };
  // In-place forwards cannot be timed twice safely (the second run would see its own
  // output), so auto keeps native for them. cuDNN documents in-place use for its
  // activations, not for its softmax: that one runs native.
  const bool in_place = x == y;
  const ImplPolicy p = in_place ? untimed(options_.policy) : options_.policy;
  const Impl impl = p == ImplPolicy::Cudnn ? Impl::Cudnn : Impl::Native;
  const cnnk::Support fits = cudnn_fits(g.n, g.c, g.spatial);
  std::string why;
  if (impl == Impl::Cudnn && a == Activation::Softmax && in_place)
    why = "cuDNN does not document an in-place softmax";
  else if (impl == Impl::Cudnn && !fits.ok)
    why = fits.reason;
  choices_["activation forward " + activation_name(a)] =
      why.empty() ? cnn::impl_name(impl) : cnn::impl_name(Impl::Native) + " (" + why + ")";
  impl == Impl::Native || !why.empty() ? native() : cudnn();
}

void CudaBackend::activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                      const float* dy, float* dx) {
  if (a == Activation::Linear) {
    if (dy != dx)
      CNN_CUDA(cudaMemcpyAsync(dx, dy, static_cast<size_t>(g.size()) * sizeof(float),
                               cudaMemcpyDeviceToDevice, stream_));
    return;
  }
  // cuDNN's backward for [n, c, spatial] tensors it can describe; its softmax backward
  // in place (dx over dy) is undocumented, as its forward's is.
  const cnnk::Support fits = cudnn_fits(g.n, g.c, g.spatial);
  std::string why;
  if (options_.policy == ImplPolicy::Cudnn && a == Activation::Softmax && dx == dy)
    why = "cuDNN does not document an in-place softmax";
  else if (options_.policy == ImplPolicy::Cudnn && !fits.ok)
    why = fits.reason;
  const Impl impl =
      options_.policy == ImplPolicy::Cudnn && why.empty() ? Impl::Cudnn : Impl::Native;
  choices_["activation backward " + activation_name(a)] =
      cnn::impl_name(impl) + (why.empty() ? "" : " (" + why + ")");
  if (impl == Impl::Cudnn) {
    cudnn::activation_backward(cudnn_context(), a, g, y, dy, dx);
  } else if (a == Activation::Softmax) {
    launched(cnnk::softmax_backward(g.n, g.c, g.spatial, y, dy, dx, stream_), "softmax_backward");
  } else {
    launched(cnnk::activation_backward(act_kind(a), g.size(), y, dy, dx, stream_),
             "activation_backward");
  }
}

// The native path: dz and db in one pass (bias.cu). Under --impl cudnn both steps are
// cuDNN's (the activation's backward, as the forward's, then cudnnConvolutionBackwardBias),
// so that path shares no kernel with this one; softmax has no elementwise derivative, so
// under native it takes two steps too, its backward then the native bias sum.
void CudaBackend::bias_activation_backward(Activation a, const ActivationGeometry& g,
                                           const float* y, const float* dy, float* dz, float* db) {
  if (options_.policy == ImplPolicy::Cudnn && cudnn_fits(g.n, g.c, g.spatial).ok) {
    activation_backward(a, g, y, dy, dz);
    if (db) {
      choices_["bias backward"] = cnn::impl_name(Impl::Cudnn);
      cudnn::bias_backward(cudnn_context(), g.n, g.c, g.spatial, dz, db);
    }
    return;
  }
  const size_t bytes = db ? cnnk::bias_backward_workspace_bytes(g.n, g.c, g.spatial) : 0;
  if (a == Activation::Softmax) {
    activation_backward(a, g, y, dy, dz);
    if (db)
      launched(cnnk::bias_backward(g.n, g.c, g.spatial, dz, db, scratch(bytes), bytes, stream_),
               "bias_backward");
    return;
  }
  if (a != Activation::Linear)
    choices_["activation backward " + activation_name(a)] = cnn::impl_name(Impl::Native);
  launched(cnnk::bias_activation_backward(act_kind(a), g.n, g.c, g.spatial, y, dy, dz, db,
                                          scratch(bytes), bytes, stream_),
           "bias_activation_backward");
}

// ---- dense (cuBLAS) ----------------------------------------------------------------------

void CudaBackend::dense_forward(const cnnk::DenseGeometry& g, const float* x, const float* w,
                                const float* b, float* y) {
  dense_forward_fused(g, x, w, b, Activation::Linear, y);
}

void CudaBackend::dense_forward_fused(const cnnk::DenseGeometry& g, const float* x, const float* w,
                                      const float* b, Activation act, float* y) {
  cublas::dense_forward(cublas_, g, x, w, y);
  // Softmax is no elementwise epilogue: the bias, then softmax's own pass.
  const Activation epilogue = act == Activation::Softmax ? Activation::Linear : act;
  if (b || epilogue != Activation::Linear)
    launched(cnnk::bias_activation_forward(act_kind(epilogue), g.n, g.out, 1, b, y, stream_),
             "bias_activation_forward");
  if (act == Activation::Softmax) activation_forward(act, ActivationGeometry{g.n, g.out, 1}, y, y);
}

void CudaBackend::dense_backward_data(const cnnk::DenseGeometry& g, const float* dy, const float* w,
                                      float* dx) {
  cublas::dense_backward_data(cublas_, g, dy, w, dx);
}

void CudaBackend::dense_backward_weights(const cnnk::DenseGeometry& g, const float* x,
                                         const float* dy, float* dw, float* db) {
  cublas::dense_backward_weights(cublas_, g, x, dy, dw);
  if (!db) return;
  const size_t bytes = cnnk::bias_backward_workspace_bytes(g.n, g.out, 1);
  launched(cnnk::bias_backward(g.n, g.out, 1, dy, db, scratch(bytes), bytes, stream_),
           "bias_backward");
}

// ---- dropout, structure -------------------------------------------------------------------

void CudaBackend::dropout_forward(const cnnk::DropoutGeometry& g, float rate, cnnk::StepSeed seed,
                                  const float* x, float* y, float* mask) {
  CNN_CHECK(rate >= 0.0f && rate < 1.0f, ConfigError, "dropout rate must be in [0, 1), got {}",
            rate);
  launched(cnnk::dropout_forward(g, rate, seed, x, y, mask, stream_), "dropout_forward");
}

void CudaBackend::dropout_backward(const cnnk::DropoutGeometry& g, const float* mask,
                                   const float* dy, float* dx) {
  launched(cnnk::dropout_backward(g, mask, dy, dx, stream_), "dropout_backward");
}

void CudaBackend::add(int64_t size, const float* a, const float* b, float* y) {
  launched(cnnk::add(size, a, b, y, stream_), "add");
}

void CudaBackend::accumulate(int64_t size, const float* src, float* dst) {
  launched(cnnk::accumulate(size, src, dst, stream_), "accumulate");
}

void CudaBackend::channel_copy(const ChannelCopyGeometry& g, const float* src, float* dst) {
  const cnnk::ChannelCopy k{g.n, g.spatial, g.src_c, g.src_offset, g.dst_c, g.dst_offset, g.count};
  launched(cnnk::channel_copy(k, src, dst, stream_), "channel_copy");
}

// ---- loss and metrics ----------------------------------------------------------------------

void CudaBackend::softmax_xent(const LossGeometry& g, const float* logits, const float* labels,
                               bool sparse, float grad_scale, float* dlogits) {
  const size_t rows = static_cast<size_t>(g.rows);
  if (rows > loss_capacity_) {
    allocator_->release_after_graphs(loss_rows_);  // a captured step may still use it
    loss_rows_ = nullptr;
    loss_capacity_ = 0;  // so that a failed allocation leaves no size without a buffer
    loss_rows_ = static_cast<float*>(allocator_->allocate(2 * rows * sizeof(float), "loss rows"));
    loss_capacity_ = rows;
  }
  auto* m = static_cast<cnnk::DeviceMetrics*>(metrics_);
  int* bad = reinterpret_cast<int*>(static_cast<char*>(metrics_) + sizeof(cnnk::DeviceMetrics));
  launched(cnnk::softmax_xent(g.rows, g.classes, logits, labels, sparse, grad_scale, dlogits,
                              loss_rows_, loss_rows_ + rows, m, bad, stream_),
           "softmax_xent");
}

void CudaBackend::metrics_reset() {
  CNN_CUDA(cudaMemsetAsync(metrics_, 0, sizeof(cnnk::DeviceMetrics) + sizeof(int), stream_));
}

Metrics CudaBackend::metrics_read() {
  cnnk::DeviceMetrics m{};
  int bad = 0;
  char host[sizeof(cnnk::DeviceMetrics) + sizeof(int)];
  CNN_CUDA(cudaMemcpyAsync(host, metrics_, sizeof(host), cudaMemcpyDeviceToHost, stream_));
  CNN_CUDA(cudaStreamSynchronize(stream_));
  std::memcpy(&m, host, sizeof(m));
  std::memcpy(&bad, host + sizeof(m), sizeof(bad));
  CNN_CHECK(bad == 0, DataError, "a label is outside [0, classes) or not a whole number");
  return {m.loss_sum, static_cast<int64_t>(m.correct), static_cast<int64_t>(m.count)};
}

// ---- optimizers ------------------------------------------------------------------------------

void CudaBackend::sgd_update(int64_t n, const SgdHyper& h, cnnk::Live<float> rate,
                             cnnk::Live<float> momentum, float* w, const float* g,
                             float* velocity) {
  launched(cnnk::sgd_update(n, rate, momentum, h.nesterov, w, g, velocity, stream_), "sgd_update");
}

void CudaBackend::adam_update(int64_t n, const AdamHyper& h, cnnk::Live<float> rate,
                              cnnk::Live<float> beta1, float* w, const float* g, float* m,
                              float* v) {
  launched(cnnk::adam_update(n, rate, beta1, h.beta2, h.epsilon, w, g, m, v, stream_),
           "adam_update");
}

void CudaBackend::rmsprop_update(int64_t n, const RmspropHyper& h, cnnk::Live<float> rate, float* w,
                                 const float* g, float* v) {
  launched(cnnk::rmsprop_update(n, rate, h.rho, h.epsilon, w, g, v, stream_), "rmsprop_update");
}

// ---- data ---------------------------------------------------------------------------------------

IndexBuffer CudaBackend::upload_indices(const std::vector<int32_t>& indices) {
  const size_t bytes = std::max<size_t>(indices.size(), 1) * sizeof(int32_t);
  void* p = allocator_->allocate(bytes, "the epoch's sample order");
  std::shared_ptr<DeviceAllocator> alloc = allocator_;
  IndexBuffer buf(static_cast<const int32_t*>(p),
                  [alloc](const int32_t* q) { alloc->release(const_cast<int32_t*>(q)); });
  if (!indices.empty()) {
    CNN_CUDA(cudaMemcpyAsync(p, indices.data(), indices.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream_));
    CNN_CUDA(cudaStreamSynchronize(stream_));
  }
  return buf;
}

void CudaBackend::gather_rows(const float* src, int64_t row_len, cnnk::Live<const int32_t*> indices,
                              int64_t count, float* dst) {
  launched(cnnk::gather_rows(src, row_len, indices, count, dst, stream_), "gather_rows");
}

void CudaBackend::augment(const cnnk::AugmentGeometry& g, cnnk::StepSeed seed, const float* x,
                          float* y) {
  CNN_CHECK(g.n >= 0 && g.c >= 0 && g.h >= 0 && g.w >= 0 && g.max_shift >= 0, ConfigError,
            "augmentation of a [{}, {}, {}, {}] batch with shift {}", g.n, g.c, g.h, g.w,
            g.max_shift);
  CNN_CHECK(g.size() == 0 || x != y, Error, "augmentation cannot run in place");
  launched(cnnk::augment(g, seed, x, y, stream_), "augment");
}

// ---- step scalars and graph capture ---------------------------------------------------------

void CudaBackend::set_step(const cnnk::StepScalars& s) {
  launched(cnnk::store_step_scalars(s, step_, stream_), "store_step_scalars");
}

namespace {

// A captured step. The allocator knows it is alive, so that no block the graph names goes
// to another use meanwhile (DeviceAllocator::release_after_graphs).
class CudaStepGraph final : public Backend::StepGraph {
 public:
  CudaStepGraph(cudaGraphExec_t exec, Backend::GraphNodes nodes, cudaStream_t stream,
                std::shared_ptr<DeviceAllocator> allocator)
      : exec_(exec), nodes_(nodes), stream_(stream), allocator_(std::move(allocator)) {
    allocator_->graph_created();
  }
  ~CudaStepGraph() override {
    cudaGraphExecDestroy(exec_);
    allocator_->graph_destroyed();
  }
  CudaStepGraph(const CudaStepGraph&) = delete;
  CudaStepGraph& operator=(const CudaStepGraph&) = delete;
  void replay() override { CNN_CUDA(cudaGraphLaunch(exec_, stream_)); }
  Backend::GraphNodes nodes() const override { return nodes_; }

 private:
  cudaGraphExec_t exec_;
  Backend::GraphNodes nodes_;
  cudaStream_t stream_;
  std::shared_ptr<DeviceAllocator> allocator_;
};

// The graph's nodes by type; zeros where the runtime cannot say (nothing depends on it).
Backend::GraphNodes count_nodes(cudaGraph_t graph) {
  Backend::GraphNodes counts;
  size_t n = 0;
  if (cudaGraphGetNodes(graph, nullptr, &n) != cudaSuccess) return Backend::GraphNodes{};
  std::vector<cudaGraphNode_t> nodes(n);
  if (n && cudaGraphGetNodes(graph, nodes.data(), &n) != cudaSuccess) return Backend::GraphNodes{};
  for (size_t i = 0; i < n; ++i) {
    cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
    if (cudaGraphNodeGetType(nodes[i], &type) != cudaSuccess) return Backend::GraphNodes{};
    if (type == cudaGraphNodeTypeKernel)
      ++counts.kernels;
    else if (type == cudaGraphNodeTypeMemcpy)
      ++counts.copies;
    else if (type == cudaGraphNodeTypeMemset)
      ++counts.sets;
    else
      ++counts.other;
  }
  return counts;
}

}  // namespace

std::unique_ptr<Backend::StepGraph> CudaBackend::capture(const std::function<void()>& body) {
  // Synchronizing after every launch is what sync_debug is for, and a capture forbids it.
  if (options_.sync_debug) return nullptr;
  // Thread-local mode: this thread may not call what a capture cannot record (a
  // synchronization, a cudaMalloc), and other threads are left alone.
  CNN_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  allocator_->forbid_allocation("the capture of a training step into a CUDA graph");
  std::string failure;
  try {
    body();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  allocator_->allow_allocation();
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);  // always: it resets the stream
  if (failure.empty() && ended != cudaSuccess)
    failure = fmt::format("cudaStreamEndCapture: {}", cudaGetErrorString(ended));
  cudaGraphExec_t exec = nullptr;
  GraphNodes nodes;
  if (failure.empty()) {
    nodes = count_nodes(graph);
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess)
      failure = fmt::format("cudaGraphInstantiate: {}", cudaGetErrorString(made));
  }
  if (graph) cudaGraphDestroy(graph);
  if (!failure.empty()) {
    cudaGetLastError();  // the capture's error is reported here, not by the next launch
    // A capture that failed because the device had (an earlier replay's illegal address,
    // say) is no case for running uncaptured: such a fault fails every later call, and the
    // first kernel to be checked would take the blame. The stream says so now.
    const cudaError_t sound = cudaStreamSynchronize(stream_);
    if (sound != cudaSuccess)
      throw DeviceError(
          fmt::format("the GPU failed ({}: {}) while a training step was being "
                      "captured into a CUDA graph ({})",
                      cudaGetErrorName(sound), cudaGetErrorString(sound), failure));
    if (options_.verbose)
      std::fprintf(stderr, "[cnn] CUDA graph capture failed, steps run uncaptured: %s\n",
                   failure.c_str());
    return nullptr;
  }
  return std::make_unique<CudaStepGraph>(exec, nodes, stream_, allocator_);
}

}  // namespace cnn::cuda
