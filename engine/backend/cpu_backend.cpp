#include "engine/backend/cpu_backend.h"

#if CNN_HAVE_CBLAS
#include <cblas.h>
#endif

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "engine/core/error.h"
#include "engine/core/parallel.h"
#include "engine/ops/augment/augment.h"
#include "engine/ops/batchnorm/batchnorm.h"
#include "engine/ops/bias/bias.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/dense/dense.h"
#include "engine/ops/dropout/dropout.h"
#include "engine/ops/pool2d/pool2d.h"

namespace cnn {

CpuBackend::CpuBackend(bool reference_only, int threads)
    : reference_only_(reference_only), threads_(threads > 0 ? threads : default_cpu_threads()) {
  // OpenBLAS splits a GEMM differently for different thread counts, and the sums then
  // round differently. So OpenBLAS runs on the calling thread, and the backend splits
  // the work itself (images, slices of the batch; see parallel.h), in a way that gives
  // the same bits for any thread count. The setting is the library's own process-wide
  // state.
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

float* CpuBackend::conv_workspace(const cnnk::Conv2dGeometry& g) {
  const size_t elements = blas::conv2d_workspace_elements(g, threads_);
  if (conv_workspace_.size() < elements) conv_workspace_.resize(elements);
  return conv_workspace_.data();
}

void CpuBackend::conv2d_forward(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                                const float* b, float* y) {
  if (reference_only_) return ref::conv2d_forward(g, x, w, b, y);
  blas::conv2d_forward(g, x, w, b, y, conv_workspace(g), threads_);
}

void CpuBackend::conv2d_backward_data(const cnnk::Conv2dGeometry& g, const float* dy,
                                      const float* w, float* dx) {
  if (reference_only_) return ref::conv2d_backward_data(g, dy, w, dx);
  blas::conv2d_backward_data(g, dy, w, dx, conv_workspace(g), threads_);
}

void CpuBackend::conv2d_backward_filter(const cnnk::Conv2dGeometry& g, const float* x,
                                        const float* dy, float* dw, float* db) {
  if (reference_only_) return ref::conv2d_backward_filter(g, x, dy, dw, db);
  blas::conv2d_backward_filter(g, x, dy, dw, db, conv_workspace(g), threads_);
}

// The ops below are the reference's, run on the threads in independent parts: ranges of
// images (pooling, activations, dropout, elementwise sums) or of channels (batch
// normalization, the bias gradient). Each part computes exactly what the whole call computes for
// it.

namespace {

// Elementwise sums shorter than this stay on one thread: the threads' start costs more.
constexpr int64_t kMinElementRun = 16384;

// g restricted to the images [first, end) (the caller offsets the pointers).
template <class G>
G images(const G& g, int64_t first, int64_t end) {
  G part = g;
  part.n = static_cast<int>(end - first);
  return part;
}

}  // namespace

template <class F>
void CpuBackend::pool2d_pass(const char* pass, const cnnk::Pool2dGeometry& g, F&& run) {
  const bool fast = !reference_only_ && cpu::max_pool2d_disjoint(g);
  choices_[fmt::format("pool2d {} {}", pass, describe(g))] = fast ? "disjoint-max" : "reference";
  const int64_t in = static_cast<int64_t>(g.c) * g.h * g.w,
                out = static_cast<int64_t>(g.c) * g.p * g.q;
  parallel_ranges(threads_, g.n, [&](int64_t first, int64_t end) {
    run(images(g, first, end), first * in, first * out, fast);
  });
}

void CpuBackend::pool2d_forward(const cnnk::Pool2dGeometry& g, const float* x, float* y) {
  pool2d_pass("forward", g,
              [&](const cnnk::Pool2dGeometry& part, int64_t in, int64_t out, bool fast) {
                if (fast)
                  cpu::max_pool2d_forward(part, x + in, y + out);
                else
                  ref::pool2d_forward(part, x + in, y + out);
              });
}

void CpuBackend::pool2d_backward(const cnnk::Pool2dGeometry& g, const float* x, const float*,
                                 const float* dy, float* dx) {
  pool2d_pass("backward", g,
              [&](const cnnk::Pool2dGeometry& part, int64_t in, int64_t out, bool fast) {
                if (fast)
                  cpu::max_pool2d_backward(part, x + in, dy + out, dx + in);
                else
                  ref::pool2d_backward(part, x + in, dy + out, dx + in);
              });
}

void CpuBackend::batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const float* x,
                                            const float* gamma, const float* beta, float momentum,
                                            float epsilon, float* running_mean, float* running_var,
                                            float* y, float* save_mean, float* save_invstd) {
  parallel_ranges(threads_, g.c, [&](int64_t first, int64_t end) {
    ref::batchnorm_forward_training_channels(g, static_cast<int>(first), static_cast<int>(end), x,
                                             gamma, beta, momentum, epsilon, running_mean,
                                             running_var, y, save_mean, save_invstd);
  });
}

void CpuBackend::batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const float* x,
                                             const float* gamma, const float* beta,
                                             const float* running_mean, const float* running_var,
                                             float epsilon, float* y) {
  parallel_ranges(threads_, g.c, [&](int64_t first, int64_t end) {
    ref::batchnorm_forward_inference_channels(g, static_cast<int>(first), static_cast<int>(end), x,
                                              gamma, beta, running_mean, running_var, epsilon, y);
  });
}

void CpuBackend::batchnorm_backward(const cnnk::BatchNormGeometry& g, const float* x,
                                    const float* dy, const float* gamma, const float* save_mean,
                                    const float* save_invstd, float /*epsilon*/, float* dx,
                                    float* dgamma, float* dbeta) {
  parallel_ranges(threads_, g.c, [&](int64_t first, int64_t end) {
    ref::batchnorm_backward_channels(g, static_cast<int>(first), static_cast<int>(end), x, dy,
                                     gamma, save_mean, save_invstd, dx, dgamma, dbeta);
  });
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
  const int64_t image = g.c * g.spatial;
  parallel_ranges(threads_, g.n, [&](int64_t first, int64_t end) {
    ref::activation_forward(a, images(g, first, end), x + first * image, y + first * image);
  });
}

void CpuBackend::activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                     const float* dy, float* dx) {
  const int64_t image = g.c * g.spatial;
  parallel_ranges(threads_, g.n, [&](int64_t first, int64_t end) {
    ref::activation_backward(a, images(g, first, end), y + first * image, dy + first * image,
                             dx + first * image);
  });
}

void CpuBackend::bias_activation_backward(Activation a, const ActivationGeometry& g, const float* y,
                                          const float* dy, float* dz, float* db) {
  if (a != Activation::Linear || dz != dy) activation_backward(a, g, y, dy, dz);
  if (!db) return;
  parallel_ranges(threads_, g.c, [&](int64_t first, int64_t end) {
    ref::bias_backward_channels(g, first, end, dz, db);
  });
}

void CpuBackend::dropout_forward(const cnnk::DropoutGeometry& g, float rate, cnnk::StepSeed seed,
                                 const float* x, float* y, float* mask) {
  ref::check_dropout_rate(rate);  // here: nothing may throw on the threads
  const int64_t image = static_cast<int64_t>(g.c) * g.spatial;
  parallel_ranges(threads_, g.n, [&](int64_t first, int64_t end) {
    ref::dropout_forward_elements(g, rate, seed.value(), x, y, mask, first * image, end * image);
  });
}

void CpuBackend::dropout_backward(const cnnk::DropoutGeometry& g, const float* mask,
                                  const float* dy, float* dx) {
  const int64_t image = static_cast<int64_t>(g.c) * g.spatial;
  parallel_ranges(threads_, g.n, [&](int64_t first, int64_t end) {
    ref::dropout_backward(images(g, first, end), mask + first * image, dy + first * image,
                          dx + first * image);
  });
}

void CpuBackend::add(int64_t size, const float* a, const float* b, float* y) {
  parallel_ranges(
      threads_, size,
      [&](int64_t first, int64_t end) {
        ref::add_forward(end - first, a + first, b + first, y + first);
      },
      kMinElementRun);
}

void CpuBackend::accumulate(int64_t size, const float* src, float* dst) {
  parallel_ranges(
      threads_, size,
      [&](int64_t first, int64_t end) { ref::accumulate(end - first, src + first, dst + first); },
      kMinElementRun);
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
  parallel_ranges(
      threads_, n,
      [&](int64_t first, int64_t end) {
        ref::sgd_update(end - first, at_step, w + first, g + first,
                        velocity ? velocity + first : nullptr);
      },
      kMinElementRun);
}

void CpuBackend::adam_update(int64_t n, const AdamHyper& h, cnnk::Live<float> rate,
                             cnnk::Live<float> beta1, float* w, const float* g, float* m,
                             float* v) {
  AdamHyper at_step = h;
  at_step.beta1 = beta1.get();
  const float step_size = rate.get();
  parallel_ranges(
      threads_, n,
      [&](int64_t first, int64_t end) {
        ref::adam_apply(end - first, at_step, step_size, w + first, g + first, m + first,
                        v + first);
      },
      kMinElementRun);
}

void CpuBackend::rmsprop_update(int64_t n, const RmspropHyper& h, cnnk::Live<float> rate, float* w,
                                const float* g, float* v) {
  RmspropHyper at_rate = h;
  at_rate.lr = rate.get();
  parallel_ranges(
      threads_, n,
      [&](int64_t first, int64_t end) {
        ref::rmsprop_update(end - first, at_rate, w + first, g + first, v + first);
      },
      kMinElementRun);
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
