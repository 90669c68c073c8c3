// Conv2D: shape inference, the worked examples, gradient checks of the reference, and
// the BLAS path against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/conv2d/conv2d.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::Conv2dGeometry;
using test::cast_all;
using test::poisoned;

Conv2dParams params(int filters, int kh, int kw, int sh, int sw, Padding padding, int dh = 1,
                    int dw = 1) {
  Conv2dParams p;
  p.filters = filters;
  p.kernel_h = kh;
  p.kernel_w = kw;
  p.stride_h = sh;
  p.stride_w = sw;
  p.dilation_h = dh;
  p.dilation_w = dw;
  p.padding = padding;
  return p;
}

std::string describe(const Conv2dGeometry& g) {
  return "n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " " + std::to_string(g.h) + "x" +
         std::to_string(g.w) + " k" + std::to_string(g.k) + " " + std::to_string(g.r) + "x" +
         std::to_string(g.s) + " stride " + std::to_string(g.stride_h) + "x" +
         std::to_string(g.stride_w) + " pad " + std::to_string(g.pad_top) + "," +
         std::to_string(g.pad_left) + " dil " + std::to_string(g.dil_h) + "x" +
         std::to_string(g.dil_w) + " out " + std::to_string(g.p) + "x" + std::to_string(g.q);
}

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// ---------------------------------------------------------------------------------------
// The worked examples of DESIGN.md.

std::vector<float> rows_to_floats(const std::vector<std::string>& rows) {
  std::vector<float> v;
  for (const std::string& r : rows)
    for (char ch : r) v.push_back(ch == '1' ? 1.0f : 0.0f);
  return v;
}

TEST(Conv2d, DesignExample5x5) {
  const std::vector<float> x = rows_to_floats({"11100", "01110", "00111", "00110", "01100"});
  const std::vector<float> w = rows_to_floats({"101", "010", "101"});
  const Conv2dGeometry g = conv2d_geometry(params(1, 3, 3, 1, 1, Padding::valid()), {1, 1, 5, 5});
  ASSERT_EQ(g.p, 3);
  ASSERT_EQ(g.q, 3);
  const std::vector<float> expected = {4, 3, 4, 2, 4, 3, 2, 3, 4};

  std::vector<float> y = poisoned<float>(9);
  ref::conv2d_forward<float>(g, x.data(), w.data(), nullptr, y.data());
  EXPECT_TRUE(test::all_equal("ref float", y, expected));

  std::vector<double> yd = poisoned<double>(9);
  const std::vector<double> xd = cast_all<double>(x), wd = cast_all<double>(w);
  ref::conv2d_forward<double>(g, xd.data(), wd.data(), nullptr, yd.data());
  EXPECT_TRUE(test::all_equal("ref double", yd, expected));

  std::vector<float> yb = poisoned<float>(9);
  std::vector<float> col = poisoned<float>(blas::conv2d_workspace_elements(g, 1));
  blas::conv2d_forward(g, x.data(), w.data(), nullptr, yb.data(), col.data());
  EXPECT_TRUE(test::all_equal("blas", yb, expected));
}

TEST(Conv2d, DesignExampleRing) {
  const std::vector<float> x =
      rows_to_floats({"001100", "010010", "100001", "100001", "010010", "001100"});
  const std::vector<float> w = rows_to_floats({"001", "010", "100"});
  const std::vector<float> b = {-2.0f};
  const Conv2dGeometry g = conv2d_geometry(params(1, 3, 3, 1, 1, Padding::valid()), {1, 1, 6, 6});
  ASSERT_EQ(g.p, 4);
  ASSERT_EQ(g.q, 4);
  std::vector<float> y = poisoned<float>(16);
  ref::conv2d_forward<float>(g, x.data(), w.data(), b.data(), y.data());
  // DESIGN.md: the top-left output is 1. Checked by hand: the anti-diagonal filter finds
  // the "/" edges of the ring at the top-left and bottom-right corners (3 - 2 = 1) and
  // one pixel of the "\" edges at the other two (1 - 2 = -1).
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[3], -1.0f);
  EXPECT_EQ(y[12], -1.0f);
  EXPECT_EQ(y[15], 1.0f);

  std::vector<float> yb = poisoned<float>(16);
  std::vector<float> col = poisoned<float>(blas::conv2d_workspace_elements(g, 1));
  blas::conv2d_forward(g, x.data(), w.data(), b.data(), yb.data(), col.data());
  EXPECT_TRUE(test::all_equal("blas vs ref", yb, y));
}

// Hand-computed: the dilated taps and the asymmetric padding land where the geometry says.
TEST(Conv2d, DilationAndAsymmetricPaddingByHand) {
  // x[i][j] = 5i + j on 5x5, w[r][s] = 3r + s + 1, dilation 2, valid: one output,
  // sum of w[r][s] * x[2r][2s] = 16 + 184 + 532.
  std::vector<double> x(25), w(9);
  for (size_t i = 0; i < 25; ++i) x[i] = static_cast<double>(i);
  for (size_t i = 0; i < 9; ++i) w[i] = static_cast<double>(i + 1);
  Conv2dGeometry g = conv2d_geometry(params(1, 3, 3, 1, 1, Padding::valid(), 2, 2), {1, 1, 5, 5});
  ASSERT_EQ(g.p, 1);
  std::vector<double> y = poisoned<double>(1);
  ref::conv2d_forward<double>(g, x.data(), w.data(), nullptr, y.data());
  EXPECT_EQ(y[0], 732.0);

  // x = 1..9 on 3x3, w = [1 2; 3 4], "same": total padding 1, all of it after.
  const std::vector<double> x3 = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w2 = {1, 2, 3, 4};
  g = conv2d_geometry(params(1, 2, 2, 1, 1, Padding::same()), {1, 1, 3, 3});
  ASSERT_EQ(g.p, 3);
  ASSERT_EQ(g.pad_top, 0);
  y = poisoned<double>(9);
  ref::conv2d_forward<double>(g, x3.data(), w2.data(), nullptr, y.data());
  EXPECT_EQ(y[0], 1 * 1 + 2 * 2 + 3 * 4 + 4 * 5);
  EXPECT_EQ(y[2], 1 * 3 + 3 * 6);
  EXPECT_EQ(y[6], 1 * 7 + 2 * 8);
  EXPECT_EQ(y[8], 1 * 9);
}

// ---------------------------------------------------------------------------------------
// Shape inference.

struct AxisCase {
  int in, kernel, stride, dilation;
  PaddingMode mode;
  int out, pad_before, pad_after;
};

TEST(Conv2dGeometry, KerasSameAndValidPerAxis) {
  const AxisCase cases[] = {
      // "same": out = ceil(in / stride), the smaller half of the padding before.
      {28, 7, 1, 1, PaddingMode::Same, 28, 3, 3},
      {28, 3, 2, 1, PaddingMode::Same, 14, 0, 1},
      {7, 3, 2, 1, PaddingMode::Same, 4, 1, 1},
      {8, 4, 1, 1, PaddingMode::Same, 8, 1, 2},
      {7, 3, 1, 1, PaddingMode::Same, 7, 1, 1},
      {8, 3, 2, 1, PaddingMode::Same, 4, 0, 1},
      {7, 4, 2, 1, PaddingMode::Same, 4, 1, 2},
      {8, 2, 2, 1, PaddingMode::Same, 4, 0, 0},
      {7, 1, 2, 1, PaddingMode::Same, 4, 0, 0},
      {5, 7, 1, 1, PaddingMode::Same, 5, 3, 3},
      {6, 5, 3, 1, PaddingMode::Same, 2, 1, 1},
      {9, 3, 1, 2, PaddingMode::Same, 9, 2, 2},  // dilated window of 5
      // "valid": out = floor((in - window) / stride) + 1, no padding.
      {28, 3, 1, 1, PaddingMode::Valid, 26, 0, 0},
      {28, 7, 2, 1, PaddingMode::Valid, 11, 0, 0},
      {7, 3, 2, 1, PaddingMode::Valid, 3, 0, 0},
      {8, 3, 2, 1, PaddingMode::Valid, 3, 0, 0},
      {9, 3, 1, 2, PaddingMode::Valid, 5, 0, 0},
      {3, 3, 1, 1, PaddingMode::Valid, 1, 0, 0},
  };
  for (const AxisCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "in " << c.in << " kernel " << c.kernel << " stride "
                                    << c.stride << " dilation " << c.dilation << " "
                                    << (c.mode == PaddingMode::Same ? "same" : "valid"));
    const Padding pad = c.mode == PaddingMode::Same ? Padding::same() : Padding::valid();
    // Both axes, separately, with a different size on the other axis.
    const Conv2dGeometry gh =
        conv2d_geometry(params(5, c.kernel, 1, c.stride, 1, pad, c.dilation, 1), {2, 3, c.in, 10});
    EXPECT_EQ(gh.p, c.out);
    EXPECT_EQ(gh.pad_top, c.pad_before);
    EXPECT_EQ(gh.q, 10);
    EXPECT_EQ(gh.pad_left, 0);
    const Conv2dGeometry gw =
        conv2d_geometry(params(5, 1, c.kernel, 1, c.stride, pad, 1, c.dilation), {2, 3, 10, c.in});
    EXPECT_EQ(gw.q, c.out);
    EXPECT_EQ(gw.pad_left, c.pad_before);
    EXPECT_EQ(gw.p, 10);
    // The padding after is implied by the output size; plan_axis states it.
    const int window = (c.kernel - 1) * c.dilation + 1;
    const AxisPlan a = plan_axis(c.in, window, c.stride, c.mode, 0, 0);
    EXPECT_EQ(a.out, c.out);
    EXPECT_EQ(a.pad_before, c.pad_before);
    EXPECT_EQ(a.pad_after, c.pad_after);
    // The last window ends exactly at the padded edge or inside it.
    EXPECT_LE((c.out - 1) * c.stride + window, c.in + c.pad_before + c.pad_after);
  }
}

TEST(Conv2dGeometry, FillsEveryField) {
  const Conv2dGeometry g =
      conv2d_geometry(params(64, 7, 3, 1, 2, Padding::same()), {32, 3, 28, 20});
  EXPECT_EQ(g.n, 32);
  EXPECT_EQ(g.c, 3);
  EXPECT_EQ(g.h, 28);
  EXPECT_EQ(g.w, 20);
  EXPECT_EQ(g.k, 64);
  EXPECT_EQ(g.r, 7);
  EXPECT_EQ(g.s, 3);
  EXPECT_EQ(g.p, 28);
  EXPECT_EQ(g.q, 10);
  EXPECT_EQ(g.pad_top, 3);
  EXPECT_EQ(g.pad_left, 0);  // total (10 - 1) * 2 + 3 - 20 = 1: 0 before, 1 after
  EXPECT_EQ(g.stride_h, 1);
  EXPECT_EQ(g.stride_w, 2);
  EXPECT_EQ(g.dil_h, 1);
  EXPECT_EQ(g.dil_w, 1);
}

TEST(Conv2dGeometry, ExplicitPadding) {
  const Conv2dGeometry g =
      conv2d_geometry(params(4, 3, 3, 2, 1, Padding::explicit_(1, 2, 0, 3)), {1, 2, 6, 5});
  EXPECT_EQ(g.p, (6 + 1 + 2 - 3) / 2 + 1);
  EXPECT_EQ(g.q, 5 + 0 + 3 - 3 + 1);
  EXPECT_EQ(g.pad_top, 1);
  EXPECT_EQ(g.pad_left, 0);
}

TEST(Conv2dGeometry, ZeroBatchIsAllowed) {
  const Conv2dGeometry g = conv2d_geometry(params(4, 3, 3, 1, 1, Padding::valid()), {0, 1, 5, 5});
  EXPECT_EQ(g.n, 0);
  EXPECT_EQ(g.p, 3);
}

// The message of the ConfigError thrown for `input` and `p`, or "" if none is thrown.
std::string config_error(const Conv2dParams& p, const Shape& input) {
  try {
    conv2d_geometry(p, input);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Conv2dGeometry, ImpossibleConfigurationsThrowWithTheShapes) {
  // A kernel larger than the input under "valid".
  std::string m = config_error(params(8, 5, 5, 1, 1, Padding::valid()), {2, 3, 4, 4});
  EXPECT_NE(m.find("(2, 3, 4, 4)"), std::string::npos) << m;
  EXPECT_NE(m.find("kernel 5x5"), std::string::npos) << m;
  EXPECT_NE(m.find("strides 1x1"), std::string::npos) << m;
  EXPECT_NE(m.find("valid"), std::string::npos) << m;
  EXPECT_NE(m.find("does not fit"), std::string::npos) << m;
  // Only one axis too small; dilation makes the window too large.
  m = config_error(params(8, 3, 3, 1, 1, Padding::valid()), {1, 1, 10, 2});
  EXPECT_NE(m.find("(1, 1, 10, 2)"), std::string::npos) << m;
  m = config_error(params(8, 3, 3, 1, 1, Padding::valid(), 3, 3), {1, 1, 6, 6});
  EXPECT_NE(m.find("dilation 3x3"), std::string::npos) << m;
  // Explicit padding that is still too small.
  m = config_error(params(8, 5, 5, 1, 1, Padding::explicit_(0, 0, 1, 1)), {1, 1, 4, 4});
  EXPECT_NE(m.find("explicit(0,0,1,1)"), std::string::npos) << m;

  const Shape ok = {2, 3, 8, 8};
  EXPECT_NE(config_error(params(0, 3, 3, 1, 1, Padding::same()), ok).find("number of filters"),
            std::string::npos);
  EXPECT_NE(config_error(params(4, 0, 3, 1, 1, Padding::same()), ok).find("kernel size must"),
            std::string::npos);
  EXPECT_NE(config_error(params(4, 3, 3, 0, 1, Padding::same()), ok).find("strides must"),
            std::string::npos);
  EXPECT_NE(config_error(params(4, 3, 3, 1, -2, Padding::same()), ok).find("strides must"),
            std::string::npos);
  EXPECT_NE(
      config_error(params(4, 3, 3, 1, 1, Padding::same(), 0, 1), ok).find("dilation rate must"),
      std::string::npos);
  EXPECT_NE(
      config_error(params(4, 3, 3, 1, 1, Padding::explicit_(-1, 0, 0, 0)), ok).find("negative"),
      std::string::npos);
  m = config_error(params(4, 3, 3, 1, 1, Padding::same()), {3, 8, 8});
  EXPECT_NE(m.find("rank 4"), std::string::npos) << m;
  EXPECT_NE(m.find("(3, 8, 8)"), std::string::npos) << m;
  EXPECT_NE(config_error(params(4, 3, 3, 1, 1, Padding::same()), {2, 0, 8, 8}).find("positive"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Gradient checks of the reference, in double.

struct ConvCase {
  std::string name;
  Shape input;
  Conv2dParams p;
};

std::vector<ConvCase> gradcheck_cases() {
  return {
      {"3x3 valid", {2, 3, 7, 6}, params(4, 3, 3, 1, 1, Padding::valid())},
      {"3x3 stride 2 same (pad 0 before, 1 after)",
       {2, 2, 8, 8},
       params(3, 3, 3, 2, 2, Padding::same())},
      {"3x3 stride 2 same on odd input", {1, 2, 7, 9}, params(3, 3, 3, 2, 2, Padding::same())},
      {"4x4 same (pad 1 before, 2 after)", {2, 2, 7, 7}, params(3, 4, 4, 1, 1, Padding::same())},
      {"explicit padding", {2, 2, 5, 6}, params(3, 3, 2, 1, 1, Padding::explicit_(1, 2, 0, 1))},
      {"dilation 2 same", {1, 2, 9, 8}, params(3, 3, 3, 1, 1, Padding::same(), 2, 2)},
      {"dilation 2 valid, stride 2", {2, 2, 9, 9}, params(2, 3, 3, 2, 2, Padding::valid(), 2, 2)},
      {"non-square 2x5 kernel, strides 2x1", {2, 3, 7, 8}, params(4, 2, 5, 2, 1, Padding::valid())},
      {"non-square 5x2 kernel, same", {1, 3, 6, 7}, params(2, 5, 2, 1, 2, Padding::same())},
      {"1x1", {2, 5, 4, 3}, params(3, 1, 1, 1, 1, Padding::valid())},
      {"stride 3 skips inputs", {2, 2, 8, 7}, params(2, 2, 2, 3, 3, Padding::valid())},
      {"7x7 same, 1 channel", {1, 1, 8, 8}, params(2, 7, 7, 1, 1, Padding::same())},
  };
}

TEST(Conv2dRef, GradientsMatchFiniteDifferences) {
  uint64_t seed = 100;
  for (const ConvCase& cc : gradcheck_cases()) {
    SCOPED_TRACE(cc.name);
    const Conv2dGeometry g = conv2d_geometry(cc.p, cc.input);
    std::vector<double> x = test::random_values(sz(g.input_size()), ++seed);
    std::vector<double> w = test::random_values(sz(g.filter_size()), ++seed);
    std::vector<double> b = test::random_values(sz(g.k), ++seed);
    const std::vector<double> dy = test::random_values(sz(g.output_size()), ++seed);

    // L = sum(y * dy): its gradient is what backward computes from dy.
    std::vector<double> y(sz(g.output_size()));
    const auto loss = [&] {
      ref::conv2d_forward<double>(g, x.data(), w.data(), b.data(), y.data());
      return test::dot(y, dy);
    };
    std::vector<double> dx = poisoned<double>(x.size()), dw = poisoned<double>(w.size()),
                        db = poisoned<double>(b.size());
    ref::conv2d_backward_data<double>(g, dy.data(), w.data(), dx.data());
    ref::conv2d_backward_filter<double>(g, x.data(), dy.data(), dw.data(), db.data());

    EXPECT_TRUE(test::gradients_match("dx", dx, test::numeric_gradient(x, loss)));
    EXPECT_TRUE(test::gradients_match("dw", dw, test::numeric_gradient(w, loss)));
    EXPECT_TRUE(test::gradients_match("db", db, test::numeric_gradient(b, loss)));
  }
}

TEST(Conv2dRef, NullBiasMeansNoBias) {
  const Conv2dGeometry g = conv2d_geometry(params(3, 3, 3, 1, 1, Padding::same()), {2, 2, 5, 5});
  const std::vector<double> x = test::random_values(sz(g.input_size()), 1);
  const std::vector<double> w = test::random_values(sz(g.filter_size()), 2);
  const std::vector<double> zero(sz(g.k), 0.0);
  std::vector<double> y1 = poisoned<double>(sz(g.output_size())), y2 = y1;
  ref::conv2d_forward<double>(g, x.data(), w.data(), nullptr, y1.data());
  ref::conv2d_forward<double>(g, x.data(), w.data(), zero.data(), y2.data());
  EXPECT_TRUE(test::all_equal("no bias", y1, y2));
  // Without db the filter gradient is what it is with one.
  std::vector<double> dw = poisoned<double>(w.size()), dw_with = poisoned<double>(w.size());
  std::vector<double> db = poisoned<double>(size_t(g.k));
  ref::conv2d_backward_filter<double>(g, x.data(), y1.data(), dw.data(), nullptr);
  ref::conv2d_backward_filter<double>(g, x.data(), y1.data(), dw_with.data(), db.data());
  EXPECT_TRUE(test::all_equal("dw without db", dw, dw_with));
}

// ---------------------------------------------------------------------------------------
// The BLAS path against the reference.

// Everything one comparison needs: float inputs, and the double reference run on the
// same values and on their magnitudes (which bounds the rounding of any summation order).
struct BlasRun {
  Conv2dGeometry g;
  std::vector<float> x, w, b, dy;
  std::vector<float> y, dx, dw, db;  // blas
};

BlasRun run_blas(const Conv2dGeometry& g, std::vector<float> x, std::vector<float> w,
                 std::vector<float> b, std::vector<float> dy, int threads = 1) {
  BlasRun r{g, std::move(x), std::move(w), std::move(b), std::move(dy), {}, {}, {}, {}};
  r.y = poisoned<float>(sz(g.output_size()));
  r.dx = poisoned<float>(sz(g.input_size()));
  r.dw = poisoned<float>(sz(g.filter_size()));
  r.db = poisoned<float>(sz(g.k));
  // The workspace starts as NaN too: im2col must write every element it reads back, and
  // each slice its partial filter gradient.
  std::vector<float> ws = poisoned<float>(blas::conv2d_workspace_elements(g, threads));
  blas::conv2d_forward(g, r.x.data(), r.w.data(), r.b.data(), r.y.data(), ws.data(), threads);
  ws = poisoned<float>(ws.size());
  blas::conv2d_backward_data(g, r.dy.data(), r.w.data(), r.dx.data(), ws.data(), threads);
  ws = poisoned<float>(ws.size());
  blas::conv2d_backward_filter(g, r.x.data(), r.dy.data(), r.dw.data(), r.db.data(), ws.data(),
                               threads);
  return r;
}

// Bound on the float rounding of a sum of `length` products with magnitudes summing to
// `mag`: length * 2^-23 * mag (twice the classical gamma_length bound).
std::vector<double> rounding_bounds(const std::vector<double>& mag, int64_t length) {
  std::vector<double> bound(mag.size());
  for (size_t i = 0; i < mag.size(); ++i)
    bound[i] = static_cast<double>(length + 1) * std::ldexp(1.0, -23) * mag[i];
  return bound;
}

void expect_blas_matches_ref(const BlasRun& r) {
  const Conv2dGeometry& g = r.g;
  const std::vector<double> x = cast_all<double>(r.x), w = cast_all<double>(r.w),
                            b = cast_all<double>(r.b), dy = cast_all<double>(r.dy);
  const std::vector<double> ax = test::abs_all(x), aw = test::abs_all(w), ab = test::abs_all(b),
                            ady = test::abs_all(dy);
  std::vector<double> y(r.y.size()), dx(r.dx.size()), dw(r.dw.size()), db(r.db.size());
  std::vector<double> my(y.size()), mdx(dx.size()), mdw(dw.size()), mdb(db.size());
  ref::conv2d_forward<double>(g, x.data(), w.data(), b.data(), y.data());
  ref::conv2d_forward<double>(g, ax.data(), aw.data(), ab.data(), my.data());
  ref::conv2d_backward_data<double>(g, dy.data(), w.data(), dx.data());
  ref::conv2d_backward_data<double>(g, ady.data(), aw.data(), mdx.data());
  ref::conv2d_backward_filter<double>(g, x.data(), dy.data(), dw.data(), db.data());
  ref::conv2d_backward_filter<double>(g, ax.data(), ady.data(), mdw.data(), mdb.data());

  const int64_t crs = static_cast<int64_t>(g.c) * g.r * g.s;
  const int64_t npq = static_cast<int64_t>(g.n) * g.p * g.q;
  EXPECT_TRUE(test::within_bounds("y", r.y, y, rounding_bounds(my, crs + 1)));
  EXPECT_TRUE(test::within_bounds("dx", r.dx, dx,
                                  rounding_bounds(mdx, g.k + static_cast<int64_t>(g.r) * g.s)));
  EXPECT_TRUE(test::within_bounds("dw", r.dw, dw, rounding_bounds(mdw, npq + g.n)));
  EXPECT_TRUE(test::within_bounds("db", r.db, db, rounding_bounds(mdb, 1)));
}

std::vector<Conv2dGeometry> sweep_geometries() {
  std::vector<Conv2dGeometry> out;
  const int channel_pairs[][2] = {{1, 3}, {3, 17}, {17, 1}};  // (input c, filters k)
  const int sizes[][2] = {{9, 11}, {5, 4}};
  for (int batch : {1, 3})
    for (const auto& size : sizes)
      for (int kernel : {1, 3, 5, 7})
        for (int stride : {1, 2})
          for (bool same : {true, false})
            for (const auto& ck : channel_pairs) {
              const Conv2dParams p = params(ck[1], kernel, kernel, stride, stride,
                                            same ? Padding::same() : Padding::valid());
              const Shape input = {batch, ck[0], size[0], size[1]};
              if (!same && (kernel > size[0] || kernel > size[1])) continue;
              out.push_back(conv2d_geometry(p, input));
            }
  // Dilation, non-square kernels, explicit and asymmetric padding.
  out.push_back(conv2d_geometry(params(5, 3, 3, 1, 1, Padding::same(), 2, 2), {3, 3, 9, 10}));
  out.push_back(conv2d_geometry(params(5, 3, 2, 2, 1, Padding::valid(), 2, 3), {1, 2, 11, 9}));
  out.push_back(conv2d_geometry(params(4, 2, 5, 2, 3, Padding::same()), {3, 3, 8, 13}));
  out.push_back(
      conv2d_geometry(params(4, 3, 3, 1, 2, Padding::explicit_(2, 0, 1, 3)), {2, 3, 7, 6}));
  out.push_back(conv2d_geometry(params(6, 4, 4, 1, 1, Padding::same()), {2, 3, 6, 7}));
  return out;
}

TEST(Conv2dBlas, MatchesReferenceOverShapeSweep) {
  uint64_t seed = 1000;
  int cases = 0;
  for (const Conv2dGeometry& g : sweep_geometries()) {
    SCOPED_TRACE(describe(g));
    seed += 4;
    const BlasRun r = run_blas(g, cast_all<float>(test::random_values(sz(g.input_size()), seed)),
                               cast_all<float>(test::random_values(sz(g.filter_size()), seed + 1)),
                               cast_all<float>(test::random_values(sz(g.k), seed + 2)),
                               cast_all<float>(test::random_values(sz(g.output_size()), seed + 3)));
    expect_blas_matches_ref(r);
    ++cases;
  }
  EXPECT_GT(cases, 150);
}

TEST(Conv2dBlas, ExactOnSmallIntegers) {
  uint64_t seed = 5000;
  for (const Conv2dGeometry& g : sweep_geometries()) {
    SCOPED_TRACE(describe(g));
    seed += 4;
    const BlasRun r = run_blas(g, test::small_integers(sz(g.input_size()), seed),
                               test::small_integers(sz(g.filter_size()), seed + 1),
                               test::small_integers(sz(g.k), seed + 2),
                               test::small_integers(sz(g.output_size()), seed + 3));
    std::vector<float> y(r.y.size()), dx(r.dx.size()), dw(r.dw.size()), db(r.db.size());
    ref::conv2d_forward<float>(g, r.x.data(), r.w.data(), r.b.data(), y.data());
    ref::conv2d_backward_data<float>(g, r.dy.data(), r.w.data(), dx.data());
    ref::conv2d_backward_filter<float>(g, r.x.data(), r.dy.data(), dw.data(), db.data());
    EXPECT_TRUE(test::all_equal("y", r.y, y));
    EXPECT_TRUE(test::all_equal("dx", r.dx, dx));
    EXPECT_TRUE(test::all_equal("dw", r.dw, dw));
    EXPECT_TRUE(test::all_equal("db", r.db, db));
  }
}

TEST(Conv2dBlas, OneImageOneByOneWithoutWorkspace) {
  // A 1x1, stride-1, unpadded convolution reads the image as its column matrix, and one
  // image is one slice of the filter gradient: no workspace at all.
  const Conv2dGeometry g = conv2d_geometry(params(4, 1, 1, 1, 1, Padding::same()), {1, 5, 4, 6});
  EXPECT_EQ(blas::conv2d_workspace_elements(g, 1), 0u);
  const std::vector<float> x = test::small_integers(sz(g.input_size()), 1);
  const std::vector<float> w = test::small_integers(sz(g.filter_size()), 2);
  const std::vector<float> dy = test::small_integers(sz(g.output_size()), 3);
  std::vector<float> y = poisoned<float>(sz(g.output_size())), y_ref = y;
  blas::conv2d_forward(g, x.data(), w.data(), nullptr, y.data(), nullptr);
  ref::conv2d_forward<float>(g, x.data(), w.data(), nullptr, y_ref.data());
  EXPECT_TRUE(test::all_equal("y", y, y_ref));
  std::vector<float> dx = poisoned<float>(x.size()), dx_ref = dx;
  blas::conv2d_backward_data(g, dy.data(), w.data(), dx.data(), nullptr);
  ref::conv2d_backward_data<float>(g, dy.data(), w.data(), dx_ref.data());
  EXPECT_TRUE(test::all_equal("dx", dx, dx_ref));
  std::vector<float> dw = poisoned<float>(w.size()), dw_ref = dw;
  blas::conv2d_backward_filter(g, x.data(), dy.data(), dw.data(), nullptr, nullptr);
  ref::conv2d_backward_filter<float>(g, x.data(), dy.data(), dw_ref.data(), nullptr);
  EXPECT_TRUE(test::all_equal("dw", dw, dw_ref));
}

// Batches that leave the filter gradient's slices unequal, or fewer images than slices.
std::vector<Conv2dGeometry> threaded_geometries() {
  return {conv2d_geometry(params(17, 3, 3, 1, 1, Padding::same()), {13, 3, 9, 11}),
          conv2d_geometry(params(5, 7, 7, 2, 2, Padding::same()), {21, 1, 14, 13}),
          conv2d_geometry(params(6, 1, 1, 1, 1, Padding::valid()), {9, 4, 5, 5}),
          conv2d_geometry(params(3, 5, 5, 1, 1, Padding::valid()), {5, 2, 8, 9}),
          conv2d_geometry(params(4, 3, 3, 2, 2, Padding::same()), {1, 3, 7, 7})};
}

TEST(Conv2dBlas, SameBitsForAnyThreadCount) {
  uint64_t seed = 7000;
  for (const Conv2dGeometry& g : threaded_geometries()) {
    SCOPED_TRACE(describe(g));
    seed += 4;
    const auto x = cast_all<float>(test::random_values(sz(g.input_size()), seed));
    const auto w = cast_all<float>(test::random_values(sz(g.filter_size()), seed + 1));
    const auto b = cast_all<float>(test::random_values(sz(g.k), seed + 2));
    const auto dy = cast_all<float>(test::random_values(sz(g.output_size()), seed + 3));
    const BlasRun one = run_blas(g, x, w, b, dy, 1);
    expect_blas_matches_ref(one);
    // No more column matrices than images, however many threads are asked for.
    EXPECT_EQ(blas::conv2d_workspace_elements(g, 1024), blas::conv2d_workspace_elements(g, g.n));
    for (int threads : {2, 3, 8, 16}) {
      SCOPED_TRACE(threads);
      const BlasRun many = run_blas(g, x, w, b, dy, threads);
      EXPECT_TRUE(test::all_equal("y", many.y, one.y));
      EXPECT_TRUE(test::all_equal("dx", many.dx, one.dx));
      EXPECT_TRUE(test::all_equal("dw", many.dw, one.dw));
      EXPECT_TRUE(test::all_equal("db", many.db, one.db));
    }
  }
}

TEST(Conv2dBlas, EmptyBatchAssignsZeroFilterGradients) {
  const Conv2dGeometry g = conv2d_geometry(params(2, 3, 3, 1, 1, Padding::same()), {0, 2, 5, 5});
  std::vector<float> dw = poisoned<float>(sz(g.filter_size())), db = poisoned<float>(2);
  blas::conv2d_backward_filter(g, nullptr, nullptr, dw.data(), db.data(), nullptr, 3);
  EXPECT_TRUE(test::all_equal("dw", dw, std::vector<float>(dw.size(), 0.0f)));
  EXPECT_TRUE(test::all_equal("db", db, std::vector<float>(2, 0.0f)));
  std::vector<float> rdw = poisoned<float>(dw.size()), rdb = poisoned<float>(2);
  ref::conv2d_backward_filter<float>(g, nullptr, nullptr, rdw.data(), rdb.data());
  EXPECT_TRUE(test::all_equal("ref dw", rdw, dw));
  EXPECT_TRUE(test::all_equal("ref db", rdb, db));
}

}  // namespace
}  // namespace cnn
