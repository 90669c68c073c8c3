// The oracle of a convolution with its activation fused (Backend::conv2d_forward_fused),
// for every backend's tests: tests/engine (the CPU) and tests/gpu.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/ops/activation/activation.h"
#include "engine/ops/conv2d/conv2d.h"
#include "tests/support/gradcheck.h"

namespace cnn::test {

// The fused output against the oracle: the reference convolution and activation in
// double. The convolution's float rounding is bounded by its length and the magnitudes
// (the same loops over |x|, |w|, |b|); an activation passes it on scaled by its largest
// slope (1 for Linear, ReLU and tanh, 1/4 for the sigmoid, 1/2 for softmax, whose output
// moves by at most half the largest change of its channel's inputs) and adds a few ulps
// of its own (expf, tanhf). `transform`: the convolution ran in a transformed domain
// (cuDNN's FFT or Winograd), whose rounding follows the whole transform rather than each
// output's own terms: every output then gets the tensor's largest magnitude, 16x wider.
inline ::testing::AssertionResult fused_matches_the_oracle(
    const cnnk::Conv2dGeometry& g, const std::vector<float>& x, const std::vector<float>& w,
    const float* b, Activation a, const std::vector<float>& fused, bool transform = false) {
  ActivationGeometry ag;
  ag.n = g.n;
  ag.c = g.k;
  ag.spatial = int64_t(g.p) * g.q;
  const auto xd = cast_all<double>(x), wd = cast_all<double>(w);
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
  if (transform) {
    const double largest = *std::max_element(mag.begin(), mag.end());
    std::fill(mag.begin(), mag.end(), 16 * largest);
  }
  const double slope = a == Activation::Sigmoid ? 0.25 : a == Activation::Softmax ? 0.5 : 1.0;
  double widest = 0;  // softmax: the largest input change of any channel
  for (const double m : mag) widest = std::max(widest, (length + 1) * ulp * m);
  std::vector<double> bound(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const double conv = a == Activation::Softmax ? widest : (length + 1) * ulp * mag[i];
    bound[i] = slope * conv + 8 * ulp * std::abs(y[i]) + 1e-30;
  }
  return within_bounds(activation_name(a), fused, y, bound);
}

}  // namespace cnn::test
