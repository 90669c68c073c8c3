// The channel sums of batch norm and the bias gradients (engine/ops/channel_sums.h): the
// documented lane order, which fixes their bits, and the accuracy of the double sums.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "engine/ops/channel_sums.h"

namespace cnn {
namespace {

TEST(ChannelSums, EachPositionOfAMapHasItsLaneAcrossImages) {
  // Two images of one channel, maps of two values. Lane 0 takes 1e17 and -1e17, lane 1
  // takes both ones: the total is 2 exactly. One running sum in memory order would lose
  // the first 1 against 1e17 and give 1.
  const std::vector<double> x = {1e17, 1.0, -1e17, 1.0};
  EXPECT_EQ(channel_sum(x.data(), 2, 1, 2, 0), 2.0);
}

TEST(ChannelSums, TheTailOfAMapStartsAgainAtLaneZero) {
  // Maps of nine values, so position 8 goes to lane 0, where the next map's position 0
  // follows it. 1e17 at position 8 of the first map and -1e17 at position 0 of the second
  // then cancel before any one meets them: lane 0 holds 0 + 1e17 - 1e17 + 1, lanes 1 to 7
  // two ones each, 15 in all. One running sum in memory order would lose the first
  // map's seven ones against 1e17 and give 8.
  std::vector<double> x(18, 1.0);
  x[0] = 0.0;
  x[8] = 1e17;
  x[9] = -1e17;
  EXPECT_EQ(channel_sum(x.data(), 2, 1, 9, 0), 15.0);
}

TEST(ChannelSums, OnlyTheChannelsOwnValuesAreSummed) {
  // [n 3, c 4, spatial 5] with value 100 * c + image: channel 2 sums to 3 * 5 * 200 +
  // 5 * (0 + 1 + 2).
  const int64_t n = 3, channels = 4, spatial = 5;
  std::vector<float> x(static_cast<size_t>(n * channels * spatial));
  for (int64_t image = 0; image < n; ++image)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t s = 0; s < spatial; ++s)
        x[static_cast<size_t>((image * channels + c) * spatial + s)] =
            static_cast<float>(100 * c + image);
  EXPECT_EQ(channel_sum(x.data(), n, channels, spatial, 2), 3.0 * 5 * 200 + 5 * 3);
  EXPECT_EQ(channel_sum(x.data(), n, channels, spatial, 0), 5.0 * 3);
}

TEST(ChannelSums, ALongSumOfFloatsKeepsDoublePrecision) {
  // A million copies of 0.1f: a float accumulator would be off by about 1%; the double
  // lanes stay within a few units in the last place of the double result.
  const std::vector<float> x(1000000, 0.1f);
  const double exact = 1e6 * static_cast<double>(0.1f);
  EXPECT_NEAR(channel_sum(x.data(), 1000, 1, 1000, 0), exact, exact * 1e-13);
}

}  // namespace
}  // namespace cnn
