// Dense reference: plain loops, double accumulation, outputs assigned.
#include <cstdint>

#include "engine/ops/dense/dense.h"

namespace cnn::ref {

template <class T>
void dense_forward(const cnnk::DenseGeometry& g, const T* x, const T* w, const T* b, T* y) {
  for (int n = 0; n < g.n; ++n)
    for (int o = 0; o < g.out; ++o) {
      double acc = b ? static_cast<double>(b[o]) : 0.0;
      for (int i = 0; i < g.in; ++i)
        acc += static_cast<double>(x[static_cast<int64_t>(n) * g.in + i]) *
               static_cast<double>(w[static_cast<int64_t>(o) * g.in + i]);
      y[static_cast<int64_t>(n) * g.out + o] = static_cast<T>(acc);
    }
}

template <class T>
void dense_backward_data(const cnnk::DenseGeometry& g, const T* dy, const T* w, T* dx) {
  for (int n = 0; n < g.n; ++n)
    for (int i = 0; i < g.in; ++i) {
      double acc = 0.0;
      for (int o = 0; o < g.out; ++o)
        acc += static_cast<double>(dy[static_cast<int64_t>(n) * g.out + o]) *
               static_cast<double>(w[static_cast<int64_t>(o) * g.in + i]);
      dx[static_cast<int64_t>(n) * g.in + i] = static_cast<T>(acc);
    }
}

template <class T>
void dense_backward_weights(const cnnk::DenseGeometry& g, const T* x, const T* dy, T* dw, T* db) {
  for (int o = 0; o < g.out; ++o)
    for (int i = 0; i < g.in; ++i) {
      double acc = 0.0;
      for (int n = 0; n < g.n; ++n)
        acc += static_cast<double>(dy[static_cast<int64_t>(n) * g.out + o]) *
               static_cast<double>(x[static_cast<int64_t>(n) * g.in + i]);
      dw[static_cast<int64_t>(o) * g.in + i] = static_cast<T>(acc);
    }
  if (!db) return;
  for (int o = 0; o < g.out; ++o) {
    double acc = 0.0;
    for (int n = 0; n < g.n; ++n)
      acc += static_cast<double>(dy[static_cast<int64_t>(n) * g.out + o]);
    db[o] = static_cast<T>(acc);
  }
}

#define CNN_INSTANTIATE_DENSE_REF(T)                                                            \
  template void dense_forward<T>(const cnnk::DenseGeometry&, const T*, const T*, const T*, T*); \
  template void dense_backward_data<T>(const cnnk::DenseGeometry&, const T*, const T*, T*);     \
  template void dense_backward_weights<T>(const cnnk::DenseGeometry&, const T*, const T*, T*, T*);
CNN_INSTANTIATE_DENSE_REF(float)
CNN_INSTANTIATE_DENSE_REF(double)
#undef CNN_INSTANTIATE_DENSE_REF

}  // namespace cnn::ref
