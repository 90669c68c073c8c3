#include <cstdint>

#include "engine/ops/bias/bias.h"
#include "engine/ops/channel_sums.h"

namespace cnn::ref {

template <class T>
void bias_backward_channels(const ActivationGeometry& g, int64_t first, int64_t end, const T* dy,
                            T* db) {
  for (int64_t c = first; c < end; ++c)
    db[c] = static_cast<T>(channel_sum(dy, g.n, g.c, g.spatial, c));
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
