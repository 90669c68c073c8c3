// Conv2D's forward with its activation fused (Backend::conv2d_forward_fused): on the CPU
// backend, for every activation and on both CPU paths (reference loops and OpenBLAS), it
// is the double-precision oracle's within float rounding, and exactly what the
// convolution followed by the activation pass gives. The
// GPU's fused epilogue is checked against its separate pass in tests/kernels and
// tests/gpu.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/ops/conv2d/conv2d.h"
#include "tests/support/fused_oracle.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

cnnk::Conv2dGeometry fashion_first_layer(int n) {
  Conv2dParams p;
  p.filters = 64;
  p.kernel_h = p.kernel_w = 7;
  p.padding = Padding::same();
  return conv2d_geometry(p, Shape{n, 1, 28, 28});
}

cnnk::Conv2dGeometry strided_layer(int n) {
  Conv2dParams p;
  p.filters = 17;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 2;
  p.padding = Padding::same();
  return conv2d_geometry(p, Shape{n, 3, 13, 13});
}

TEST(Conv2dFused, CpuFusedEqualsConvolutionThenActivation) {
  for (const bool reference_only : {true, false}) {
    CpuBackend be(reference_only);
    for (const cnnk::Conv2dGeometry& g : {fashion_first_layer(3), strided_layer(2)}) {
      SCOPED_TRACE(describe(g));
      const auto x = test::cast_all<float>(test::random_values(size_t(g.input_size()), 11));
      const auto w = test::cast_all<float>(test::random_values(size_t(g.filter_size()), 12));
      const auto b = test::cast_all<float>(test::random_values(size_t(g.k), 13));
      ActivationGeometry ag;
      ag.n = g.n;
      ag.c = g.k;
      ag.spatial = int64_t(g.p) * g.q;
      for (const Activation a : {Activation::Linear, Activation::Relu, Activation::Sigmoid,
                                 Activation::Tanh, Activation::Softmax}) {
        SCOPED_TRACE(activation_name(a));
        std::vector<float> fused(size_t(g.output_size()), -7.f), separate(fused.size(), -9.f);
        be.conv2d_forward_fused(g, x.data(), w.data(), b.data(), a, fused.data());
        EXPECT_TRUE(test::fused_matches_the_oracle(g, x, w, b.data(), a, fused));
        be.conv2d_forward(g, x.data(), w.data(), b.data(), separate.data());
        be.activation_forward(a, ag, separate.data(), separate.data());
        ASSERT_EQ(std::memcmp(fused.data(), separate.data(), fused.size() * sizeof(float)), 0);
      }
      // And without a bias.
      std::vector<float> fused(size_t(g.output_size())), separate(fused.size());
      be.conv2d_forward_fused(g, x.data(), w.data(), nullptr, Activation::Relu, fused.data());
      EXPECT_TRUE(test::fused_matches_the_oracle(g, x, w, nullptr, Activation::Relu, fused));
      be.conv2d_forward(g, x.data(), w.data(), nullptr, separate.data());
      be.activation_forward(Activation::Relu, ag, separate.data(), separate.data());
      EXPECT_EQ(std::memcmp(fused.data(), separate.data(), fused.size() * sizeof(float)), 0);
    }
  }
}

// ReLU fused: no negative output, and the positive ones are the convolution's.
TEST(Conv2dFused, ReluClampsOnlyTheNegatives) {
  CpuBackend be(true);
  const cnnk::Conv2dGeometry g = fashion_first_layer(1);
  const auto x = test::cast_all<float>(test::random_values(size_t(g.input_size()), 21));
  const auto w = test::cast_all<float>(test::random_values(size_t(g.filter_size()), 22));
  std::vector<float> relu(size_t(g.output_size())), plain(relu.size());
  be.conv2d_forward_fused(g, x.data(), w.data(), nullptr, Activation::Relu, relu.data());
  be.conv2d_forward(g, x.data(), w.data(), nullptr, plain.data());
  size_t clamped = 0;
  for (size_t i = 0; i < relu.size(); ++i) {
    EXPECT_EQ(relu[i], plain[i] > 0 ? plain[i] : 0.f) << i;
    clamped += plain[i] < 0 ? 1 : 0;
  }
  EXPECT_GT(clamped, relu.size() / 10);  // the check saw both sides of the kink
}

// The oracle's bound for a convolution in a transformed domain (cuDNN's FFT, Winograd):
// an error at the smallest output, far past that output's own bound, passes when it is a
// small part of the largest output's; an error as large as the largest output does not.
TEST(Conv2dFused, TheTransformBoundFollowsTheLargestOutput) {
  CpuBackend be(true);
  const cnnk::Conv2dGeometry g = strided_layer(2);
  const auto x = test::cast_all<float>(test::random_values(size_t(g.input_size()), 21));
  const auto w = test::cast_all<float>(test::random_values(size_t(g.filter_size()), 22));
  std::vector<float> y(size_t(g.output_size()));
  be.conv2d_forward_fused(g, x.data(), w.data(), nullptr, Activation::Linear, y.data());
  ASSERT_TRUE(test::fused_matches_the_oracle(g, x, w, nullptr, Activation::Linear, y));
  size_t smallest = 0;
  float largest = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (std::abs(y[i]) < std::abs(y[smallest])) smallest = i;
    largest = std::max(largest, std::abs(y[i]));
  }
  std::vector<float> off = y;
  off[smallest] += 1e-5f * largest;
  EXPECT_FALSE(test::fused_matches_the_oracle(g, x, w, nullptr, Activation::Linear, off));
  EXPECT_TRUE(test::fused_matches_the_oracle(g, x, w, nullptr, Activation::Linear, off, true));
  off[smallest] = y[smallest] + largest;
  EXPECT_FALSE(test::fused_matches_the_oracle(g, x, w, nullptr, Activation::Linear, off, true));
}

}  // namespace
}  // namespace cnn
