// Pool2D: shape inference, the worked example, padding and tie rules, gradient checks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/pool2d/pool2d.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::Pool2dGeometry;
using cnnk::PoolMode;
using test::poisoned;

Pool2dParams params(PoolMode mode, int ph, int pw, int sh = 0, int sw = 0,
                    Padding padding = Padding::valid()) {
  Pool2dParams p;
  p.mode = mode;
  p.pool_h = ph;
  p.pool_w = pw;
  p.stride_h = sh;
  p.stride_w = sw;
  p.padding = padding;
  return p;
}

size_t sz(int64_t n) { return static_cast<size_t>(n); }

TEST(Pool2d, DesignExampleMax2x2) {
  const std::vector<float> x = {1, 1, 2, 4, 5, 6, 7, 8, 3, 2, 1, 0, 1, 2, 3, 4};
  const Pool2dGeometry g = pool2d_geometry(params(PoolMode::Max, 2, 2, 2, 2), {1, 1, 4, 4});
  ASSERT_EQ(g.p, 2);
  ASSERT_EQ(g.q, 2);
  std::vector<float> y = poisoned<float>(4);
  ref::pool2d_forward<float>(g, x.data(), y.data());
  EXPECT_TRUE(test::all_equal("y", y, std::vector<float>{6, 8, 3, 4}));
  // The gradient goes to the maxima: 6 at (1,1), 8 at (1,3), 3 at (2,0), 4 at (3,3).
  const std::vector<float> dy = {10, 20, 30, 40};
  std::vector<float> dx = poisoned<float>(16);
  ref::pool2d_backward<float>(g, x.data(), dy.data(), dx.data());
  EXPECT_TRUE(test::all_equal(
      "dx", dx, std::vector<float>{0, 0, 0, 0, 0, 10, 0, 20, 30, 0, 0, 0, 0, 0, 0, 40}));
}

// ---------------------------------------------------------------------------------------
// Shape inference.

TEST(Pool2dGeometry, StrideZeroMeansPoolSizeAndValidFloors) {
  // Keras MaxPooling2D(2) on 7x7, "valid": 3x3.
  Pool2dGeometry g = pool2d_geometry(params(PoolMode::Max, 2, 2), {4, 3, 7, 7});
  EXPECT_EQ(g.p, 3);
  EXPECT_EQ(g.q, 3);
  EXPECT_EQ(g.stride_h, 2);
  EXPECT_EQ(g.stride_w, 2);
  EXPECT_EQ(g.window_h, 2);
  EXPECT_EQ(g.pad_top, 0);
  EXPECT_EQ(g.n, 4);
  EXPECT_EQ(g.c, 3);
  EXPECT_EQ(g.mode, PoolMode::Max);
  // 28 -> 14 -> 7 -> 3 through the Fashion-MNIST CNN's three pools.
  g = pool2d_geometry(params(PoolMode::Max, 2, 2), {1, 64, 28, 28});
  EXPECT_EQ(g.p, 14);
  g = pool2d_geometry(params(PoolMode::Max, 2, 2), {1, 128, 14, 14});
  EXPECT_EQ(g.p, 7);
  // Non-square pool with its own default strides; average mode carried through.
  g = pool2d_geometry(params(PoolMode::Average, 3, 2), {1, 1, 10, 9});
  EXPECT_EQ(g.p, 3);
  EXPECT_EQ(g.q, 4);
  EXPECT_EQ(g.stride_h, 3);
  EXPECT_EQ(g.stride_w, 2);
  EXPECT_EQ(g.mode, PoolMode::Average);
  // An explicit stride.
  g = pool2d_geometry(params(PoolMode::Max, 3, 3, 2, 2), {1, 1, 7, 7});
  EXPECT_EQ(g.p, 3);
}

TEST(Pool2dGeometry, KerasSameIsCeilWithTheSmallerHalfBefore) {
  struct Case {
    int in, pool, stride, out, pad_before;
  };
  const Case cases[] = {
      {7, 2, 2, 4, 0},    // total 1: 0 before, 1 after
      {8, 2, 2, 4, 0},    // total 0
      {5, 3, 1, 5, 1},    // overlapping, stride 1: total 2
      {6, 4, 1, 6, 1},    // total 3: 1 before, 2 after
      {7, 3, 2, 4, 1},    // total 2
      {28, 3, 2, 14, 0},  // total 1
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message()
                 << "in " << c.in << " pool " << c.pool << " stride " << c.stride);
    const Pool2dGeometry g =
        pool2d_geometry(params(PoolMode::Max, c.pool, c.pool, c.stride, c.stride, Padding::same()),
                        {1, 2, c.in, c.in + 1});
    EXPECT_EQ(g.p, c.out);
    EXPECT_EQ(g.pad_top, c.pad_before);
    const AxisPlan a = plan_axis(c.in + 1, c.pool, c.stride, PaddingMode::Same, 0, 0);
    EXPECT_EQ(g.q, a.out);
    EXPECT_EQ(g.pad_left, a.pad_before);
  }
}

std::string config_error(const Pool2dParams& p, const Shape& input) {
  try {
    pool2d_geometry(p, input);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Pool2dGeometry, ImpossibleConfigurationsThrowWithTheShapes) {
  std::string m = config_error(params(PoolMode::Max, 3, 3), {2, 4, 2, 2});
  EXPECT_NE(m.find("(2, 4, 2, 2)"), std::string::npos) << m;
  EXPECT_NE(m.find("pool size 3x3"), std::string::npos) << m;
  EXPECT_NE(m.find("does not fit"), std::string::npos) << m;
  EXPECT_NE(m.find("valid"), std::string::npos) << m;
  m = config_error(params(PoolMode::Average, 2, 2), {2, 4, 8});
  EXPECT_NE(m.find("rank 4"), std::string::npos) << m;
  EXPECT_NE(m.find("AveragePooling2D"), std::string::npos) << m;
  m = config_error(params(PoolMode::Max, 0, 2), {1, 1, 4, 4});
  EXPECT_NE(m.find("pool size must"), std::string::npos) << m;
  m = config_error(params(PoolMode::Max, 2, 2, -1, 2), {1, 1, 4, 4});
  EXPECT_NE(m.find("strides must"), std::string::npos) << m;
  m = config_error(params(PoolMode::Max, 2, 2, 2, 2, Padding::explicit_(2, 0, 0, 0)), {1, 1, 4, 4});
  EXPECT_NE(m.find("explicit(2,0,0,0)"), std::string::npos) << m;
  m = config_error(params(PoolMode::Max, 2, 2), {1, 1, 0, 4});
  EXPECT_NE(m.find("positive"), std::string::npos) << m;
}

// ---------------------------------------------------------------------------------------
// Forward semantics.

TEST(Pool2dRef, MaxPaddingNeverWins) {
  // All inputs negative: a zero from the padding would win if padding took part.
  const Pool2dGeometry g =
      pool2d_geometry(params(PoolMode::Max, 3, 3, 2, 2, Padding::same()), {1, 1, 5, 5});
  std::vector<double> x(25);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -1.0 - static_cast<double>(i);
  std::vector<double> y = poisoned<double>(sz(g.output_size()));
  ref::pool2d_forward<double>(g, x.data(), y.data());
  // out 3x3, total padding 2: windows start at rows/cols -1, 1, 3.
  EXPECT_EQ(y[0], -1.0);   // window rows 0..1, cols 0..1: max is x[0]
  EXPECT_EQ(y[1], -2.0);   // cols 1..3 of row 0
  EXPECT_EQ(y[4], -7.0);   // rows 1..3, cols 1..3: x[1*5+1]
  EXPECT_EQ(y[8], -19.0);  // rows 3..4, cols 3..4: x[3*5+3]
}

TEST(Pool2dRef, AverageSameCountsOnlyRealInputs) {
  const Pool2dGeometry g =
      pool2d_geometry(params(PoolMode::Average, 3, 3, 1, 1, Padding::same()), {2, 3, 4, 5});
  const std::vector<double> ones(sz(g.input_size()), 1.0);
  std::vector<double> y = poisoned<double>(sz(g.output_size()));
  ref::pool2d_forward<double>(g, ones.data(), y.data());
  EXPECT_TRUE(test::all_equal("y", y, ones));
  // A corner: mean of the 2x2 real inputs.
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const Pool2dGeometry g4 =
      pool2d_geometry(params(PoolMode::Average, 3, 3, 1, 1, Padding::same()), {1, 1, 4, 4});
  std::vector<double> y4 = poisoned<double>(16);
  ref::pool2d_forward<double>(g4, x.data(), y4.data());
  EXPECT_DOUBLE_EQ(y4[0], (1 + 2 + 5 + 6) / 4.0);
  EXPECT_DOUBLE_EQ(y4[5], (1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11) / 9.0);
  EXPECT_DOUBLE_EQ(y4[3], (3 + 4 + 7 + 8) / 4.0);
}

TEST(Pool2dRef, MaxTiesSendTheGradientToTheFirstMaximum) {
  // Overlapping 2x2 windows, stride 1, over a constant map: each window's first element
  // (its top-left) takes the whole gradient.
  const Pool2dGeometry g = pool2d_geometry(params(PoolMode::Max, 2, 2, 1, 1), {1, 1, 3, 3});
  const std::vector<double> x(9, 5.0), dy = {1, 2, 3, 4};
  std::vector<double> dx = poisoned<double>(9);
  ref::pool2d_backward<double>(g, x.data(), dy.data(), dx.data());
  EXPECT_TRUE(test::all_equal("dx", dx, std::vector<double>{1, 2, 0, 3, 4, 0, 0, 0, 0}));
}

// ---------------------------------------------------------------------------------------
// Gradient checks, max on distinct well-separated values (no ties within the step).

TEST(Pool2dRef, GradientsMatchFiniteDifferences) {
  struct Case {
    std::string name;
    Pool2dParams p;
    Shape input;
  };
  std::vector<Case> cases;
  for (PoolMode mode : {PoolMode::Max, PoolMode::Average}) {
    const std::string m = mode == PoolMode::Max ? "max " : "average ";
    cases.push_back({m + "2x2 valid", params(mode, 2, 2), {2, 3, 6, 6}});
    cases.push_back({m + "2x2 valid, odd input", params(mode, 2, 2), {1, 2, 7, 5}});
    cases.push_back(
        {m + "2x2 same, odd input", params(mode, 2, 2, 2, 2, Padding::same()), {2, 2, 7, 5}});
    cases.push_back({m + "3x3 stride 1 same (overlapping)",
                     params(mode, 3, 3, 1, 1, Padding::same()),
                     {1, 2, 5, 6}});
    cases.push_back(
        {m + "3x3 stride 2 valid (overlapping)", params(mode, 3, 3, 2, 2), {2, 1, 7, 7}});
    cases.push_back(
        {m + "2x3 strides 1x2 same", params(mode, 2, 3, 1, 2, Padding::same()), {1, 2, 6, 7}});
    cases.push_back({m + "explicit padding",
                     params(mode, 3, 3, 2, 2, Padding::explicit_(1, 2, 2, 0)),
                     {1, 2, 6, 5}});
  }
  uint64_t seed = 500;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Pool2dGeometry g = pool2d_geometry(c.p, c.input);
    seed += 2;
    std::vector<double> x = test::distinct_values(sz(g.input_size()), seed);
    const std::vector<double> dy = test::random_values(sz(g.output_size()), seed + 1);
    std::vector<double> y(sz(g.output_size()));
    const auto loss = [&] {
      ref::pool2d_forward<double>(g, x.data(), y.data());
      return test::dot(y, dy);
    };
    std::vector<double> dx = poisoned<double>(x.size());
    ref::pool2d_backward<double>(g, x.data(), dy.data(), dx.data());
    EXPECT_TRUE(test::gradients_match("dx", dx, test::numeric_gradient(x, loss)));
  }
}

TEST(Pool2dRef, FloatMatchesDouble) {
  for (PoolMode mode : {PoolMode::Max, PoolMode::Average}) {
    const Pool2dGeometry g =
        pool2d_geometry(params(mode, 3, 3, 2, 2, Padding::same()), {2, 3, 9, 8});
    const std::vector<float> x = test::small_integers(sz(g.input_size()), 7, 50);
    const std::vector<float> dy = test::small_integers(sz(g.output_size()), 8, 50);
    std::vector<float> y = poisoned<float>(sz(g.output_size())), dx = poisoned<float>(x.size());
    std::vector<double> yd(y.size()), dxd(dx.size());
    ref::pool2d_forward<float>(g, x.data(), y.data());
    ref::pool2d_backward<float>(g, x.data(), dy.data(), dx.data());
    const std::vector<double> xd = test::cast_all<double>(x), dyd = test::cast_all<double>(dy);
    ref::pool2d_forward<double>(g, xd.data(), yd.data());
    ref::pool2d_backward<double>(g, xd.data(), dyd.data(), dxd.data());
    EXPECT_TRUE(test::all_equal("y", y, test::cast_all<float>(yd)));
    EXPECT_TRUE(test::all_equal("dx", dx, test::cast_all<float>(dxd)));
  }
}

// ---------------------------------------------------------------------------------------
// The CPU backend's fast path for disjoint max windows: the reference's bits.

TEST(Pool2dCpu, DisjointMaxGivesTheReferenceBits) {
  struct Case {
    int ph, pw, sh, sw;
    bool same;
    Shape input;
  };
  const Case cases[] = {{2, 2, 2, 2, false, {3, 5, 28, 28}},  // the zoo's pooling
                        {2, 2, 2, 2, false, {1, 3, 7, 7}},    // valid drops the last row and column
                        {2, 2, 2, 2, false, {2, 2, 6, 9}},    // ... the last column only
                        {2, 2, 2, 2, false, {2, 2, 9, 6}},    // ... the last row only
                        {2, 2, 2, 2, true, {2, 4, 7, 9}},     // same: a padded last row and column
                        {3, 3, 3, 3, true, {1, 2, 8, 10}},    // same with padding before as well
                        {2, 3, 2, 4, false, {2, 3, 9, 13}},   // stride beyond the window: gaps
                        {1, 1, 1, 1, false, {1, 2, 4, 5}},    // the identity
                        {3, 2, 3, 2, false, {4, 1, 9, 6}}};
  uint64_t seed = 300;
  for (const Case& c : cases) {
    const Padding pad = c.same ? Padding::same() : Padding::valid();
    const Pool2dGeometry g =
        pool2d_geometry(params(PoolMode::Max, c.ph, c.pw, c.sh, c.sw, pad), c.input);
    SCOPED_TRACE(describe(g));
    ASSERT_TRUE(cpu::max_pool2d_disjoint(g));
    // Small integers: ties in most windows, so the first-maximum rule is exercised.
    const std::vector<float> x = test::small_integers(sz(g.input_size()), ++seed, 2);
    const std::vector<float> dy = test::small_integers(sz(g.output_size()), ++seed);
    std::vector<float> y = poisoned<float>(sz(g.output_size())), y_ref = y;
    cpu::max_pool2d_forward(g, x.data(), y.data());
    ref::pool2d_forward<float>(g, x.data(), y_ref.data());
    EXPECT_TRUE(test::all_equal("y", y, y_ref));
    std::vector<float> dx = poisoned<float>(x.size()), dx_ref = dx;
    cpu::max_pool2d_backward(g, x.data(), dy.data(), dx.data());
    ref::pool2d_backward<float>(g, x.data(), dy.data(), dx_ref.data());
    EXPECT_TRUE(test::all_equal("dx", dx, dx_ref));
  }
}

TEST(Pool2dCpu, OverlappingOrAverageWindowsAreLeftToTheReference) {
  EXPECT_FALSE(
      cpu::max_pool2d_disjoint(pool2d_geometry(params(PoolMode::Max, 3, 3, 2, 2), {1, 1, 7, 7})));
  EXPECT_FALSE(
      cpu::max_pool2d_disjoint(pool2d_geometry(params(PoolMode::Max, 2, 2, 1, 2), {1, 1, 6, 6})));
  EXPECT_FALSE(cpu::max_pool2d_disjoint(
      pool2d_geometry(params(PoolMode::Average, 2, 2, 2, 2), {1, 1, 6, 6})));
}

}  // namespace
}  // namespace cnn
