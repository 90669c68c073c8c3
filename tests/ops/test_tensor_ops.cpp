// Structural ops: add, accumulate, channel copies (concat forward and backward).
#include <gtest/gtest.h>

#include <vector>

#include "engine/ops/tensor_ops/tensor_ops.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::poisoned;

TEST(TensorOpsRef, AddAssignsAndMayAlias) {
  const std::vector<double> a = {1, 2, 3}, b = {10, 20, 30};
  std::vector<double> y = poisoned<double>(3);
  ref::add_forward<double>(3, a.data(), b.data(), y.data());
  EXPECT_TRUE(test::all_equal("y", y, std::vector<double>{11, 22, 33}));
  std::vector<double> inplace = a;
  ref::add_forward<double>(3, inplace.data(), b.data(), inplace.data());
  EXPECT_TRUE(test::all_equal("in place", inplace, y));
}

TEST(TensorOpsRef, AccumulateAdds) {
  std::vector<float> dst = {1, 2, 3};
  const std::vector<float> src = {0.5f, -2, 4};
  ref::accumulate<float>(3, src.data(), dst.data());
  EXPECT_TRUE(test::all_equal("dst", dst, std::vector<float>{1.5f, 0, 7}));
}

TEST(TensorOpsRef, AddGradientMatchesFiniteDifferences) {
  // y = a + b: dL/da = dL/db = dy, which the executor passes on (accumulate).
  std::vector<double> a = test::random_values(24, 1), b = test::random_values(24, 2);
  const std::vector<double> dy = test::random_values(24, 3);
  std::vector<double> y(24);
  const auto loss = [&] {
    ref::add_forward<double>(24, a.data(), b.data(), y.data());
    return test::dot(y, dy);
  };
  std::vector<double> da(24, 0.0), db(24, 0.0);
  ref::accumulate<double>(24, dy.data(), da.data());
  ref::accumulate<double>(24, dy.data(), db.data());
  EXPECT_TRUE(test::gradients_match("da", da, test::numeric_gradient(a, loss)));
  EXPECT_TRUE(test::gradients_match("db", db, test::numeric_gradient(b, loss)));
}

// Concatenation of a [n, 2, s] and b [n, 3, s] into y [n, 5, s] on the channel axis.
constexpr int64_t kN = 2, kS = 6, kA = 2, kB = 3, kC = kA + kB;

void concat(const std::vector<double>& a, const std::vector<double>& b, std::vector<double>& y) {
  ref::channel_copy<double>({kN, kS, kA, 0, kC, 0, kA}, a.data(), y.data());
  ref::channel_copy<double>({kN, kS, kB, 0, kC, kA, kB}, b.data(), y.data());
}

TEST(TensorOpsRef, ConcatPlacesEachInputInItsSlice) {
  std::vector<double> a(kN * kA * kS), b(kN * kB * kS);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>(i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = 100.0 + static_cast<double>(i);
  std::vector<double> y = poisoned<double>(kN * kC * kS);
  concat(a, b, y);
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t c = 0; c < kC; ++c)
      for (int64_t s = 0; s < kS; ++s) {
        const double got = y[static_cast<size_t>((n * kC + c) * kS + s)];
        const double want = c < kA ? a[static_cast<size_t>((n * kA + c) * kS + s)]
                                   : b[static_cast<size_t>((n * kB + c - kA) * kS + s)];
        EXPECT_EQ(got, want) << n << " " << c << " " << s;
      }
}

TEST(TensorOpsRef, ChannelCopyTouchesOnlyItsSlice) {
  // Copy channels 1..2 of a 4-channel source into channels 2..3 of a 5-channel target.
  const ChannelCopyGeometry g{2, 3, 4, 1, 5, 2, 2};
  std::vector<float> src(2 * 4 * 3), dst(2 * 5 * 3, -7.0f);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
  ref::channel_copy<float>(g, src.data(), dst.data());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 5; ++c)
      for (int64_t s = 0; s < 3; ++s) {
        const float got = dst[static_cast<size_t>((n * 5 + c) * 3 + s)];
        const bool inside = c >= 2 && c < 4;
        const float want = inside ? src[static_cast<size_t>((n * 4 + c - 2 + 1) * 3 + s)] : -7.0f;
        EXPECT_EQ(got, want) << n << " " << c << " " << s;
      }
}

TEST(TensorOpsRef, ConcatGradientMatchesFiniteDifferences) {
  std::vector<double> a = test::random_values(kN * kA * kS, 11);
  std::vector<double> b = test::random_values(kN * kB * kS, 12);
  const std::vector<double> dy = test::random_values(kN * kC * kS, 13);
  std::vector<double> y(kN * kC * kS);
  const auto loss = [&] {
    concat(a, b, y);
    return test::dot(y, dy);
  };
  // Backward of concat: each input's gradient is its slice of dy.
  std::vector<double> da = poisoned<double>(a.size()), db = poisoned<double>(b.size());
  ref::channel_copy<double>({kN, kS, kC, 0, kA, 0, kA}, dy.data(), da.data());
  ref::channel_copy<double>({kN, kS, kC, kA, kB, 0, kB}, dy.data(), db.data());
  EXPECT_TRUE(test::gradients_match("da", da, test::numeric_gradient(a, loss)));
  EXPECT_TRUE(test::gradients_match("db", db, test::numeric_gradient(b, loss)));
}

}  // namespace
}  // namespace cnn
