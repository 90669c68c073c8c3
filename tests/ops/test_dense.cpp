// Dense: gradient checks of the reference, and the BLAS path against it.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/dense/dense.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::DenseGeometry;
using test::cast_all;
using test::poisoned;

size_t sz(int64_t n) { return static_cast<size_t>(n); }
size_t x_size(const DenseGeometry& g) { return sz(static_cast<int64_t>(g.n) * g.in); }
size_t y_size(const DenseGeometry& g) { return sz(static_cast<int64_t>(g.n) * g.out); }
size_t w_size(const DenseGeometry& g) { return sz(static_cast<int64_t>(g.out) * g.in); }

TEST(DenseRef, SmallExampleByHand) {
  // x = [1 2; 3 4], W = [1 0; 0 1; 1 1], b = [10 20 30]
  const DenseGeometry g{2, 2, 3};
  const std::vector<double> x = {1, 2, 3, 4}, w = {1, 0, 0, 1, 1, 1}, b = {10, 20, 30};
  std::vector<double> y = poisoned<double>(6);
  ref::dense_forward<double>(g, x.data(), w.data(), b.data(), y.data());
  EXPECT_TRUE(test::all_equal("y", y, std::vector<double>{11, 22, 33, 13, 24, 37}));
}

TEST(DenseRef, GradientsMatchFiniteDifferences) {
  uint64_t seed = 200;
  for (const DenseGeometry& g : {DenseGeometry{1, 5, 3}, DenseGeometry{4, 7, 6},
                                 DenseGeometry{3, 1, 1}, DenseGeometry{5, 13, 2}}) {
    SCOPED_TRACE(testing::Message() << "n " << g.n << " in " << g.in << " out " << g.out);
    seed += 4;
    std::vector<double> x = test::random_values(x_size(g), seed);
    std::vector<double> w = test::random_values(w_size(g), seed + 1);
    std::vector<double> b = test::random_values(sz(g.out), seed + 2);
    const std::vector<double> dy = test::random_values(y_size(g), seed + 3);
    std::vector<double> y(y_size(g));
    const auto loss = [&] {
      ref::dense_forward<double>(g, x.data(), w.data(), b.data(), y.data());
      return test::dot(y, dy);
    };
    std::vector<double> dx = poisoned<double>(x.size()), dw = poisoned<double>(w.size()),
                        db = poisoned<double>(b.size());
    ref::dense_backward_data<double>(g, dy.data(), w.data(), dx.data());
    ref::dense_backward_weights<double>(g, x.data(), dy.data(), dw.data(), db.data());
    EXPECT_TRUE(test::gradients_match("dx", dx, test::numeric_gradient(x, loss)));
    EXPECT_TRUE(test::gradients_match("dw", dw, test::numeric_gradient(w, loss)));
    EXPECT_TRUE(test::gradients_match("db", db, test::numeric_gradient(b, loss)));
  }
}

// Bound on the float rounding of a sum of `length` products whose magnitudes sum to
// mag[i]: (length + 1) * 2^-23 * mag[i].
std::vector<double> rounding_bounds(const std::vector<double>& mag, int64_t length) {
  std::vector<double> bound(mag.size());
  for (size_t i = 0; i < mag.size(); ++i)
    bound[i] = static_cast<double>(length + 1) * std::ldexp(1.0, -23) * mag[i];
  return bound;
}

const DenseGeometry kSweep[] = {{1, 1, 1},     {1, 784, 10}, {3, 17, 5},  {7, 800, 32},
                                {32, 128, 64}, {5, 3, 129},  {33, 65, 17}};

TEST(DenseBlas, MatchesReferenceWithinRoundingBounds) {
  uint64_t seed = 300;
  for (const DenseGeometry& g : kSweep) {
    SCOPED_TRACE(testing::Message() << "n " << g.n << " in " << g.in << " out " << g.out);
    seed += 4;
    const std::vector<float> x = cast_all<float>(test::random_values(x_size(g), seed));
    const std::vector<float> w = cast_all<float>(test::random_values(w_size(g), seed + 1));
    const std::vector<float> b = cast_all<float>(test::random_values(sz(g.out), seed + 2));
    const std::vector<float> dy = cast_all<float>(test::random_values(y_size(g), seed + 3));
    std::vector<float> y = poisoned<float>(y_size(g)), dx = poisoned<float>(x.size()),
                       dw = poisoned<float>(w.size()), db = poisoned<float>(b.size());
    blas::dense_forward(g, x.data(), w.data(), b.data(), y.data());
    blas::dense_backward_data(g, dy.data(), w.data(), dx.data());
    blas::dense_backward_weights(g, x.data(), dy.data(), dw.data(), db.data());

    const std::vector<double> xd = cast_all<double>(x), wd = cast_all<double>(w),
                              bd = cast_all<double>(b), dyd = cast_all<double>(dy);
    const std::vector<double> ax = test::abs_all(xd), aw = test::abs_all(wd),
                              ab = test::abs_all(bd), ady = test::abs_all(dyd);
    std::vector<double> ry(y.size()), rdx(dx.size()), rdw(dw.size()), rdb(db.size());
    std::vector<double> my(y.size()), mdx(dx.size()), mdw(dw.size()), mdb(db.size());
    ref::dense_forward<double>(g, xd.data(), wd.data(), bd.data(), ry.data());
    ref::dense_forward<double>(g, ax.data(), aw.data(), ab.data(), my.data());
    ref::dense_backward_data<double>(g, dyd.data(), wd.data(), rdx.data());
    ref::dense_backward_data<double>(g, ady.data(), aw.data(), mdx.data());
    ref::dense_backward_weights<double>(g, xd.data(), dyd.data(), rdw.data(), rdb.data());
    ref::dense_backward_weights<double>(g, ax.data(), ady.data(), mdw.data(), mdb.data());
    EXPECT_TRUE(test::within_bounds("y", y, ry, rounding_bounds(my, g.in + 1)));
    EXPECT_TRUE(test::within_bounds("dx", dx, rdx, rounding_bounds(mdx, g.out)));
    EXPECT_TRUE(test::within_bounds("dw", dw, rdw, rounding_bounds(mdw, g.n)));
    EXPECT_TRUE(test::within_bounds("db", db, rdb, rounding_bounds(mdb, 1)));
  }
}

TEST(DenseBlas, ExactOnSmallIntegers) {
  uint64_t seed = 400;
  for (const DenseGeometry& g : kSweep) {
    SCOPED_TRACE(testing::Message() << "n " << g.n << " in " << g.in << " out " << g.out);
    seed += 4;
    const std::vector<float> x = test::small_integers(x_size(g), seed);
    const std::vector<float> w = test::small_integers(w_size(g), seed + 1);
    const std::vector<float> b = test::small_integers(sz(g.out), seed + 2);
    const std::vector<float> dy = test::small_integers(y_size(g), seed + 3);
    std::vector<float> y = poisoned<float>(y_size(g)), dx = poisoned<float>(x.size()),
                       dw = poisoned<float>(w.size()), db = poisoned<float>(b.size());
    std::vector<float> ry = y, rdx = dx, rdw = dw, rdb = db;
    blas::dense_forward(g, x.data(), w.data(), b.data(), y.data());
    blas::dense_backward_data(g, dy.data(), w.data(), dx.data());
    blas::dense_backward_weights(g, x.data(), dy.data(), dw.data(), db.data());
    ref::dense_forward<float>(g, x.data(), w.data(), b.data(), ry.data());
    ref::dense_backward_data<float>(g, dy.data(), w.data(), rdx.data());
    ref::dense_backward_weights<float>(g, x.data(), dy.data(), rdw.data(), rdb.data());
    EXPECT_TRUE(test::all_equal("y", y, ry));
    EXPECT_TRUE(test::all_equal("dx", dx, rdx));
    EXPECT_TRUE(test::all_equal("dw", dw, rdw));
    EXPECT_TRUE(test::all_equal("db", db, rdb));
  }
}

TEST(DenseBlas, NullBias) {
  const DenseGeometry g{3, 4, 5};
  const std::vector<float> x = test::small_integers(x_size(g), 1);
  const std::vector<float> w = test::small_integers(w_size(g), 2);
  std::vector<float> y = poisoned<float>(y_size(g)), ry = y;
  blas::dense_forward(g, x.data(), w.data(), nullptr, y.data());
  ref::dense_forward<float>(g, x.data(), w.data(), nullptr, ry.data());
  EXPECT_TRUE(test::all_equal("y", y, ry));
  std::vector<float> dw = poisoned<float>(w.size()), rdw = dw;
  blas::dense_backward_weights(g, x.data(), y.data(), dw.data(), nullptr);
  ref::dense_backward_weights<float>(g, x.data(), y.data(), rdw.data(), nullptr);
  EXPECT_TRUE(test::all_equal("dw", dw, rdw));
}

TEST(DenseBlas, EmptyBatchAssignsZeroWeightGradients) {
  const DenseGeometry g{0, 4, 3};
  std::vector<float> dw = poisoned<float>(w_size(g)), db = poisoned<float>(3);
  blas::dense_backward_weights(g, nullptr, nullptr, dw.data(), db.data());
  EXPECT_TRUE(test::all_equal("dw", dw, std::vector<float>(dw.size(), 0.0f)));
  EXPECT_TRUE(test::all_equal("db", db, std::vector<float>(3, 0.0f)));
}

}  // namespace
}  // namespace cnn
