// Dropout kernels against cnn::ref::dropout_*: the masks come from the same counter-based
// draws, so mask, output and gradient are compared bit for bit. Outputs start as NaN
// poison.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "cnnk/dropout.h"
#include "engine/ops/dropout/dropout.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::DropoutGeometry;
using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// The kernel draws from StepSeed{seed, salt, step}.value(); the reference takes that value.
void check_against_reference(const DropoutGeometry& g, float rate, uint64_t seed) {
  const cnnk::StepSeed step_seed{seed, 0x5A17, static_cast<int64_t>(seed % 1000)};
  SCOPED_TRACE(::testing::Message()
               << "n " << g.n << " c " << g.c << " spatial " << g.spatial
               << (g.per_channel ? " per channel" : "") << " rate " << rate << " seed " << seed);
  const std::vector<float> x =
      test::cast_all<float>(test::random_values(sz(g.size()), seed + 1, -2.0, 2.0));
  const std::vector<float> dy =
      test::cast_all<float>(test::random_values(sz(g.size()), seed + 2, -1.0, 1.0));
  std::vector<float> y(x.size()), mask(x.size()), dx(x.size());
  ref::dropout_forward<float>(g, rate, step_seed.value(), x.data(), y.data(), mask.data());
  ref::dropout_backward<float>(g, mask.data(), dy.data(), dx.data());

  DeviceBuffer<float> d_x(x), d_dy(dy), d_y(y.size()), d_mask(mask.size()), d_dx(dx.size());
  ASSERT_TRUE(d_x.ok() && d_dy.ok() && d_y.ok() && d_mask.ok() && d_dx.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(d_mask.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dx.fill_bytes(0xFF));
  CNN_CUDA_OK(
      cnnk::dropout_forward(g, rate, step_seed, d_x.get(), d_y.get(), d_mask.get(), nullptr));
  CNN_CUDA_OK(cnnk::dropout_backward(g, d_mask.get(), d_dy.get(), d_dx.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("mask", d_mask.download(), mask));
  EXPECT_TRUE(test::all_equal("y", d_y.download(), y));
  EXPECT_TRUE(test::all_equal("dx", d_dx.download(), dx));

  // In place: dx aliasing dy.
  CNN_CUDA_OK(cnnk::dropout_backward(g, d_mask.get(), d_dy.get(), d_dy.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("dx in place", d_dy.download(), dx));
}

TEST(DropoutKernel, MasksMatchReferenceBitForBit) {
  CNN_REQUIRE_GPU();
  const std::vector<DropoutGeometry> shapes = {{1, 1, 1},   {3, 17, 25}, {2, 64, 49},
                                               {5, 130, 1}, {1, 3, 784}, {7, 1, 9}};
  uint64_t seed = 42;
  for (const bool per_channel : {false, true})
    for (DropoutGeometry g : shapes) {
      g.per_channel = per_channel;
      for (const float rate : {0.0f, 0.25f, 0.5f, 1.0f / 3.0f, 0.9f}) {
        seed = seed * 31 + 7;
        check_against_reference(g, rate, seed);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
}

// Spatial dropout keeps or drops whole feature maps, and the share kept is about 1 - rate.
TEST(DropoutKernel, SpatialDropoutDropsWholeMaps) {
  CNN_REQUIRE_GPU();
  const DropoutGeometry g{16, 64, 49, true};
  const float rate = 0.3f;
  DeviceBuffer<float> d_x(std::vector<float>(sz(g.size()), 1.f)), d_y(sz(g.size())),
      d_mask(sz(g.size()));
  ASSERT_TRUE(d_x.ok() && d_y.ok() && d_mask.ok());
  CNN_CUDA_OK(
      cnnk::dropout_forward(g, rate, {2024, 0, 0}, d_x.get(), d_y.get(), d_mask.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  const std::vector<float> mask = d_mask.download();
  ASSERT_EQ(mask.size(), sz(g.size()));
  int kept = 0;
  for (int64_t map = 0; map < int64_t{g.n} * g.c; ++map) {
    const float first = mask[sz(map * g.spatial)];
    for (int64_t s = 1; s < g.spatial; ++s) ASSERT_EQ(mask[sz(map * g.spatial + s)], first);
    EXPECT_TRUE(first == 0.f || first == 1.f / (1.f - rate));
    kept += first != 0.f ? 1 : 0;
  }
  const double share = static_cast<double>(kept) / (g.n * g.c);
  EXPECT_NEAR(share, 0.7, 0.06);
}

// A rate outside [0, 1) is refused; an empty tensor launches nothing (no device needed).
TEST(DropoutKernel, LauncherContract) {
  const DropoutGeometry g{2, 3, 4, false};
  for (const float bad : {-0.1f, 1.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()})
    EXPECT_EQ(cnnk::dropout_forward(g, bad, {1, 0, 0}, nullptr, nullptr, nullptr, nullptr),
              cudaErrorInvalidValue)
        << "rate " << bad;
  const DropoutGeometry empty{0, 3, 4, false};
  EXPECT_EQ(cnnk::dropout_forward(empty, 0.5f, {1, 0, 0}, nullptr, nullptr, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::dropout_backward(empty, nullptr, nullptr, nullptr, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace cnn
