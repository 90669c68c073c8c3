#include <cstdint>

#include "engine/ops/bias/bias.h"

namespace cnn::ref {

template <class T>
void bias_backward_channels(const ActivationGeometry& g, int64_t first, int64_t end, const T* dy,
                            T* db) {
  for (int64_t c = first; c < end; ++c) {
    double acc = 0.0;
    for (int64_t n = 0; n < g.n; ++n) {
      const T* row = dy + (n * g.c + c) * g.spatial;
      for (int64_t s = 0; s < g.spatial; ++s) acc += static_cast<double>(row[s]);
    }
    db[c] = static_cast<T>(acc);
  }
}

template <class T>
void bias_backward(const ActivationGeometry& g, const T* dy, T* db) {
  bias_backward_channels(g, 0, g.c, dy, db);
}

template void bias_backward_channels<float>(const ActivationGeometry&, int64_t, int64_t,
                                            const float*, float*);
template void bias_backward_channels<double>(const ActivationGeometry&, int64_t, int64_t,
                                             const double*, double*);
template void bias_backward<float>(const ActivationGeometry&, const float*, float*);
template void bias_backward<double>(const ActivationGeometry&, const double*, double*);

}  // namespace cnn::ref
