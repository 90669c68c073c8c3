// Activations: names, values, stability, gradient checks (softmax over channels of 4D).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/activation/activation.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::poisoned;

constexpr Activation kAll[] = {Activation::Linear, Activation::Relu, Activation::Sigmoid,
                               Activation::Tanh, Activation::Softmax};

size_t sz(int64_t n) { return static_cast<size_t>(n); }

TEST(Activation, NamesRoundTrip) {
  EXPECT_EQ(activation_name(Activation::Linear), "linear");
  EXPECT_EQ(activation_name(Activation::Relu), "relu");
  EXPECT_EQ(activation_name(Activation::Sigmoid), "sigmoid");
  EXPECT_EQ(activation_name(Activation::Tanh), "tanh");
  EXPECT_EQ(activation_name(Activation::Softmax), "softmax");
  for (Activation a : kAll) EXPECT_EQ(parse_activation(activation_name(a)), a);
}

TEST(Activation, UnknownNameListsTheAcceptedOnes) {
  for (const std::string bad : {"gelu", "", "ReLU"}) {
    try {
      parse_activation(bad);
      ADD_FAILURE() << "no error for '" << bad << "'";
    } catch (const ConfigError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("'" + bad + "'"), std::string::npos) << m;
      EXPECT_NE(m.find("linear, relu, sigmoid, tanh, softmax"), std::string::npos) << m;
    }
  }
}

TEST(ActivationRef, ElementwiseValues) {
  const ActivationGeometry g{1, 5, 1};
  const std::vector<double> x = {-2.0, -0.5, 0.0, 0.5, 2.0};
  std::vector<double> y = poisoned<double>(5);
  ref::activation_forward<double>(Activation::Linear, g, x.data(), y.data());
  EXPECT_TRUE(test::all_equal("linear", y, x));
  ref::activation_forward<double>(Activation::Relu, g, x.data(), y.data());
  EXPECT_TRUE(test::all_equal("relu", y, std::vector<double>{0, 0, 0, 0.5, 2.0}));
  ref::activation_forward<double>(Activation::Sigmoid, g, x.data(), y.data());
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(y[i], 1.0 / (1.0 + std::exp(-x[i])), 1e-15);
  EXPECT_EQ(y[2], 0.5);
  ref::activation_forward<double>(Activation::Tanh, g, x.data(), y.data());
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(y[i], std::tanh(x[i]), 1e-15);
}

TEST(ActivationRef, SigmoidAndSoftmaxAreStableForLargeInputs) {
  const ActivationGeometry g{1, 4, 1};
  const std::vector<float> x = {-1000.0f, -90.0f, 90.0f, 1000.0f};
  std::vector<float> y = poisoned<float>(4);
  ref::activation_forward<float>(Activation::Sigmoid, g, x.data(), y.data());
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_GE(y[1], 0.0f);
  EXPECT_LT(y[1], 1e-30f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], 1.0f);
  ref::activation_forward<float>(Activation::Softmax, g, x.data(), y.data());
  EXPECT_TRUE(test::all_equal("softmax", y, std::vector<float>{0, 0, 0, 1}));
  const std::vector<float> big = {1000.0f, 1000.0f, 999.0f, -5.0f};
  ref::activation_forward<float>(Activation::Softmax, g, big.data(), y.data());
  const double e = std::exp(-1.0), z = 2.0 + e;
  EXPECT_NEAR(y[0], 1.0 / z, 1e-7);
  EXPECT_NEAR(y[1], 1.0 / z, 1e-7);
  EXPECT_NEAR(y[2], e / z, 1e-7);
}

TEST(ActivationRef, SoftmaxNormalisesOverChannelsAtEverySpatialPosition) {
  const ActivationGeometry g{2, 5, 6};
  const std::vector<double> x = test::random_values(sz(g.size()), 3, -3.0, 3.0);
  std::vector<double> y = poisoned<double>(x.size());
  ref::activation_forward<double>(Activation::Softmax, g, x.data(), y.data());
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t s = 0; s < g.spatial; ++s) {
      double sum = 0.0, denom = 0.0;
      for (int64_t c = 0; c < g.c; ++c) {
        const size_t i = sz((n * g.c + c) * g.spatial + s);
        sum += y[i];
        denom += std::exp(x[i]);
      }
      EXPECT_NEAR(sum, 1.0, 1e-14);
      for (int64_t c = 0; c < g.c; ++c) {
        const size_t i = sz((n * g.c + c) * g.spatial + s);
        EXPECT_NEAR(y[i], std::exp(x[i]) / denom, 1e-14);
      }
    }
}

// Backward takes the forward's output y; the gradient check goes through x.
TEST(ActivationRef, GradientsMatchFiniteDifferences) {
  const ActivationGeometry g{2, 5, 6};  // softmax over 5 channels at 6 positions
  uint64_t seed = 700;
  for (Activation a : kAll) {
    SCOPED_TRACE(activation_name(a));
    seed += 2;
    // Away from ReLU's kink: |x| >= 0.1, far beyond the difference step.
    std::vector<double> x = test::away_from_zero(sz(g.size()), seed);
    for (double& v : x) v *= 3.0;
    const std::vector<double> dy = test::random_values(x.size(), seed + 1);
    std::vector<double> y(x.size());
    const auto loss = [&] {
      ref::activation_forward<double>(a, g, x.data(), y.data());
      return test::dot(y, dy);
    };
    loss();
    const std::vector<double> y0 = y;
    std::vector<double> dx = poisoned<double>(x.size());
    ref::activation_backward<double>(a, g, y0.data(), dy.data(), dx.data());
    EXPECT_TRUE(test::gradients_match("dx", dx, test::numeric_gradient(x, loss)));

    // In place: dx may alias dy.
    std::vector<double> inplace = dy;
    ref::activation_backward<double>(a, g, y0.data(), inplace.data(), inplace.data());
    EXPECT_TRUE(test::all_equal("in place", inplace, dx));
  }
}

TEST(ActivationRef, FloatMatchesDouble) {
  const ActivationGeometry g{3, 4, 5};
  for (Activation a : kAll) {
    SCOPED_TRACE(activation_name(a));
    const std::vector<double> xd = test::random_values(sz(g.size()), 9, -4.0, 4.0);
    const std::vector<double> dyd = test::random_values(xd.size(), 10);
    const std::vector<float> x = test::cast_all<float>(xd), dy = test::cast_all<float>(dyd);
    std::vector<float> y = poisoned<float>(x.size()), dx = poisoned<float>(x.size());
    ref::activation_forward<float>(a, g, x.data(), y.data());
    ref::activation_backward<float>(a, g, y.data(), dy.data(), dx.data());
    const std::vector<double> x2 = test::cast_all<double>(x), dy2 = test::cast_all<double>(dy);
    std::vector<double> y2(x.size()), dx2(x.size());
    ref::activation_forward<double>(a, g, x2.data(), y2.data());
    ref::activation_backward<double>(a, g, y2.data(), dy2.data(), dx2.data());
    EXPECT_TRUE(test::within_bounds("y", y, y2, {1e-6}));
    EXPECT_TRUE(test::within_bounds("dx", dx, dx2, {1e-6}));
  }
}

}  // namespace
}  // namespace cnn
