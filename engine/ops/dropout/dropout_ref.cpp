// Dropout / SpatialDropout2D reference. The keep decision for element i is
// cnnk::uniform01(seed, counter) >= rate with counter = i, or i / spatial (the n * c
// channel index) for spatial dropout: the same mask as any other backend's.
#include <cstdint>

#include "cnnk/random.h"
#include "engine/core/error.h"
#include "engine/ops/dropout/dropout.h"

namespace cnn::ref {

void check_dropout_rate(double rate) {
  CNN_CHECK(rate >= 0.0 && rate < 1.0, ConfigError, "dropout rate {} is outside [0, 1)", rate);
}

template <class T>
void dropout_forward_elements(const cnnk::DropoutGeometry& g, T rate, uint64_t seed, const T* x,
                              T* y, T* mask, int64_t first, int64_t end) {
  const T scale = T(1) / (T(1) - rate);
  const double threshold = static_cast<double>(rate);
  const int64_t spatial = g.spatial > 0 ? g.spatial : 1;
  for (int64_t i = first; i < end; ++i) {
    const uint64_t counter = static_cast<uint64_t>(g.per_channel ? i / spatial : i);
    // Compared in double: for a float rate this is exactly the float comparison.
    const bool keep = static_cast<double>(cnnk::uniform01(seed, counter)) >= threshold;
    mask[i] = keep ? scale : T(0);
    y[i] = x[i] * mask[i];
  }
}

template <class T>
void dropout_forward(const cnnk::DropoutGeometry& g, T rate, uint64_t seed, const T* x, T* y,
                     T* mask) {
  check_dropout_rate(static_cast<double>(rate));
  dropout_forward_elements(g, rate, seed, x, y, mask, 0, g.size());
}

template <class T>
void dropout_backward(const cnnk::DropoutGeometry& g, const T* mask, const T* dy, T* dx) {
  for (int64_t i = 0; i < g.size(); ++i) dx[i] = dy[i] * mask[i];
}

template void dropout_forward<float>(const cnnk::DropoutGeometry&, float, uint64_t, const float*,
                                     float*, float*);
template void dropout_forward<double>(const cnnk::DropoutGeometry&, double, uint64_t, const double*,
                                      double*, double*);
template void dropout_forward_elements<float>(const cnnk::DropoutGeometry&, float, uint64_t,
                                              const float*, float*, float*, int64_t, int64_t);
template void dropout_backward<float>(const cnnk::DropoutGeometry&, const float*, const float*,
                                      float*);
template void dropout_backward<double>(const cnnk::DropoutGeometry&, const double*, const double*,
                                       double*);

}  // namespace cnn::ref
