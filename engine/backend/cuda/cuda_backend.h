// The GPU backend: device-resident tensors from a caching allocator, one stream, the
// handwritten kernels of kernels/ ("native"), cuDNN as the fallback path, cuBLAS for
// dense layers. Per op and shape a pure policy (impl_policy.h) picks native or cuDNN;
// every choice is recorded and logged once. Every call is checked; with sync_debug the
// backend synchronizes after each launch so an asynchronous fault names its kernel.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnnk/conv2d.h"
#include "engine/backend/backend.h"
#include "engine/backend/cuda/cudnn_context.h"
#include "engine/backend/cuda/device_allocator.h"
#include "engine/backend/impl_policy.h"

namespace cnn::cuda {

struct CudaOptions : BackendOptions {
  int device = 0;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& options);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda(options_.device); }
  std::string impl_name(const std::string& op_family) const override;
  // "conv2d forward <shape>" -> "native" / "cudnn (reason)", for reports and verify.
  std::map<std::string, std::string> implementation_choices() const override { return choices_; }
  DeviceAllocator::Stats memory_stats() const { return allocator_->stats(); }
  cudaStream_t stream() const { return stream_; }
  const CudaOptions& options() const { return options_; }
  // cuDNN's algorithm choices that differ from its heuristics' first (workspace budget,
  // --deterministic, an algorithm that refused to run), one line each.
  std::vector<std::string> cudnn_log() const;
  // Whether cuDNN has been used: its handle is made at the first op that runs on it, so a
  // run that stays native never loads cuDNN or takes its memory.
  bool cudnn_started() const { return cudnn_ != nullptr; }

  Tensor empty(const Shape& shape) override;
  void fill(const Tensor& t, float value) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void upload(const float* host, const Tensor& dst) override;
  void download(const Tensor& src, float* host) override;
  void synchronize() override;

  void conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w, const float* b,
                      float* y) override;
  void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy, const float* w,
                            float* dx) override;
  void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x, const float* dy,
                              float* dw, float* db) override;
  // The native kernels apply the activation in their epilogue; cuDNN runs it after.
  void conv2d_forward_fused(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                            const float* b, Activation act, float* y) override;

  void pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y) override;
  void pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float* y,
                       const float* dy, float* dx) override;

  void batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const float* x,
                                  const float* gamma, const float* beta, float momentum,
                                  float epsilon, float* running_mean, float* running_var, float* y,
                                  float* save_mean, float* save_invstd) override;
  void batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const float* x,
                                   const float* gamma, const float* beta, const float* running_mean,
                                   const float* running_var, float epsilon, float* y) override;
  void batchnorm_backward(const cnnk::BatchNormGeometry& g, const float* x, const float* dy,
                          const float* gamma, const float* save_mean, const float* save_invstd,
                          float epsilon, float* dx, float* dgamma, float* dbeta) override;

  void dense_forward(const cnnk::DenseGeometry& g, const float* x, const float* w, const float* b,
                     float* y) override;
  void dense_backward_data(const cnnk::DenseGeometry& g, const float* dy, const float* w,
                           float* dx) override;
  void dense_backward_weights(const cnnk::DenseGeometry& g, const float* x, const float* dy,
                              float* dw, float* db) override;
  // The bias and the activation in one pass after the GEMM.
  void dense_forward_fused(const cnnk::DenseGeometry& g, const float* x, const float* w,
                           const float* b, Activation act, float* y) override;

  void activation_forward(Activation a, const ActivationGeometry& g, const float* x,
                          float* y) override;
  void activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                           const float* dy, float* dx) override;
  void bias_activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                const float* dy, float* dz, float* db) override;

  void dropout_forward(const cnnk::DropoutGeometry& g, float rate, cnnk::StepSeed seed,
                       const float* x, float* y, float* mask) override;
  void dropout_backward(const cnnk::DropoutGeometry& g, const float* mask, const float* dy,
                        float* dx) override;

  void add(int64_t size, const float* a, const float* b, float* y) override;
  void accumulate(int64_t size, const float* src, float* dst) override;
  void channel_copy(const ChannelCopyGeometry& g, const float* src, float* dst) override;

  void softmax_xent(const LossGeometry& g, const float* logits, const float* labels, bool sparse,
                    float grad_scale, float* dlogits) override;
  void metrics_reset() override;
  Metrics metrics_read() override;

  void sgd_update(int64_t n, const SgdHyper& h, cnnk::Live<float> rate, cnnk::Live<float> momentum,
                  float* w, const float* g, float* velocity) override;
  void adam_update(int64_t n, const AdamHyper& h, cnnk::Live<float> rate, cnnk::Live<float> beta1,
                   float* w, const float* g, float* m, float* v) override;
  void rmsprop_update(int64_t n, const RmspropHyper& h, cnnk::Live<float> rate, float* w,
                      const float* g, float* v) override;

  IndexBuffer upload_indices(const std::vector<int32_t>& indices) override;
  void gather_rows(const float* src, int64_t row_len, cnnk::Live<const int32_t*> indices,
                   int64_t count, float* dst) override;
  void augment(const cnnk::AugmentGeometry& g, cnnk::StepSeed seed, const float* x,
               float* y) override;

  const cnnk::StepScalars* step_scalars() const override { return step_; }
  void set_step(const cnnk::StepScalars& s) override;
  std::unique_ptr<StepGraph> capture(const std::function<void()>& body) override;

  // Timing with CUDA events on the stream, and the Nsight capture range (cuda_timing.cpp).
  std::unique_ptr<Timeline> timeline() override;
  std::vector<double> time_ms(const std::function<void()>& body, int warmup, int repeats) override;
  void profiler_start() override;
  void profiler_stop() override;

 private:
  // Checks a launcher's status; under sync_debug also synchronizes and names the kernel.
  void launched(cudaError_t status, const char* kernel);
  // Native or cuDNN for (family, pass, shape key), recording and logging the choice.
  // Under auto, `time_native` / `time_cudnn` run the op once each for timing.
  Impl choose(const std::string& family, const std::string& pass, const std::string& key,
              cnnk::Support native, cnnk::Support cudnn, const std::function<void()>& run_native,
              const std::function<void()>& run_cudnn);
  // Runs a convolution pass on `impl` and names what ran in its choice: the native
  // kernel variant, or cuDNN's algorithm (recorded when its plan is made).
  void run_conv(Impl impl, const char* pass, const cnnk::Conv2dGeometry& g,
                cnnk::ConvPass conv_pass, const std::function<void()>& native,
                const std::function<void()>& cudnn);
  double median_ms(const std::function<void()>& f);
  // The native kernels' workspace of at least `bytes` (grown once per shape); null for 0.
  void* scratch(size_t bytes);
  // The cuDNN context, made on first use (a step's first run is never captured, so the
  // handle's allocations happen outside a capture).
  CudnnContext& cudnn_context();
  // What the native convolutions may use: TF32 (--tf32), the 128x128 tiles (--conv-tiles).
  cnnk::ConvOptions conv_options() const { return {options_.tf32, options_.large_tiles}; }

  CudaOptions options_;
  std::shared_ptr<DeviceAllocator> allocator_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<CudnnContext> cudnn_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  void* metrics_ = nullptr;     // cnnk::DeviceMetrics followed by the bad-label flag
  float* loss_rows_ = nullptr;  // per-row loss and correct flags, 2 * loss_capacity_
  size_t loss_capacity_ = 0;
  cnnk::StepScalars* step_ = nullptr;  // device memory: see cnnk/step.h
  void* cublas_workspace_ = nullptr;   // fixed, so cuBLAS never allocates inside a capture
  std::map<std::string, std::string> choices_;
  std::map<std::string, Impl> decided_;
  // Per batch-norm shape, the implementation of the last training forward: the one whose
  // saved statistics the backward reads.
  std::map<std::string, Impl> bn_statistics_from_;
};

}  // namespace cnn::cuda
