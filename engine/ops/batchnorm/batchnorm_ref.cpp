// BatchNormalization reference: per channel, plain loops, double accumulation.
#include <cmath>
#include <cstdint>

#include "engine/ops/batchnorm/batchnorm.h"

namespace cnn::ref {
namespace {

// Element (n, s) of channel c.
int64_t at(const cnnk::BatchNormGeometry& g, int n, int c, int s) {
  return (static_cast<int64_t>(n) * g.c + c) * g.spatial + s;
}

}  // namespace

template <class T>
void batchnorm_forward_training_channels(const cnnk::BatchNormGeometry& g, int first, int end,
                                         const T* x, const T* gamma, const T* beta, T momentum,
                                         T epsilon, T* running_mean, T* running_var, T* y,
                                         T* save_mean, T* save_invstd) {
  const double m = static_cast<double>(g.reduction());
  const double mom = static_cast<double>(momentum);
  for (int c = first; c < end; ++c) {
    double sum = 0.0;
    for (int n = 0; n < g.n; ++n)
      for (int s = 0; s < g.spatial; ++s) sum += static_cast<double>(x[at(g, n, c, s)]);
    const double mean = m > 0 ? sum / m : 0.0;
    double sq = 0.0;
    for (int n = 0; n < g.n; ++n)
      for (int s = 0; s < g.spatial; ++s) {
        const double d = static_cast<double>(x[at(g, n, c, s)]) - mean;
        sq += d * d;
      }
    const double var = m > 0 ? sq / m : 0.0;             // biased: normalisation
    const double unbiased = m > 1 ? sq / (m - 1) : var;  // unbiased: running variance
    const double invstd = 1.0 / std::sqrt(var + static_cast<double>(epsilon));
    const double scale = static_cast<double>(gamma[c]) * invstd;
    const double shift = static_cast<double>(beta[c]);
    for (int n = 0; n < g.n; ++n)
      for (int s = 0; s < g.spatial; ++s) {
        const int64_t i = at(g, n, c, s);
        y[i] = static_cast<T>((static_cast<double>(x[i]) - mean) * scale + shift);
      }
    running_mean[c] =
        static_cast<T>(mom * static_cast<double>(running_mean[c]) + (1.0 - mom) * mean);
    running_var[c] =
        static_cast<T>(mom * static_cast<double>(running_var[c]) + (1.0 - mom) * unbiased);
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
  }
}

template <class T>
void batchnorm_forward_inference_channels(const cnnk::BatchNormGeometry& g, int first, int end,
                                          const T* x, const T* gamma, const T* beta,
                                          const T* running_mean, const T* running_var, T epsilon,
                                          T* y) {
  for (int c = first; c < end; ++c) {
    const double invstd =
        1.0 / std::sqrt(static_cast<double>(running_var[c]) + static_cast<double>(epsilon));
    const double mean = static_cast<double>(running_mean[c]);
    const double scale = static_cast<double>(gamma[c]) * invstd;
    const double shift = static_cast<double>(beta[c]);
    for (int n = 0; n < g.n; ++n)
      for (int s = 0; s < g.spatial; ++s) {
        const int64_t i = at(g, n, c, s);
        y[i] = static_cast<T>((static_cast<double>(x[i]) - mean) * scale + shift);
      }
  }
}

// With xhat = (x - mean) * invstd and y = gamma * xhat + beta, over the m = n * spatial
// values of a channel:
//   dbeta = sum dy, dgamma = sum dy * xhat,
//   dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma).
template <class T>
void batchnorm_backward_channels(const cnnk::BatchNormGeometry& g, int first, int end, const T* x,
                                 const T* dy, const T* gamma, const T* save_mean,
                                 const T* save_invstd, T* dx, T* dgamma, T* dbeta) {
  const double m = static_cast<double>(g.reduction());
  for (int c = first; c < end; ++c) {
    const double mean = static_cast<double>(save_mean[c]);
    const double invstd = static_cast<double>(save_invstd[c]);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int n = 0; n < g.n; ++n)
      for (int s = 0; s < g.spatial; ++s) {
        const int64_t i = at(g, n, c, s);
        const double xhat = (static_cast<double>(x[i]) - mean) * invstd;
        sum_dy += static_cast<double>(dy[i]);
        sum_dy_xhat += static_cast<double>(dy[i]) * xhat;
      }
    const double k = m > 0 ? static_cast<double>(gamma[c]) * invstd / m : 0.0;
    for (int n = 0; n < g.n; ++n)
      for (int s = 0; s < g.spatial; ++s) {
        const int64_t i = at(g, n, c, s);
        const double xhat = (static_cast<double>(x[i]) - mean) * invstd;
        dx[i] = static_cast<T>(k * (m * static_cast<double>(dy[i]) - sum_dy - xhat * sum_dy_xhat));
      }
    dgamma[c] = static_cast<T>(sum_dy_xhat);
    dbeta[c] = static_cast<T>(sum_dy);
  }
}

template <class T>
void batchnorm_forward_training(const cnnk::BatchNormGeometry& g, const T* x, const T* gamma,
                                const T* beta, T momentum, T epsilon, T* running_mean,
                                T* running_var, T* y, T* save_mean, T* save_invstd) {
  batchnorm_forward_training_channels(g, 0, g.c, x, gamma, beta, momentum, epsilon, running_mean,
                                      running_var, y, save_mean, save_invstd);
}

template <class T>
void batchnorm_forward_inference(const cnnk::BatchNormGeometry& g, const T* x, const T* gamma,
                                 const T* beta, const T* running_mean, const T* running_var,
                                 T epsilon, T* y) {
  batchnorm_forward_inference_channels(g, 0, g.c, x, gamma, beta, running_mean, running_var,
                                       epsilon, y);
}

template <class T>
void batchnorm_backward(const cnnk::BatchNormGeometry& g, const T* x, const T* dy, const T* gamma,
                        const T* save_mean, const T* save_invstd, T* dx, T* dgamma, T* dbeta) {
  batchnorm_backward_channels(g, 0, g.c, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

#define CNN_INSTANTIATE_BATCHNORM_REF(T)                                                           \
  template void batchnorm_forward_training<T>(const cnnk::BatchNormGeometry&, const T*, const T*,  \
                                              const T*, T, T, T*, T*, T*, T*, T*);                 \
  template void batchnorm_forward_inference<T>(const cnnk::BatchNormGeometry&, const T*, const T*, \
                                               const T*, const T*, const T*, T, T*);               \
  template void batchnorm_backward<T>(const cnnk::BatchNormGeometry&, const T*, const T*,          \
                                      const T*, const T*, const T*, T*, T*, T*);                   \
  template void batchnorm_forward_training_channels<T>(const cnnk::BatchNormGeometry&, int, int,   \
                                                       const T*, const T*, const T*, T, T, T*, T*, \
                                                       T*, T*, T*);                                \
  template void batchnorm_forward_inference_channels<T>(const cnnk::BatchNormGeometry&, int, int,  \
                                                        const T*, const T*, const T*, const T*,    \
                                                        const T*, T, T*);                          \
  template void batchnorm_backward_channels<T>(const cnnk::BatchNormGeometry&, int, int, const T*, \
                                               const T*, const T*, const T*, const T*, T*, T*,     \
                                               T*);
CNN_INSTANTIATE_BATCHNORM_REF(float)
CNN_INSTANTIATE_BATCHNORM_REF(double)
#undef CNN_INSTANTIATE_BATCHNORM_REF

}  // namespace cnn::ref
