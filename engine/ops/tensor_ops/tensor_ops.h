// Structural ops with no parameters: elementwise add (Keras Add), concatenation on the
// channel axis (Keras Concatenate(axis=channels)), and the helpers gradients need.
#pragma once

#include <cstdint>

namespace cnn {

// Copies `count` channels of an [n, src_c, spatial] tensor starting at channel
// src_offset into an [n, dst_c, spatial] tensor starting at dst_offset. Concat forward
// copies each input into its slice of the output; concat backward copies slices out.
struct ChannelCopyGeometry {
  int64_t n = 0, spatial = 1;
  int64_t src_c = 0, src_offset = 0;
  int64_t dst_c = 0, dst_offset = 0;
  int64_t count = 0;
};

namespace ref {
template <class T>
void add_forward(int64_t size, const T* a, const T* b, T* y);  // y = a + b (y may alias)
template <class T>
void accumulate(int64_t size, const T* src, T* dst);  // dst += src
template <class T>
void channel_copy(const ChannelCopyGeometry& g, const T* src, T* dst);  // assigns
}  // namespace ref

}  // namespace cnn
