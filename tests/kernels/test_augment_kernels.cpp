// The augmentation kernel against cnn::ref::augment: both take their draws from
// cnnk::augment_draw and only copy or zero values, so outputs are compared bit for bit.
// Outputs start as NaN poison, so an element the kernel skipped shows.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cnnk/augment.h"
#include "engine/ops/augment/augment.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::AugmentGeometry;
using test::DeviceBuffer;

void check_against_reference(const AugmentGeometry& g, uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "n " << g.n << " c " << g.c << " h " << g.h << " w " << g.w << " flip " << g.flip
               << " shift " << g.max_shift << " seed " << seed);
  const std::vector<float> x = test::cast_all<float>(
      test::random_values(static_cast<size_t>(g.size()), seed + 3, -1.0, 1.0));
  std::vector<float> y(x.size());
  const cnnk::StepSeed step_seed{seed, 0xA06, static_cast<int64_t>(seed % 997)};
  ref::augment(g, step_seed.value(), x.data(), y.data());

  DeviceBuffer<float> d_x(x), d_y(x.size());
  ASSERT_TRUE(d_x.ok() && d_y.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::augment(g, step_seed, d_x.get(), d_y.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("augmented", d_y.download(), y));
}

AugmentGeometry geometry(int n, int c, int h, int w, bool flip, int shift) {
  AugmentGeometry g;
  g.n = n;
  g.c = c;
  g.h = h;
  g.w = w;
  g.flip = flip;
  g.max_shift = shift;
  return g;
}

TEST(AugmentKernel, MatchesReferenceBitForBit) {
  CNN_REQUIRE_GPU();
  const std::vector<AugmentGeometry> shapes = {
      geometry(1, 1, 1, 1, true, 0),  geometry(32, 1, 28, 28, true, 2),
      geometry(7, 3, 9, 13, true, 4), geometry(5, 2, 28, 28, false, 3),
      geometry(3, 4, 5, 5, true, 0),  geometry(300, 1, 28, 28, true, 1)};
  uint64_t seed = 11;
  for (const AugmentGeometry& g : shapes) {
    seed = seed * 131 + 5;
    check_against_reference(g, seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(AugmentKernel, RefusesInPlaceAndAcceptsAnEmptyBatch) {
  CNN_REQUIRE_GPU();
  DeviceBuffer<float> d(16);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(cnnk::augment(geometry(1, 1, 4, 4, true, 1), {1, 0, 0}, d.get(), d.get(), nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::augment(geometry(0, 1, 4, 4, true, 1), {1, 0, 0}, nullptr, nullptr, nullptr),
            cudaSuccess);
}

}  // namespace
}  // namespace cnn
