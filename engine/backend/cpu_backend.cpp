#include "engine/backend/cpu_backend.h"

#if CNN_HAVE_CBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <cstring>

#include "engine/core/error.h"
#include "engine/ops/augment/augment.h"
#include "engine/ops/batchnorm/batchnorm.h"
#include "engine/ops/bias/bias.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/dense/dense.h"
#include "engine/ops/dropout/dropout.h"
#include "engine/ops/pool2d/pool2d.h"

namespace cnn {

CpuBackend::CpuBackend(bool reference_only) : reference_only_(reference_only) {
  // OpenBLAS splits a GEMM differently for different thread counts, and the sums then
  // round differently. One thread makes runs bit-identical on any machine, and on the
  // small per-image GEMMs of these models it is also the fastest (measured on 2 cores:
  // 4.4 s against 5.4 s for 30000 images of mnist-cnn). The setting is the library's
  // own process-wide state.
#if CNN_HAVE_CBLAS
  openblas_set_num_threads(1);
#endif
}

std::string CpuBackend::impl_name(const std::string& op_family) const {
  if (reference_only_) return "reference";
  return (op_family == "conv2d" || op_family == "dense")
             ? (CNN_HAVE_CBLAS ? "openblas" : "gemm-loops")
             : "reference";
}

Tensor CpuBackend::empty(const Shape& shape) { return Tensor::empty_host(shape); }

void CpuBackend::fill(const Tensor& t, float value) { std::fill_n(t.host(), t.numel(), value); }

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  CNN_CHECK(src.numel() == dst.numel(), Error, "copy of {} into {}", src.shape().str(),
            dst.shape().str());
  std::memmove(dst.host(), src.host(), static_cast<size_t>(src.numel()) * sizeof(float));
}

void CpuBackend::upload(const float* host, const Tensor& dst) {
  std::memmove(dst.host(), host, static_cast<size_t>(dst.numel()) * sizeof(float));
}

void CpuBackend::download(const Tensor& src, float* host) {
  std::memmove(host, src.host(), static_cast<size_t>(src.numel()) * sizeof(float));
}

float* CpuBackend::col_workspace(size_t elements) {
  if (col_.size() < elements) col_.resize(elements);
  return col_.data();
}

void CpuBackend::conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                                const float* b, float* y) {
  if (reference_only_) return ref::conv2d_forward(g, x, w, b, y);
  blas::conv2d_forward(g, x, w, b, y, col_workspace(blas::conv2d_col_elements(g)));
}

void CpuBackend::conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy,
                                      const float* w, float* dx) {
  if (reference_only_) return ref::conv2d_backward_data(g, dy, w, dx);
  blas::conv2d_backward_data(g, dy, w, dx, col_workspace(blas::conv2d_col_elements(g)));
}

void CpuBackend::conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x,
                                        const float* dy, float* dw, float* db) {
  if (reference_only_) return ref::conv2d_backward_filter(g, x, dy, dw, db);
  blas::conv2d_backward_filter(g, x, dy, dw, db, col_workspace(blas::conv2d_col_elements(g)));
}

void CpuBackend::pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y) {
  ref::pool2d_forward(g, x, y);
}

void CpuBackend::pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float*,
                                 const float* dy, float* dx) {
  ref::pool2d_backward(g, x, dy, dx);
}

void CpuBackend::batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const float* x,
                                            const float* gamma, const float* beta, float momentum,
                                            float epsilon, float* running_mean, float* running_var,
                                            float* y, float* save_mean, float* save_invstd) {
  ref::batchnorm_forward_training(g, x, gamma, beta, momentum, epsilon, running_mean, running_var,
                                  y, save_mean, save_invstd);
}

void CpuBackend::batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const float* x,
                                             const float* gamma, const float* beta,
                                             const float* running_mean, const float* running_var,
                                             float epsilon, float* y) {
  ref::batchnorm_forward_inference(g, x, gamma, beta, running_mean, running_var, epsilon, y);
}

void CpuBackend::batchnorm_backward(const cnnk::BatchNormGeometry& g, const float* x,
                                    const float* dy, const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* dx, float* dgamma,
                                    float* dbeta) {
  ref::batchnorm_backward(g, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

void CpuBackend::dense_forward(const cnnk::DenseGeometry& g, const float* x, const float* w,
                               const float* b, float* y) {
  if (reference_only_) return ref::dense_forward(g, x, w, b, y);
  blas::dense_forward(g, x, w, b, y);
}

void CpuBackend::dense_backward_data(const cnnk::DenseGeometry& g, const float* dy, const float* w,
                                     float* dx) {
  if (reference_only_) return ref::dense_backward_data(g, dy, w, dx);
  blas::dense_backward_data(g, dy, w, dx);
}

void CpuBackend::dense_backward_weights(const cnnk::DenseGeometry& g, const float* x,
                                        const float* dy, float* dw, float* db) {
  if (reference_only_) return ref::dense_backward_weights(g, x, dy, dw, db);
  blas::dense_backward_weights(g, x, dy, dw, db);
}

void CpuBackend::activation_forward(Activation a, const ActivationGeometry& g, const float* x,
                                    float* y) {
  ref::activation_forward(a, g, x, y);
}

void CpuBackend::activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                     const float* dy, float* dx) {
  ref::activation_backward(a, g, y, dy, dx);
}

void CpuBackend::bias_activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                          const float* dy, float* dz, float* db) {
  if (a != Activation::Linear || dz != dy) ref::activation_backward(a, g, y, dy, dz);
  if (db) ref::bias_backward(g, dz, db);
}

void CpuBackend::dropout_forward(const cnnk::DropoutGeometry& g, float rate, cnnk::StepSeed seed,
                                 const float* x, float* y, float* mask) {
  ref::dropout_forward(g, rate, seed.value(), x, y, mask);
}

void CpuBackend::dropout_backward(const cnnk::DropoutGeometry& g, const float* mask,
                                  const float* dy, float* dx) {
  ref::dropout_backward(g, mask, dy, dx);
}

void CpuBackend::add(int64_t size, const float* a, const float* b, float* y) {
  ref::add_forward(size, a, b, y);
}

void CpuBackend::accumulate(int64_t size, const float* src, float* dst) {
  ref::accumulate(size, src, dst);
}

void CpuBackend::channel_copy(const ChannelCopyGeometry& g, const float* src, float* dst) {
  ref::channel_copy(g, src, dst);
}

void CpuBackend::softmax_xent(const LossGeometry& g, const float* logits, const float* labels,
                              bool sparse, float grad_scale, float* dlogits) {
  int64_t correct = 0;
  const double loss =
      sparse ? ref::softmax_xent_sparse(g, logits, labels, grad_scale, dlogits, &correct)
             : ref::softmax_xent_dense(g, logits, labels, grad_scale, dlogits, &correct);
  metrics_.loss_sum += loss;
  metrics_.correct += correct;
  metrics_.count += g.rows;
}

void CpuBackend::sgd_update(int64_t n, const SgdHyper& h, cnnk::Live<float> rate,
                            cnnk::Live<float> momentum, float* w, const float* g, float* velocity) {
  SgdHyper at_step = h;
  at_step.lr = rate.get();
  at_step.momentum = momentum.get();
  ref::sgd_update(n, at_step, w, g, velocity);
}

void CpuBackend::adam_update(int64_t n, const AdamHyper& h, cnnk::Live<float> rate,
                             cnnk::Live<float> beta1, float* w, const float* g, float* m,
                             float* v) {
  AdamHyper at_step = h;
  at_step.beta1 = beta1.get();
  ref::adam_apply(n, at_step, rate.get(), w, g, m, v);
}

void CpuBackend::rmsprop_update(int64_t n, const RmspropHyper& h, cnnk::Live<float> rate, float* w,
                                const float* g, float* v) {
  RmspropHyper at_rate = h;
  at_rate.lr = rate.get();
  ref::rmsprop_update(n, at_rate, w, g, v);
}

IndexBuffer CpuBackend::upload_indices(const std::vector<int32_t>& indices) {
  auto buf = std::shared_ptr<int32_t>(new int32_t[std::max<size_t>(indices.size(), 1)],
                                      std::default_delete<int32_t[]>());
  std::copy(indices.begin(), indices.end(), buf.get());
  return buf;
}

void CpuBackend::gather_rows(const float* src, int64_t row_len,
                             cnnk::Live<const int32_t*> live_indices, int64_t count, float* dst) {
  const int32_t* indices = live_indices.get();
  const size_t bytes = static_cast<size_t>(row_len) * sizeof(float);
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(dst + i * row_len, src + static_cast<int64_t>(indices[i]) * row_len, bytes);
}

void CpuBackend::augment(const cnnk::AugmentGeometry& g, cnnk::StepSeed seed, const float* x,
                         float* y) {
  ref::augment(g, seed.value(), x, y);
}

}  // namespace cnn
