// Activation reference. The elementwise kinds are small functors over one loop; softmax
// normalises over the channel axis at every (n, spatial) position, subtracting the max.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/ops/activation/activation.h"

namespace cnn::ref {
namespace {

// Each functor: y from x, and dx from (y, dy).
struct Linear {
  template <class T>
  static T fwd(T x) {
    return x;
  }
  template <class T>
  static T bwd(T, T dy) {
    return dy;
  }
};
struct Relu {
  template <class T>
  static T fwd(T x) {
    return x > T(0) ? x : T(0);
  }
  template <class T>
  static T bwd(T y, T dy) {
    return y > T(0) ? dy : T(0);
  }
};
struct Sigmoid {
  // exp of a non-positive argument only: no overflow for large |x|.
  template <class T>
  static T fwd(T x) {
    const double v = static_cast<double>(x);
    const double e = std::exp(-std::abs(v));
    return static_cast<T>(v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
  }
  template <class T>
  static T bwd(T y, T dy) {
    return dy * y * (T(1) - y);
  }
};
struct Tanh {
  template <class T>
  static T fwd(T x) {
    return static_cast<T>(std::tanh(static_cast<double>(x)));
  }
  template <class T>
  static T bwd(T y, T dy) {
    return dy * (T(1) - y * y);
  }
};

template <class F, class T>
void map_forward(int64_t size, const T* x, T* y) {
  for (int64_t i = 0; i < size; ++i) y[i] = F::fwd(x[i]);
}
template <class F, class T>
void map_backward(int64_t size, const T* y, const T* dy, T* dx) {
  for (int64_t i = 0; i < size; ++i) dx[i] = F::bwd(y[i], dy[i]);
}

template <class T>
void softmax_forward(const ActivationGeometry& g, const T* x, T* y) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t s = 0; s < g.spatial; ++s) {
      const int64_t base = n * g.c * g.spatial + s;  // channel j at base + j * spatial
      double mx = -INFINITY;
      for (int64_t j = 0; j < g.c; ++j)
        mx = std::max(mx, static_cast<double>(x[base + j * g.spatial]));
      double sum = 0.0;
      for (int64_t j = 0; j < g.c; ++j)
        sum += std::exp(static_cast<double>(x[base + j * g.spatial]) - mx);
      for (int64_t j = 0; j < g.c; ++j) {
        const int64_t i = base + j * g.spatial;
        y[i] = static_cast<T>(std::exp(static_cast<double>(x[i]) - mx) / sum);
      }
    }
}

// dx_j = y_j * (dy_j - sum_k dy_k y_k); the dot is taken before dx is written, so dx may
// alias dy.
template <class T>
void softmax_backward(const ActivationGeometry& g, const T* y, const T* dy, T* dx) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t s = 0; s < g.spatial; ++s) {
      const int64_t base = n * g.c * g.spatial + s;
      double dot = 0.0;
      for (int64_t j = 0; j < g.c; ++j) {
        const int64_t i = base + j * g.spatial;
        dot += static_cast<double>(dy[i]) * static_cast<double>(y[i]);
      }
      for (int64_t j = 0; j < g.c; ++j) {
        const int64_t i = base + j * g.spatial;
        dx[i] = static_cast<T>(static_cast<double>(y[i]) * (static_cast<double>(dy[i]) - dot));
      }
    }
}

}  // namespace

template <class T>
void activation_forward(Activation a, const ActivationGeometry& g, const T* x, T* y) {
  switch (a) {
    case Activation::Linear:
      return map_forward<Linear>(g.size(), x, y);
    case Activation::Relu:
      return map_forward<Relu>(g.size(), x, y);
    case Activation::Sigmoid:
      return map_forward<Sigmoid>(g.size(), x, y);
    case Activation::Tanh:
      return map_forward<Tanh>(g.size(), x, y);
    case Activation::Softmax:
      return softmax_forward(g, x, y);
  }
}

template <class T>
void activation_backward(Activation a, const ActivationGeometry& g, const T* y, const T* dy,
                         T* dx) {
  switch (a) {
    case Activation::Linear:
      return map_backward<Linear>(g.size(), y, dy, dx);
    case Activation::Relu:
      return map_backward<Relu>(g.size(), y, dy, dx);
    case Activation::Sigmoid:
      return map_backward<Sigmoid>(g.size(), y, dy, dx);
    case Activation::Tanh:
      return map_backward<Tanh>(g.size(), y, dy, dx);
    case Activation::Softmax:
      return softmax_backward(g, y, dy, dx);
  }
}

template void activation_forward<float>(Activation, const ActivationGeometry&, const float*,
                                        float*);
template void activation_forward<double>(Activation, const ActivationGeometry&, const double*,
                                         double*);
template void activation_backward<float>(Activation, const ActivationGeometry&, const float*,
                                         const float*, float*);
template void activation_backward<double>(Activation, const ActivationGeometry&, const double*,
                                          const double*, double*);

}  // namespace cnn::ref
