// Small device ops against cnn::ref (add, accumulate, channel_copy) or against plain host
// loops where the reference has no twin (fill, gather_rows, bias_add, bias_backward).
// All but the bias reduction are exact; bias_backward is exact on small integers and
// bounded by its reduction length on random values. Outputs start as NaN poison.
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

struct BiasShape {
  int64_t n, c, spatial;
};
// Dense outputs (spatial 1) and conv maps; batch 1 and odd; channels off any tile; more
// channels than a grid's y dimension holds (bias_add strides over them).
const std::vector<BiasShape> kBiasShapes = {{1, 1, 1},   {3, 10, 1},   {33, 128, 1},
                                            {2, 17, 49}, {1, 64, 784}, {5, 130, 9},
                                            {256, 3, 1}, {7, 1, 121},  {2, 65535 + 70, 3}};

TEST(TensorOpsKernel, BiasAddAddsPerChannel) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 5700;
  for (const BiasShape& s : kBiasShapes) {
    SCOPED_TRACE(::testing::Message() << "n " << s.n << " c " << s.c << " spatial " << s.spatial);
    seed += 2;
    const std::vector<float> y0 = random_floats(s.n * s.c * s.spatial, seed);
    const std::vector<float> b = random_floats(s.c, seed + 1);
    std::vector<float> want = y0;
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t k = 0; k < s.spatial; ++k) want[sz((n * s.c + c) * s.spatial + k)] += b[sz(c)];
    DeviceBuffer<float> d_y(y0), d_b(b);
    ASSERT_TRUE(d_y.ok() && d_b.ok());
    CNN_CUDA_OK(cnnk::bias_add(s.n, s.c, s.spatial, d_b.get(), d_y.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("y", d_y.download(), want));
  }
}

void check_bias_backward(const BiasShape& s, const std::vector<float>& dy, bool exact) {
  std::vector<double> sum(sz(s.c), 0.0), abs_sum(sz(s.c), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t k = 0; k < s.spatial; ++k) {
        const double v = static_cast<double>(dy[sz((n * s.c + c) * s.spatial + k)]);
        sum[sz(c)] += v;
        abs_sum[sz(c)] += std::abs(v);
      }
  const std::vector<float> want = test::cast_all<float>(sum);
  DeviceBuffer<float> d_dy(dy), d_db(sz(s.c));
  ASSERT_TRUE(d_dy.ok() && d_db.ok());
  CNN_CUDA_OK(d_db.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::bias_backward(s.n, s.c, s.spatial, d_dy.get(), d_db.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  if (exact)
    EXPECT_TRUE(test::all_equal("db", d_db.download(), want));
  else
    EXPECT_TRUE(
        test::within_bounds("db", d_db.download(), want,
                            test::reduction_bounds(abs_sum, static_cast<double>(s.n * s.spatial))));
}

TEST(TensorOpsKernel, BiasBackwardSumsPerChannel) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 5900;
  for (const BiasShape& s : kBiasShapes) {
    SCOPED_TRACE(::testing::Message() << "n " << s.n << " c " << s.c << " spatial " << s.spatial);
    seed += 2;
    const size_t count = sz(s.n * s.c * s.spatial);
    check_bias_backward(s, test::small_integers(count, seed, 5), true);
    check_bias_backward(s, test::cast_all<float>(test::random_values(count, seed + 1)), false);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// An empty batch has a zero bias gradient (assigned).
TEST(TensorOpsKernel, BiasBackwardOfAnEmptyBatchIsZero) {
  CNN_REQUIRE_GPU();
  DeviceBuffer<float> d_db(5);
  ASSERT_TRUE(d_db.ok());
  CNN_CUDA_OK(d_db.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::bias_backward(0, 5, 9, nullptr, d_db.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("db", d_db.download(), std::vector<float>(5, 0.f)));
}

// Empty problems launch nothing and succeed, even with null pointers (no device needed).
TEST(TensorOpsKernel, EmptyProblemsLaunchNothing) {
  EXPECT_EQ(cnnk::fill(0, 1.f, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::add(0, nullptr, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::accumulate(0, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::channel_copy(cnnk::ChannelCopy{}, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::gather_rows(nullptr, 10, nullptr, 0, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::bias_add(0, 3, 4, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::bias_backward(4, 0, 4, nullptr, nullptr, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace cnn
