// Sums over one channel of an NCHW tensor ([n, c, spatial], spatial = H * W or 1), in
// double, in a fixed order of eight lanes: element s of each map (one image's values of
// the channel) goes to lane s % 8, images in order, and the lanes are added in a fixed
// tree at the end. One running sum would make every add wait for the one before; eight
// independent ones let the compiler use vector adds, and the order still depends on the
// shape alone, so every thread count and every instruction set gives the same bits.
// Used by batch norm's statistics and gradients and by the bias gradients of the
// reference and the CPU backend.
#pragma once

#include <cstdint>

namespace cnn {

constexpr int kChannelSumLanes = 8;

// add(lane, i) for every element i of channel c, in the order described above; add
// accumulates element i's terms into its lane's sums.
template <class Add>
void for_each_in_channel_lanes(int64_t n, int64_t channels, int64_t spatial, int64_t c, Add&& add) {
  for (int64_t image = 0; image < n; ++image) {
    const int64_t start = (image * channels + c) * spatial;
    const int64_t whole = spatial - spatial % kChannelSumLanes;
    for (int64_t s = 0; s < whole; s += kChannelSumLanes)
      for (int lane = 0; lane < kChannelSumLanes; ++lane) add(lane, start + s + lane);
    const int tail = static_cast<int>(spatial - whole);  // fewer than kChannelSumLanes
    for (int lane = 0; lane < tail; ++lane) add(lane, start + whole + lane);
  }
}

inline double lanes_total(const double (&lanes)[kChannelSumLanes]) {
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// The sum of channel c's values.
template <class T>
double channel_sum(const T* x, int64_t n, int64_t channels, int64_t spatial, int64_t c) {
  double lanes[kChannelSumLanes] = {};
  for_each_in_channel_lanes(n, channels, spatial, c,
                            [&](int lane, int64_t i) { lanes[lane] += static_cast<double>(x[i]); });
  return lanes_total(lanes);
}

}  // namespace cnn
