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
#include "engine/ops/activation/activation.h"
#include "engine/ops/conv2d/conv2d.h"
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

// The fused output against the oracle: the reference convolution and activation in
// double. The convolution's float rounding is bounded by its length and the magnitudes
// (the same loops over |x|, |w|, |b|); an activation passes it on scaled by its largest
// slope (1 for Linear, ReLU and tanh, 1/4 for the sigmoid, 1/2 for softmax, whose output
// moves by at most half the largest change of its channel's inputs) and adds a few ulps
// of its own (expf, tanhf).
::testing::AssertionResult matches_the_oracle(const cnnk::Conv2dGeometry& g,
                                              const ActivationGeometry& ag,
                                              const std::vector<float>& x,
                                              const std::vector<float>& w, const float* b,
                                              Activation a, const std::vector<float>& fused) {
  const auto xd = test::cast_all<double>(x), wd = test::cast_all<double>(w);
  std::vector<double> bd(size_t(g.k), 0.0), ax(xd.size()), aw(wd.size()), ab(bd.size());
  for (size_t i = 0; i < bd.size(); ++i) bd[i] = b ? double(b[i]) : 0.0;
  for (size_t i = 0; i < xd.size(); ++i) ax[i] = std::abs(xd[i]);
  for (size_t i = 0; i < wd.size(); ++i) aw[i] = std::abs(wd[i]);
  for (size_t i = 0; i < bd.size(); ++i) ab[i] = std::abs(bd[i]);
  std::vector<double> z(fused.size()), mag(fused.size()), y(fused.size());
  ref::conv2d_forward<double>(g, xd.data(), wd.data(), bd.data(), z.data());
  ref::conv2d_forward<double>(g, ax.data(), aw.data(), ab.data(), mag.data());
  ref::activation_forward<double>(a, ag, z.data(), y.data());
  const double length = double(g.c) * g.r * g.s + 1, ulp = std::ldexp(1.0, -23);
  const double slope = a == Activation::Sigmoid ? 0.25 : a == Activation::Softmax ? 0.5 : 1.0;
  double widest = 0;  // softmax: the largest input change of any channel
  for (const double m : mag) widest = std::max(widest, (length + 1) * ulp * m);
  std::vector<double> bound(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const double conv = a == Activation::Softmax ? widest : (length + 1) * ulp * mag[i];
    bound[i] = slope * conv + 8 * ulp * std::abs(y[i]) + 1e-30;
  }
  return test::within_bounds(activation_name(a), fused, y, bound);
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
        EXPECT_TRUE(matches_the_oracle(g, ag, x, w, b.data(), a, fused));
        be.conv2d_forward(g, x.data(), w.data(), b.data(), separate.data());
        be.activation_forward(a, ag, separate.data(), separate.data());
        ASSERT_EQ(std::memcmp(fused.data(), separate.data(), fused.size() * sizeof(float)), 0);
      }
      // And without a bias.
      std::vector<float> fused(size_t(g.output_size())), separate(fused.size());
      be.conv2d_forward_fused(g, x.data(), w.data(), nullptr, Activation::Relu, fused.data());
      EXPECT_TRUE(matches_the_oracle(g, ag, x, w, nullptr, Activation::Relu, fused));
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

}  // namespace
}  // namespace cnn
