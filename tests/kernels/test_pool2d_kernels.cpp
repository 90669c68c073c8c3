// Pooling kernels against cnn::ref::pool2d_*. Inputs and gradients are small integers:
// many ties (the first-maximum rule is exercised), and every sum, including the average's
// shares summed in double, is then computed exactly the same way on both sides, so the
// comparison is bit for bit. Outputs start as NaN poison.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnk/pool2d.h"
#include "engine/ops/pool2d/pool2d.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::Pool2dGeometry;
using cnnk::PoolMode;
using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Runs forward and backward on the device and compares both with the reference, bit for
// bit.
void check_against_reference(const Pool2dGeometry& g, const std::vector<float>& x,
                             const std::vector<float>& dy) {
  SCOPED_TRACE(describe(g));  // cnn::describe, from pool2d.h
  std::vector<float> want_y(sz(g.output_size())), want_dx(sz(g.input_size()));
  ref::pool2d_forward<float>(g, x.data(), want_y.data());
  ref::pool2d_backward<float>(g, x.data(), dy.data(), want_dx.data());

  DeviceBuffer<float> d_x(x), d_dy(dy), d_y(want_y.size()), d_dx(want_dx.size());
  ASSERT_TRUE(d_x.ok() && d_dy.ok() && d_y.ok() && d_dx.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dx.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::pool2d_forward(g, d_x.get(), d_y.get(), nullptr));
  CNN_CUDA_OK(cnnk::pool2d_backward(g, d_x.get(), d_dy.get(), d_dx.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("y", d_y.download(), want_y));
  EXPECT_TRUE(test::all_equal("dx", d_dx.download(), want_dx));
}

Pool2dParams params(PoolMode mode, int pool, int stride, Padding padding) {
  Pool2dParams p;
  p.mode = mode;
  p.pool_h = p.pool_w = pool;
  p.stride_h = p.stride_w = stride;
  p.padding = padding;
  return p;
}

TEST(Pool2dKernel, DesignExample) {
  CNN_REQUIRE_GPU();
  const Pool2dGeometry g =
      pool2d_geometry(params(PoolMode::Max, 2, 2, Padding::valid()), Shape{1, 1, 4, 4});
  const std::vector<float> x = {1, 1, 2, 4, 5, 6, 7, 8, 3, 2, 1, 0, 1, 2, 3, 4};
  DeviceBuffer<float> d_x(x), d_y(4);
  ASSERT_TRUE(d_x.ok() && d_y.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::pool2d_forward(g, d_x.get(), d_y.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("y", d_y.download(), std::vector<float>{6, 8, 3, 4}));
  check_against_reference(g, x, {10, 20, 30, 40});
}

// Every mode, pool size 2 and 3, stride 1, 2 and 3, "valid" and "same", over shapes with
// batch 1 and odd batches, odd and non-square maps and channel counts off any tile. Both
// backward kernels run: the gather where windows overlap (stride below the pool) or
// "same" pads the top, the cells where they cannot (2 and 3 with stride 3: inputs
// between the windows; 2 with stride 2 on odd maps: a last row and column outside every
// "valid" window, or clipped "same" windows).
TEST(Pool2dKernel, SweepMatchesReferenceExactly) {
  CNN_REQUIRE_GPU();
  const std::vector<Shape> shapes = {Shape{1, 1, 7, 7},   Shape{3, 3, 9, 8},
                                     Shape{2, 17, 5, 11}, Shape{1, 64, 14, 14},
                                     Shape{1, 130, 3, 5}, Shape{5, 1, 28, 28}};
  uint64_t seed = 9100;
  for (const PoolMode mode : {PoolMode::Max, PoolMode::Average})
    for (const int pool : {2, 3})
      for (const int stride : {1, 2, 3})
        for (const Padding& padding : {Padding::valid(), Padding::same()})
          for (const Shape& shape : shapes) {
            const Pool2dGeometry g = pool2d_geometry(params(mode, pool, stride, padding), shape);
            seed += 2;
            const std::vector<float> x = test::small_integers(sz(g.input_size()), seed, 2);
            const std::vector<float> dy = test::small_integers(sz(g.output_size()), seed + 1, 4);
            check_against_reference(g, x, dy);
            if (::testing::Test::HasFatalFailure()) return;
          }
}

// Explicit, asymmetric padding wider than half the window: windows hanging off every
// edge, some of them covering a single input.
TEST(Pool2dKernel, AsymmetricExplicitPadding) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 9300;
  for (const PoolMode mode : {PoolMode::Max, PoolMode::Average}) {
    Pool2dParams p = params(mode, 3, 2, Padding::explicit_(2, 1, 0, 1));
    p.pool_w = 2;
    p.stride_w = 1;
    const Pool2dGeometry g = pool2d_geometry(p, Shape{3, 5, 6, 7});
    seed += 2;
    check_against_reference(g, test::small_integers(sz(g.input_size()), seed, 2),
                            test::small_integers(sz(g.output_size()), seed + 1, 4));
  }
}

// Padding never wins a max: an all-negative input pooled with "same" padding keeps its
// negative values, and the gradient goes to real inputs only.
TEST(Pool2dKernel, PaddingNeverWinsAMax) {
  CNN_REQUIRE_GPU();
  const Pool2dGeometry g =
      pool2d_geometry(params(PoolMode::Max, 3, 2, Padding::same()), Shape{2, 3, 5, 5});
  std::vector<float> x = test::small_integers(sz(g.input_size()), 9400, 3);
  for (float& v : x) v = v - 5.f;  // in [-8, -2]
  DeviceBuffer<float> d_x(x), d_y(sz(g.output_size()));
  ASSERT_TRUE(d_x.ok() && d_y.ok());
  CNN_CUDA_OK(cnnk::pool2d_forward(g, d_x.get(), d_y.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  for (const float v : d_y.download()) EXPECT_LT(v, -1.f);
  check_against_reference(g, x, test::small_integers(sz(g.output_size()), 9401, 4));
}

// A gradient of -0 reaches dx as +0, as in the reference (which adds every share to a
// 0.0), in the gather (overlapping windows) and in the cells (windows apart), for both
// modes: the bits, not only the values, since 0 == -0.
TEST(Pool2dKernel, NegativeZeroGradientsArriveAsTheReferenceSums) {
  CNN_REQUIRE_GPU();
  for (const PoolMode mode : {PoolMode::Max, PoolMode::Average})
    for (const int stride : {1, 2}) {
      const Pool2dGeometry g =
          pool2d_geometry(params(mode, 2, stride, Padding::valid()), Shape{2, 3, 7, 6});
      SCOPED_TRACE(describe(g));
      const std::vector<float> x = test::small_integers(sz(g.input_size()), 9500 + stride, 2);
      const std::vector<float> dy(sz(g.output_size()), -0.0f);
      std::vector<float> want(sz(g.input_size()));
      ref::pool2d_backward<float>(g, x.data(), dy.data(), want.data());
      DeviceBuffer<float> d_x(x), d_dy(dy), d_dx(want.size());
      ASSERT_TRUE(d_x.ok() && d_dy.ok() && d_dx.ok());
      CNN_CUDA_OK(d_dx.fill_bytes(0xFF));
      CNN_CUDA_OK(cnnk::pool2d_backward(g, d_x.get(), d_dy.get(), d_dx.get(), nullptr));
      CNN_CUDA_OK(test::sync_status());
      const std::vector<float> got = d_dx.download();
      ASSERT_EQ(got.size(), want.size());
      size_t differ = 0;
      for (size_t i = 0; i < got.size(); ++i)
        differ += std::signbit(got[i]) != std::signbit(want[i]);
      EXPECT_EQ(differ, 0u) << "elements whose sign bit differs from the reference's";
      EXPECT_FALSE(std::signbit(want[0])) << "the reference sums into +0";
    }
}

// Empty problems launch nothing and succeed, even with null pointers (no device needed).
TEST(Pool2dKernel, EmptyProblemLaunchesNothing) {
  Pool2dGeometry g;
  EXPECT_EQ(cnnk::pool2d_forward(g, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::pool2d_backward(g, nullptr, nullptr, nullptr, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace cnn
