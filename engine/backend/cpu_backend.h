// The CPU backend: the reference ops for everything, except convolution and dense layers,
// which go through im2col + OpenBLAS (the reference loops are too slow to train with;
// tests hold the two to each other). The work runs on several threads (OpenMP): images,
// channels, slices of the batch. Deterministic: the same inputs give the same bits, on
// any machine and for any thread count (engine/core/parallel.h says how).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/backend/backend.h"

namespace cnn {

class CpuBackend final : public Backend {
 public:
  // reference_only: convolution and dense layers use the plain reference loops too (the
  // oracle `cnn verify` compares GPU kernels against); slow, but nothing clever.
  // threads: 0 takes default_cpu_threads() (every core this process may use, or
  // OMP_NUM_THREADS).
  explicit CpuBackend(bool reference_only = false, int threads = 1);
  int host_threads() const override { return threads_; }
  // Where an op family has more than one CPU implementation (max pooling: the fast path
  // for disjoint windows, else the reference), which one each shape ran:
  // "pool2d forward <shape>" -> "disjoint-max".
  std::map<std::string, std::string> implementation_choices() const override { return choices_; }
  Device device() const override { return Device::host(); }
  std::string impl_name(const std::string& op_family) const override;

  Tensor empty(const Shape& shape) override;
  void fill(const Tensor& t, float value) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void upload(const float* host, const Tensor& dst) override;
  void download(const Tensor& src, float* host) override;
  void synchronize() override {}

  void conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w, const float* b,
                      float* y) override;
  void conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy, const float* w,
                            float* dx) override;
  void conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x, const float* dy,
                              float* dw, float* db) override;

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
  void metrics_reset() override { metrics_ = {}; }
  Metrics metrics_read() override { return metrics_; }

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

  // Host memory: a Live value pointing here is read when the op runs, which on the CPU is
  // the call itself.
  const cnnk::StepScalars* step_scalars() const override { return &step_; }
  void set_step(const cnnk::StepScalars& s) override { step_ = s; }

 private:
  float* conv_workspace(const cnnk::Conv2dGeometry& g);
  // One pooling pass over the threads' ranges of images: run(part, input offset, output
  // offset, fast), fast where the disjoint-max path applies; records which one ran.
  template <class F>
  void pool2d_pass(const char* pass, const cnnk::Pool2dGeometry& g, F&& run);

  bool reference_only_;
  int threads_;
  std::vector<float> conv_workspace_;  // im2col and partial sums, grown to the largest layer
  std::map<std::string, std::string> choices_;
  Metrics metrics_;
  cnnk::StepScalars step_;
};

}  // namespace cnn
