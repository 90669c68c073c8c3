// Small device ops against cnn::ref (add, accumulate, channel_copy) or against plain host
// loops where the reference has no twin (fill, gather_rows). All are exact. Outputs start
// as NaN poison. The bias kernels have their own suite (test_bias_kernels.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnk/tensor_ops.h"
#include "engine/ops/tensor_ops/tensor_ops.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

std::vector<float> random_floats(int64_t count, uint64_t seed) {
  return test::cast_all<float>(test::random_values(sz(count), seed, -3.0, 3.0));
}

// Sizes around a block, odd, and large enough for several grid-stride rounds.
const std::vector<int64_t> kSizes = {1, 255, 257, 4097, 3'000'001};

TEST(TensorOpsKernel, FillAssignsEveryElement) {
  CNN_REQUIRE_GPU();
  for (const int64_t size : kSizes) {
    SCOPED_TRACE(::testing::Message() << "size " << size);
    DeviceBuffer<float> d_y(sz(size));
    ASSERT_TRUE(d_y.ok());
    CNN_CUDA_OK(d_y.fill_bytes(0xFF));
    CNN_CUDA_OK(cnnk::fill(size, -2.5f, d_y.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("y", d_y.download(), std::vector<float>(sz(size), -2.5f)));
  }
}

TEST(TensorOpsKernel, AddAndAccumulateMatchReference) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 5100;
  for (const int64_t size : kSizes) {
    SCOPED_TRACE(::testing::Message() << "size " << size);
    seed += 3;
    const std::vector<float> a = random_floats(size, seed), b = random_floats(size, seed + 1);
    std::vector<float> sum(sz(size)), acc = b;
    ref::add_forward<float>(size, a.data(), b.data(), sum.data());
    ref::accumulate<float>(size, a.data(), acc.data());

    DeviceBuffer<float> d_a(a), d_b(b), d_y(sz(size));
    ASSERT_TRUE(d_a.ok() && d_b.ok() && d_y.ok());
    CNN_CUDA_OK(d_y.fill_bytes(0xFF));
    CNN_CUDA_OK(cnnk::add(size, d_a.get(), d_b.get(), d_y.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("add", d_y.download(), sum));
    // y aliasing a.
    CNN_CUDA_OK(cnnk::add(size, d_a.get(), d_b.get(), d_a.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("add in place", d_a.download(), sum));
    // dst += src.
    CNN_CUDA_OK(d_a.upload(a));
    CNN_CUDA_OK(cnnk::accumulate(size, d_a.get(), d_b.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("accumulate", d_b.download(), acc));
  }
}

// Concatenation both ways: inputs copied into their slices of the output, and slices of
// the output's gradient copied back out. Channels outside the slice stay untouched.
TEST(TensorOpsKernel, ChannelCopyMatchesReference) {
  CNN_REQUIRE_GPU();
  struct Case {
    int64_t n, spatial, src_c, src_offset, dst_c, dst_offset, count;
  };
  const std::vector<Case> cases = {{1, 1, 1, 0, 1, 0, 1},     {3, 49, 3, 0, 20, 17, 3},
                                   {2, 25, 17, 0, 20, 3, 17}, {1, 9, 130, 0, 194, 64, 130},
                                   {5, 7, 64, 13, 64, 13, 1}, {3, 784, 20, 5, 3, 0, 3}};
  uint64_t seed = 5300;
  for (const Case& k : cases) {
    cnnk::ChannelCopy g;
    g.n = k.n;
    g.spatial = k.spatial;
    g.src_c = k.src_c;
    g.src_offset = k.src_offset;
    g.dst_c = k.dst_c;
    g.dst_offset = k.dst_offset;
    g.count = k.count;
    SCOPED_TRACE(::testing::Message() << "n " << g.n << " spatial " << g.spatial << " src "
                                      << g.src_c << "@" << g.src_offset << " dst " << g.dst_c << "@"
                                      << g.dst_offset << " count " << g.count);
    seed += 2;
    const std::vector<float> src = random_floats(g.n * g.src_c * g.spatial, seed);
    const std::vector<float> dst0 = random_floats(g.n * g.dst_c * g.spatial, seed + 1);
    ChannelCopyGeometry rg;
    rg.n = g.n;
    rg.spatial = g.spatial;
    rg.src_c = g.src_c;
    rg.src_offset = g.src_offset;
    rg.dst_c = g.dst_c;
    rg.dst_offset = g.dst_offset;
    rg.count = g.count;
    std::vector<float> want = dst0;
    ref::channel_copy<float>(rg, src.data(), want.data());

    DeviceBuffer<float> d_src(src), d_dst(dst0);
    ASSERT_TRUE(d_src.ok() && d_dst.ok());
    CNN_CUDA_OK(cnnk::channel_copy(g, d_src.get(), d_dst.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("dst", d_dst.download(), want));
  }
}

TEST(TensorOpsKernel, GatherRowsCopiesTheIndexedRows) {
  CNN_REQUIRE_GPU();
  const int64_t rows = 1000;
  uint64_t seed = 5500;
  for (const int64_t row_len : {int64_t{1}, int64_t{10}, int64_t{784}, int64_t{257}})
    for (const int64_t count : {int64_t{1}, int64_t{33}, int64_t{256}}) {
      SCOPED_TRACE(::testing::Message() << "row_len " << row_len << " count " << count);
      seed += 2;
      const std::vector<float> src = random_floats(rows * row_len, seed);
      std::vector<int32_t> indices(sz(count));
      for (int64_t i = 0; i < count; ++i)  // repeats allowed, last row included
        indices[sz(i)] = i == 0 ? static_cast<int32_t>(rows - 1)
                                : static_cast<int32_t>(cnnk::random_bits(seed + 1, sz(i)) %
                                                       static_cast<uint64_t>(rows));
      std::vector<float> want(sz(count * row_len));
      for (int64_t i = 0; i < count; ++i)
        for (int64_t k = 0; k < row_len; ++k)
          want[sz(i * row_len + k)] = src[sz(int64_t{indices[sz(i)]} * row_len + k)];

      DeviceBuffer<float> d_src(src), d_dst(want.size());
      DeviceBuffer<int32_t> d_idx(indices);
      ASSERT_TRUE(d_src.ok() && d_dst.ok() && d_idx.ok());
      CNN_CUDA_OK(d_dst.fill_bytes(0xFF));
      CNN_CUDA_OK(
          cnnk::gather_rows(d_src.get(), row_len, d_idx.get(), count, d_dst.get(), nullptr));
      CNN_CUDA_OK(test::sync_status());
      EXPECT_TRUE(test::all_equal("dst", d_dst.download(), want));
    }
}

// Empty problems launch nothing and succeed, even with null pointers (no device needed).
TEST(TensorOpsKernel, EmptyProblemsLaunchNothing) {
  EXPECT_EQ(cnnk::fill(0, 1.f, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::add(0, nullptr, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::accumulate(0, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::channel_copy(cnnk::ChannelCopy{}, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::gather_rows(nullptr, 10, nullptr, 0, nullptr, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace cnn
