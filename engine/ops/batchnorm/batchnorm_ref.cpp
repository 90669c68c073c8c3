// BatchNormalization reference: per channel, plain loops, double accumulation. The sums
// run in channel_sums.h's eight lanes.
#include <cmath>
#include <cstdint>

#include "engine/ops/batchnorm/batchnorm.h"
#include "engine/ops/channel_sums.h"

namespace cnn::ref {
namespace {

// The first element of image n's map of channel c.
int64_t map_start(const cnnk::BatchNormGeometry& g, int n, int c) {
  return (static_cast<int64_t>(n) * g.c + c) * g.spatial;
}

template <class Add>
void for_each_in_lanes(const cnnk::BatchNormGeometry& g, int c, Add&& add) {
  for_each_in_channel_lanes(g.n, g.c, g.spatial, c, add);
}

// y = (x - mean) * scale + shift over every map of channel c.
template <class T>
void normalise_channel(const cnnk::BatchNormGeometry& g, int c, const T* x, double mean,
                       double scale, double shift, T* y) {
  for (int n = 0; n < g.n; ++n) {
    const int64_t start = map_start(g, n, c);
    for (int s = 0; s < g.spatial; ++s)
      y[start + s] = static_cast<T>((static_cast<double>(x[start + s]) - mean) * scale + shift);
  }
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
    const double mean = m > 0 ? channel_sum(x, g.n, g.c, g.spatial, c) / m : 0.0;
    double squares[kChannelSumLanes] = {};
    for_each_in_lanes(g, c, [&](int lane, int64_t i) {
      const double d = static_cast<double>(x[i]) - mean;
      squares[lane] += d * d;
    });
    const double sq = lanes_total(squares);
    const double var = m > 0 ? sq / m : 0.0;             // biased: normalisation
    const double unbiased = m > 1 ? sq / (m - 1) : var;  // unbiased: running variance
    const double invstd = 1.0 / std::sqrt(var + static_cast<double>(epsilon));
    normalise_channel(g, c, x, mean, static_cast<double>(gamma[c]) * invstd,
                      static_cast<double>(beta[c]), y);
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
    normalise_channel(g, c, x, static_cast<double>(running_mean[c]),
                      static_cast<double>(gamma[c]) * invstd, static_cast<double>(beta[c]), y);
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
    double dy_sums[kChannelSumLanes] = {}, dy_xhat_sums[kChannelSumLanes] = {};
    for_each_in_lanes(g, c, [&](int lane, int64_t i) {
      const double xhat = (static_cast<double>(x[i]) - mean) * invstd;
      dy_sums[lane] += static_cast<double>(dy[i]);
      dy_xhat_sums[lane] += static_cast<double>(dy[i]) * xhat;
    });
    const double sum_dy = lanes_total(dy_sums), sum_dy_xhat = lanes_total(dy_xhat_sums);
    const double k = m > 0 ? static_cast<double>(gamma[c]) * invstd / m : 0.0;
    for (int n = 0; n < g.n; ++n) {
      const int64_t start = map_start(g, n, c);
      for (int s = 0; s < g.spatial; ++s) {
        const int64_t i = start + s;
        const double xhat = (static_cast<double>(x[i]) - mean) * invstd;
        dx[i] = static_cast<T>(k * (m * static_cast<double>(dy[i]) - sum_dy - xhat * sum_dy_xhat));
      }
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
