// The op interface every backend implements: one signature per op, shared by the CPU
// backend (reference loops and OpenBLAS) and the CUDA backend (handwritten kernels,
// cuDNN, cuBLAS). Pointers live on the backend's device. Every output is assigned, not
// accumulated, unless the name says accumulate. Layers and the executor talk only to
// this interface, so one graph runs anywhere.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnnk/augment.h"
#include "cnnk/geometry.h"
#include "cnnk/step.h"
#include "engine/backend/impl_policy.h"
#include "engine/core/tensor.h"
#include "engine/ops/activation/activation.h"
#include "engine/ops/loss/softmax_xent.h"
#include "engine/ops/optim/optim_update.h"
#include "engine/ops/tensor_ops/tensor_ops.h"

namespace cnn {

// Running sums of the loss and of correct predictions since the last reset; the device
// keeps them, the host reads them a few times per epoch.
struct Metrics {
  double loss_sum = 0;
  int64_t correct = 0;
  int64_t count = 0;
  double mean_loss() const { return count ? loss_sum / static_cast<double>(count) : 0.0; }
  double accuracy() const {
    return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
  }
};

// A list of row indices on the backend's device (the epoch's sample order).
using IndexBuffer = std::shared_ptr<const int32_t>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // The implementation used for an op family ("reference", "openblas", "native", ...).
  virtual std::string impl_name(const std::string& op_family) const = 0;
  // The threads it computes with on the host: the CPU backend's count, 0 for a GPU's.
  virtual int host_threads() const { return 0; }
  // Every implementation choice made so far: "conv2d forward <shape>" -> "native", ...
  virtual std::map<std::string, std::string> implementation_choices() const { return {}; }

  // Memory and transfers. empty() returns uninitialised storage.
  virtual Tensor empty(const Shape& shape) = 0;
  virtual void fill(const Tensor& t, float value) = 0;
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void upload(const float* host, const Tensor& dst) = 0;
  virtual void download(const Tensor& src, float* host) = 0;
  virtual void synchronize() = 0;
  Tensor zeros(const Shape& shape);
  Tensor to_device(const Tensor& host);  // a copy on this backend's device
  Tensor to_host(const Tensor& t);       // a host copy (synchronizes)

  // Convolution (NCHW, OIHW); b / db may be null.
  virtual void conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                              const float* b, float* y) = 0;
  virtual void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy, const float* w,
                                    float* dx) = 0;
  virtual void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x,
                                      const float* dy, float* dw, float* db) = 0;
  // y = act(conv(x, w) + b): equal to conv2d_forward then activation_forward in place,
  // which is what this default does; a backend that can applies the activation in the
  // convolution's epilogue instead (one pass over y, not three).
  virtual void conv2d_forward_fused(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                                    const float* b, Activation act, float* y);

  virtual void pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y) = 0;
  // y is the forward's output (cuDNN's backward wants it; the others recompute).
  virtual void pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float* y,
                               const float* dy, float* dx) = 0;

  virtual void batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const float* x,
                                          const float* gamma, const float* beta, float momentum,
                                          float epsilon, float* running_mean, float* running_var,
                                          float* y, float* save_mean, float* save_invstd) = 0;
  virtual void batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const float* x,
                                           const float* gamma, const float* beta,
                                           const float* running_mean, const float* running_var,
                                           float epsilon, float* y) = 0;
  // epsilon is the training forward's: the saved 1/std already holds it, but cuDNN's
  // backward asks for it again and must be given the same.
  virtual void batchnorm_backward(const cnnk::BatchNormGeometry& g, const float* x, const float* dy,
                                  const float* gamma, const float* save_mean,
                                  const float* save_invstd, float epsilon, float* dx, float* dgamma,
                                  float* dbeta) = 0;

  virtual void dense_forward(const cnnk::DenseGeometry& g, const float* x, const float* w,
                             const float* b, float* y) = 0;
  virtual void dense_backward_data(const cnnk::DenseGeometry& g, const float* dy, const float* w,
                                   float* dx) = 0;
  virtual void dense_backward_weights(const cnnk::DenseGeometry& g, const float* x, const float* dy,
                                      float* dw, float* db) = 0;
  // y = act(x . W^T + b): dense_forward then activation_forward in place, which is what
  // this default does; a backend that can adds the bias and applies the activation in
  // one pass after the GEMM.
  virtual void dense_forward_fused(const cnnk::DenseGeometry& g, const float* x, const float* w,
                                   const float* b, Activation act, float* y);

  // Activations; in-place forward (x == y) is allowed; backward dx may alias dy.
  virtual void activation_forward(Activation a, const ActivationGeometry& g, const float* x,
                                  float* y) = 0;
  virtual void activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                   const float* dy, float* dx) = 0;
  // The backward of a layer's bias and fused activation over [n, c, spatial]: dz = dy
  // through the activation's derivative at its output y (dz may alias dy; linear: dz is
  // dy, and dz == dy copies nothing), and, when db is not null, db[c] = the sum of dz
  // over n and spatial. The layers pass db here and none to conv2d_backward_filter or
  // dense_backward_weights, so that a backend can do both in one pass over the gradient.
  virtual void bias_activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                        const float* dy, float* dz, float* db) = 0;

  // The mask comes from seed.value(), whose step may be Live (cnnk/step.h).
  virtual void dropout_forward(const cnnk::DropoutGeometry& g, float rate, cnnk::StepSeed seed,
                               const float* x, float* y, float* mask) = 0;
  virtual void dropout_backward(const cnnk::DropoutGeometry& g, const float* mask, const float* dy,
                                float* dx) = 0;

  virtual void add(int64_t size, const float* a, const float* b, float* y) = 0;
  virtual void accumulate(int64_t size, const float* src, float* dst) = 0;
  virtual void channel_copy(const ChannelCopyGeometry& g, const float* src, float* dst) = 0;

  // Fused softmax cross-entropy: adds the batch's loss sum, correct count and rows to the
  // metrics; writes dlogits = (softmax - target) * grad_scale when dlogits is not null.
  // labels: class ids [rows] when sparse, else targets [rows, classes].
  virtual void softmax_xent(const LossGeometry& g, const float* logits, const float* labels,
                            bool sparse, float grad_scale, float* dlogits) = 0;
  virtual void metrics_reset() = 0;
  virtual Metrics metrics_read() = 0;

  // Optimizer updates over the whole flat parameter buffer, one call per step. `rate` is
  // the step's learning rate (Adam: its bias-corrected step size, adam_step_size) and
  // `momentum` SGD's momentum or Adam's beta1, Live so that a captured step reads each
  // step's; the hyper-parameters' own lr, momentum and beta1 are not read. SGD without a
  // velocity (null) is plain SGD.
  virtual void sgd_update(int64_t n, const SgdHyper& h, cnnk::Live<float> rate,
                          cnnk::Live<float> momentum, float* w, const float* g,
                          float* velocity) = 0;
  virtual void adam_update(int64_t n, const AdamHyper& h, cnnk::Live<float> rate,
                           cnnk::Live<float> beta1, float* w, const float* g, float* m,
                           float* v) = 0;
  virtual void rmsprop_update(int64_t n, const RmspropHyper& h, cnnk::Live<float> rate, float* w,
                              const float* g, float* v) = 0;

  // The batch gather: dst[i, :] = src[indices[i], :] for i < count (row_len floats each);
  // the indices pointer may be Live.
  virtual IndexBuffer upload_indices(const std::vector<int32_t>& indices) = 0;
  virtual void gather_rows(const float* src, int64_t row_len, cnnk::Live<const int32_t*> indices,
                           int64_t count, float* dst) = 0;
  // Training-time augmentation of a gathered batch [n, c, h, w]: per sample a random
  // horizontal flip and translation with zero fill, drawn from (seed.value(), sample) as
  // cnnk::augment_draw says. Assigns y, which must not alias x.
  virtual void augment(const cnnk::AugmentGeometry& g, cnnk::StepSeed seed, const float* x,
                       float* y) = 0;

  // The step scalars (cnnk/step.h): one block in backend memory at a fixed address, which
  // Live values point into. set_step writes it in stream order, without synchronizing.
  virtual const cnnk::StepScalars* step_scalars() const = 0;
  virtual void set_step(const cnnk::StepScalars& s) = 0;
  // What a captured step holds, by the driver's node types: a step's launch overhead
  // grows with the count, and copies in a step are worth a look.
  struct GraphNodes {
    int64_t kernels = 0, copies = 0, sets = 0, other = 0;
    int64_t total() const { return kernels + copies + sets + other; }
  };
  class StepGraph {
   public:
    virtual ~StepGraph() = default;
    virtual void replay() = 0;
    virtual GraphNodes nodes() const { return {}; }
  };
  // Records the launches `body` makes into a graph that replay() runs again with the same
  // arguments (so whatever changes per step must be Live). Returns null where the backend
  // cannot (the CPU; a GPU under sync_debug) or when the capture failed (the reason is
  // logged): the caller then runs body itself. Capturing does not run the body's work, and
  // the body must not allocate device memory: run it once uncaptured first.
  virtual std::unique_ptr<StepGraph> capture(const std::function<void()>& /*body*/) {
    return nullptr;
  }

  // ---- Timing and profiling (cnn bench, cnn profile) ----------------------------------
  // Points on the backend's timeline, for spans a caller cannot wrap in one function (an
  // executor observer's before and after): mark() records "now" in the order of the
  // backend's work (a CUDA event on its stream; on the CPU the clock, after a
  // synchronize), elapsed_ms(from, to) waits for `to` and returns the time between them.
  class Timeline {
   public:
    virtual ~Timeline() = default;
    virtual int mark() = 0;
    virtual double elapsed_ms(int from, int to) = 0;
  };
  virtual std::unique_ptr<Timeline> timeline();
  // Runs `body` `warmup` times untimed, then `repeats` times, and returns each repeat's
  // milliseconds: device time between CUDA events on a GPU (the L2 cache flushed before
  // each repeat, so a small problem is not timed from a warm cache), the steady clock
  // around body + synchronize on the CPU.
  virtual std::vector<double> time_ms(const std::function<void()>& body, int warmup, int repeats);
  // Brackets the region Nsight captures (cudaProfilerStart/Stop: nsys --capture-range=
  // cudaProfilerApi, ncu --profile-from-start off); nothing on the CPU.
  virtual void profiler_start() {}
  virtual void profiler_stop() {}
};

// How a GPU backend chooses and checks (ignored by the CPU backend).
struct BackendOptions {
  ImplPolicy policy = ImplPolicy::Native;      // --impl native|cudnn|auto
  size_t workspace_limit = size_t(256) << 20;  // cuDNN workspace budget, bytes
  bool sync_debug = false;  // synchronize after every launch (also CNN_SYNC_DEBUG=1)
  bool verbose = true;      // log implementation choices and fallbacks to stderr
  // --tf32: convolutions (native and cuDNN) and cuBLAS GEMMs may use TF32 tensor cores
  // (10-bit mantissas in the products). Off: strict FP32 everywhere.
  bool tf32 = false;
  // --conv-tiles 128: the native convolutions' implicit GEMMs run on 128x128 tiles
  // (igemm-128, or igemm-tf32-128 with tf32) instead of 64x64 (igemm, igemm-tf32).
  // Opt-in until timed on the H200.
  bool large_tiles = false;
  // --deterministic: the same inputs give the same bits on every run. The native kernels
  // always do (no atomics; split reductions are summed in a fixed order) and so does
  // cuBLAS (its atomics stay off); this keeps cuDNN to the algorithms it reports
  // deterministic (and to CUDNN_POOLING_MAX_DETERMINISTIC), and makes --impl auto choose
  // without timing, since timings, and so the choices, vary from run to run.
  bool deterministic = false;
  // --threads: the CPU backend's thread count; 0: every core this process may use.
  int cpu_threads = 0;
};

// The backend for a device: CPU for the host, CUDA (when built) for a GPU.
std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& options = {});
// Whether make_backend can build a backend for a CUDA device in this build.
bool has_cuda_backend();
// The GPU libraries this process loaded, as `cnn devices` prints them ("cuDNN 9.19.0
// (built with 9.19.0)"); "" in a build without CUDA.
std::string gpu_library_versions();

}  // namespace cnn
