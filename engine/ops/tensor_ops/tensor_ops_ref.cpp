// Structural ops reference: elementwise add, accumulate, and channel-slice copies.
#include <cstdint>

#include "engine/ops/tensor_ops/tensor_ops.h"

namespace cnn::ref {

template <class T>
void add_forward(int64_t size, const T* a, const T* b, T* y) {
  for (int64_t i = 0; i < size; ++i) y[i] = a[i] + b[i];
}

template <class T>
void accumulate(int64_t size, const T* src, T* dst) {
  for (int64_t i = 0; i < size; ++i) dst[i] += src[i];
}

template <class T>
void channel_copy(const ChannelCopyGeometry& g, const T* src, T* dst) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t j = 0; j < g.count; ++j) {
      const T* from = src + (n * g.src_c + g.src_offset + j) * g.spatial;
      T* to = dst + (n * g.dst_c + g.dst_offset + j) * g.spatial;
      for (int64_t s = 0; s < g.spatial; ++s) to[s] = from[s];
    }
}

#define CNN_INSTANTIATE_TENSOR_OPS_REF(T)                        \
  template void add_forward<T>(int64_t, const T*, const T*, T*); \
  template void accumulate<T>(int64_t, const T*, T*);            \
  template void channel_copy<T>(const ChannelCopyGeometry&, const T*, T*);
CNN_INSTANTIATE_TENSOR_OPS_REF(float)
CNN_INSTANTIATE_TENSOR_OPS_REF(double)
#undef CNN_INSTANTIATE_TENSOR_OPS_REF

}  // namespace cnn::ref
