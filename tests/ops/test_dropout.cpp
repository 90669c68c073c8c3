// Dropout and SpatialDropout2D reference: masks, scaling, determinism, gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cnnk/random.h"
#include "engine/core/error.h"
#include "engine/ops/dropout/dropout.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::DropoutGeometry;
using test::poisoned;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

struct Result {
  std::vector<float> y, mask;
};
Result run(const DropoutGeometry& g, float rate, uint64_t seed, const std::vector<float>& x) {
  Result r{poisoned<float>(x.size()), poisoned<float>(x.size())};
  ref::dropout_forward<float>(g, rate, seed, x.data(), r.y.data(), r.mask.data());
  return r;
}

TEST(DropoutRef, MaskFollowsTheCounterBasedRule) {
  const DropoutGeometry g{3, 4, 5, false};
  const std::vector<float> x = test::cast_all<float>(test::random_values(sz(g.size()), 1));
  const float rate = 0.3f;
  const Result r = run(g, rate, 1234, x);
  const float scale = 1.0f / (1.0f - rate);
  for (size_t i = 0; i < x.size(); ++i) {
    const bool keep = cnnk::uniform01(1234, i) >= rate;
    EXPECT_EQ(r.mask[i], keep ? scale : 0.0f) << i;
    EXPECT_EQ(r.y[i], x[i] * r.mask[i]) << i;
  }
}

TEST(DropoutRef, SameSeedSameMaskOtherSeedOtherMask) {
  const DropoutGeometry g{8, 16, 10, false};
  const std::vector<float> x(sz(g.size()), 1.0f);
  const Result a = run(g, 0.5f, 77, x), b = run(g, 0.5f, 77, x), c = run(g, 0.5f, 78, x);
  EXPECT_TRUE(test::all_equal("same seed", a.mask, b.mask));
  EXPECT_TRUE(test::all_equal("same seed y", a.y, b.y));
  size_t differ = 0;
  for (size_t i = 0; i < x.size(); ++i) differ += a.mask[i] != c.mask[i];
  EXPECT_GT(differ, x.size() / 4);  // about half of the decisions differ
}

TEST(DropoutRef, RateZeroIsTheIdentity) {
  for (bool per_channel : {false, true}) {
    const DropoutGeometry g{2, 3, 7, per_channel};
    const std::vector<float> x = test::cast_all<float>(test::random_values(sz(g.size()), 5));
    const Result r = run(g, 0.0f, 9, x);
    EXPECT_TRUE(test::all_equal("y", r.y, x));
    EXPECT_TRUE(test::all_equal("mask", r.mask, std::vector<float>(x.size(), 1.0f)));
  }
}

TEST(DropoutRef, KeepsAboutOneMinusRateAndScalesTheKept) {
  const DropoutGeometry g{16, 64, 1024, false};  // 1M elements
  const std::vector<float> x(sz(g.size()), 2.0f);
  for (float rate : {0.1f, 0.5f, 0.8f}) {
    SCOPED_TRACE(rate);
    const Result r = run(g, rate, 2024, x);
    const float scale = 1.0f / (1.0f - rate);
    size_t kept = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      if (r.mask[i] != 0.0f) {
        ++kept;
        ASSERT_EQ(r.mask[i], scale);
        ASSERT_EQ(r.y[i], 2.0f * scale);
      } else {
        ASSERT_EQ(r.y[i], 0.0f);
      }
    }
    // Binomial standard deviation is below 5e-4 here; allow 10 of them.
    const double fraction = static_cast<double>(kept) / static_cast<double>(x.size());
    EXPECT_NEAR(fraction, 1.0 - rate, 5e-3);
  }
}

TEST(DropoutRef, SpatialDropoutKeepsOrDropsWholeChannels) {
  const DropoutGeometry g{20, 50, 9, true};
  const std::vector<float> x =
      test::cast_all<float>(test::random_values(sz(g.size()), 3, 0.5, 1.0));
  const float rate = 0.4f;
  const Result r = run(g, rate, 31, x);
  size_t kept_channels = 0;
  for (int64_t ch = 0; ch < static_cast<int64_t>(g.n) * g.c; ++ch) {
    const bool keep = cnnk::uniform01(31, static_cast<uint64_t>(ch)) >= rate;
    kept_channels += keep;
    for (int64_t s = 0; s < g.spatial; ++s) {
      const size_t i = sz(ch * g.spatial + s);
      EXPECT_EQ(r.mask[i], keep ? 1.0f / (1.0f - rate) : 0.0f);
    }
  }
  EXPECT_GT(kept_channels, 0u);
  EXPECT_LT(kept_channels, sz(g.n * g.c));
}

TEST(DropoutRef, GradientMatchesFiniteDifferences) {
  for (bool per_channel : {false, true}) {
    SCOPED_TRACE(per_channel ? "spatial" : "elementwise");
    const DropoutGeometry g{3, 4, 5, per_channel};
    std::vector<double> x = test::random_values(sz(g.size()), 21);
    const std::vector<double> dy = test::random_values(x.size(), 22);
    std::vector<double> y(x.size()), mask(x.size());
    const auto loss = [&] {
      ref::dropout_forward<double>(g, 0.3, 99, x.data(), y.data(), mask.data());
      return test::dot(y, dy);
    };
    loss();
    std::vector<double> dx = poisoned<double>(x.size());
    ref::dropout_backward<double>(g, mask.data(), dy.data(), dx.data());
    EXPECT_TRUE(test::gradients_match("dx", dx, test::numeric_gradient(x, loss)));
    // In place: dx may alias dy.
    std::vector<double> inplace = dy;
    ref::dropout_backward<double>(g, mask.data(), inplace.data(), inplace.data());
    EXPECT_TRUE(test::all_equal("in place", inplace, dx));
  }
}

TEST(DropoutRef, RateOutsideTheRangeThrows) {
  const DropoutGeometry g{1, 1, 4, false};
  const std::vector<float> x(4, 1.0f);
  for (float rate : {1.0f, -0.1f, 1.5f, NAN}) {
    std::vector<float> y(4), mask(4);
    EXPECT_THROW(ref::dropout_forward<float>(g, rate, 1, x.data(), y.data(), mask.data()),
                 ConfigError)
        << rate;
  }
}

}  // namespace
}  // namespace cnn
