// The bias kernels (cnnk/bias.h) against the reference (ref::activation_*, ref::
// bias_backward) in double: the forward's bias and activation in one pass, and the
// backward's dz and db in one pass, for every elementwise activation, over dense shapes
// (spatial 1) and convolution maps, channels short enough for one chunk and long enough
// for many (the chunk sums then combined by a second launch), more channels than a
// grid's y dimension holds, batch 1 and odd batches. Outputs and the workspace start as
// NaN poison. dz, ReLU's and linear's, is exact; db is exact on small integers and
// bounded by its reduction length on random values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnk/bias.h"
#include "engine/ops/activation/activation.h"
#include "engine/ops/bias/bias.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

struct Kind {
  Activation ref;
  cnnk::ActKind kernel;
  double rtol;  // of each element, relative to |expected|, plus 1e-7 absolute
};
// As the activation kernels' suite: sigmoid's fast exponential and the backward's two
// products round a few times; ReLU and linear are exact.
const Kind kKinds[] = {{Activation::Linear, cnnk::ActKind::Linear, 0.0},
                       {Activation::Relu, cnnk::ActKind::Relu, 0.0},
                       {Activation::Sigmoid, cnnk::ActKind::Sigmoid, 32.0 / 8388608.0},
                       {Activation::Tanh, cnnk::ActKind::Tanh, 8.0 / 8388608.0}};

struct BiasShape {
  int64_t n, c, spatial;
};
// Dense outputs (spatial 1) and conv maps; batch 1 and odd; channels off any tile; one
// chunk of 2048 values per channel and many (25,088 = fashion-cnn's first layer at batch
// 32; 4097 = two chunks and one value; 3000 rows of a dense layer).
const std::vector<BiasShape> kShapes = {{1, 1, 1},    {3, 10, 1},   {33, 128, 1}, {2, 17, 49},
                                        {1, 64, 784}, {5, 130, 9},  {256, 3, 1},  {7, 1, 121},
                                        {32, 3, 784}, {1, 2, 4097}, {3000, 5, 1}};
// Past the grid's 65535 rows of channels: the blocks loop over the rest.
const BiasShape kManyChannels{2, 65535 + 70, 3};

std::string describe(const BiasShape& s) {
  return "n " + std::to_string(s.n) + " c " + std::to_string(s.c) + " spatial " +
         std::to_string(s.spatial);
}

std::vector<double> elementwise_bounds(const std::vector<double>& expected, double rtol) {
  std::vector<double> b(expected.size());
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = rtol == 0.0 ? 0.0 : 1e-7 + rtol * std::abs(expected[i]);
  return b;
}

// The workspace the launch asks for, poisoned; a single float when it asks for none, so
// that the pointer is never null (the launch must not need it).
DeviceBuffer<float> workspace_for(const BiasShape& s) {
  const size_t bytes = cnnk::bias_backward_workspace_bytes(s.n, s.c, s.spatial);
  DeviceBuffer<float> ws(bytes > 0 ? (bytes + sizeof(float) - 1) / sizeof(float) : 1);
  if (ws.ok()) (void)ws.fill_bytes(0xFF);
  return ws;
}

TEST(BiasKernel, ForwardAddsTheBiasThenTheActivation) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 5700;
  for (const Kind& kind : kKinds)
    for (const BiasShape& s : kShapes) {
      SCOPED_TRACE(activation_name(kind.ref) + " " + describe(s));
      seed += 2;
      const size_t count = sz(s.n * s.c * s.spatial);
      const std::vector<float> y0 = test::cast_all<float>(test::random_values(count, seed, -4, 4));
      const std::vector<float> b = test::cast_all<float>(test::random_values(sz(s.c), seed + 1));
      // The reference: the sum in float (as the kernel adds), the activation in double.
      std::vector<double> z(count);
      for (int64_t n = 0; n < s.n; ++n)
        for (int64_t c = 0; c < s.c; ++c)
          for (int64_t k = 0; k < s.spatial; ++k) {
            const size_t i = sz((n * s.c + c) * s.spatial + k);
            z[i] = static_cast<double>(y0[i] + b[sz(c)]);
          }
      std::vector<double> want(count);
      ref::activation_forward<double>(kind.ref, ActivationGeometry{s.n, s.c, s.spatial}, z.data(),
                                      want.data());
      DeviceBuffer<float> d_y(y0), d_b(b);
      ASSERT_TRUE(d_y.ok() && d_b.ok());
      CNN_CUDA_OK(cnnk::bias_activation_forward(kind.kernel, s.n, s.c, s.spatial, d_b.get(),
                                                d_y.get(), nullptr));
      CNN_CUDA_OK(test::sync_status());
      EXPECT_TRUE(
          test::within_bounds("y", d_y.download(), want, elementwise_bounds(want, kind.rtol)));
    }
}

// Without a bias the forward is the activation alone; linear without one touches nothing.
TEST(BiasKernel, ForwardWithoutABiasIsTheActivation) {
  CNN_REQUIRE_GPU();
  const BiasShape s{3, 5, 7};
  const size_t count = sz(s.n * s.c * s.spatial);
  const std::vector<float> y0 = test::cast_all<float>(test::random_values(count, 811, -4, 4));
  std::vector<double> want(count);
  ref::activation_forward<double>(Activation::Relu, ActivationGeometry{s.n, s.c, s.spatial},
                                  test::cast_all<double>(y0).data(), want.data());
  DeviceBuffer<float> d_y(y0), d_lin(y0);
  ASSERT_TRUE(d_y.ok() && d_lin.ok());
  CNN_CUDA_OK(cnnk::bias_activation_forward(cnnk::ActKind::Relu, s.n, s.c, s.spatial, nullptr,
                                            d_y.get(), nullptr));
  CNN_CUDA_OK(cnnk::bias_activation_forward(cnnk::ActKind::Linear, s.n, s.c, s.spatial, nullptr,
                                            d_lin.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("y", d_y.download(), want));
  EXPECT_TRUE(test::all_equal("linear y", d_lin.download(), y0));
}

// The reference backward of one case: dz from y and dy, db the sums of dz, and the sums
// of |dz| that bound db's rounding.
struct Expected {
  std::vector<double> dz, db, db_scale;
};
Expected expected_backward(const Kind& kind, const BiasShape& s, const std::vector<float>& y,
                           const std::vector<float>& dy) {
  const ActivationGeometry g{s.n, s.c, s.spatial};
  Expected e;
  e.dz.resize(dy.size());
  ref::activation_backward<double>(kind.ref, g, test::cast_all<double>(y).data(),
                                   test::cast_all<double>(dy).data(), e.dz.data());
  e.db.resize(sz(s.c));
  ref::bias_backward<double>(g, e.dz.data(), e.db.data());
  std::vector<double> abs_dz(e.dz.size());
  for (size_t i = 0; i < abs_dz.size(); ++i) abs_dz[i] = std::abs(e.dz[i]);
  e.db_scale.resize(sz(s.c));
  ref::bias_backward<double>(g, abs_dz.data(), e.db_scale.data());
  return e;
}

// One backward on the device, dz in place over dy (as the layers run it) or into its own
// buffer; checks dz and db against the reference.
void check_backward(const Kind& kind, const BiasShape& s, const std::vector<float>& y,
                    const std::vector<float>& dy, bool in_place, bool exact_sums) {
  const Expected want = expected_backward(kind, s, y, dy);
  DeviceBuffer<float> d_y(y), d_dy(dy), d_dz(in_place ? 0 : dy.size()), d_db(sz(s.c));
  DeviceBuffer<float> ws = workspace_for(s);
  ASSERT_TRUE(d_y.ok() && d_dy.ok() && d_dz.ok() && d_db.ok() && ws.ok());
  CNN_CUDA_OK(d_dz.fill_bytes(0xFF));
  CNN_CUDA_OK(d_db.fill_bytes(0xFF));
  float* dz = in_place ? d_dy.get() : d_dz.get();
  CNN_CUDA_OK(cnnk::bias_activation_backward(kind.kernel, s.n, s.c, s.spatial, d_y.get(),
                                             d_dy.get(), dz, d_db.get(), ws.get(), ws.bytes(),
                                             nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::within_bounds("dz", in_place ? d_dy.download() : d_dz.download(), want.dz,
                                  elementwise_bounds(want.dz, kind.rtol)));
  std::vector<double> db_bounds =
      test::reduction_bounds(want.db_scale, static_cast<double>(s.n * s.spatial));
  // Sigmoid's and tanh's dz carry their own rounding into the sum.
  for (size_t c = 0; c < db_bounds.size(); ++c) db_bounds[c] += kind.rtol * want.db_scale[c];
  if (exact_sums)
    EXPECT_TRUE(test::all_equal("db", d_db.download(), test::cast_all<float>(want.db)));
  else
    EXPECT_TRUE(test::within_bounds("db", d_db.download(), want.db, db_bounds));
}

// A forward output of `kind` (what the backward reads): ReLU's has exact zeros.
std::vector<float> forward_output(const Kind& kind, const BiasShape& s, uint64_t seed) {
  const size_t count = sz(s.n * s.c * s.spatial);
  const std::vector<double> x = test::random_values(count, seed, -4.0, 4.0);
  std::vector<double> y(count);
  ref::activation_forward<double>(kind.ref, ActivationGeometry{s.n, s.c, s.spatial}, x.data(),
                                  y.data());
  return test::cast_all<float>(y);
}

TEST(BiasKernel, BackwardMatchesTheReferenceForEveryActivation) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 5900;
  for (const Kind& kind : kKinds)
    for (const BiasShape& s : kShapes) {
      SCOPED_TRACE(activation_name(kind.ref) + " " + describe(s));
      seed += 3;
      const size_t count = sz(s.n * s.c * s.spatial);
      const std::vector<float> y = forward_output(kind, s, seed);
      const std::vector<float> dy =
          test::cast_all<float>(test::random_values(count, seed + 1, -3.0, 3.0));
      check_backward(kind, s, y, dy, /*in_place=*/true, /*exact_sums=*/false);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

// Small integers sum exactly in float in any order: ReLU's and linear's db must then be
// the exact sums, chunked or not. Also with dz in a buffer of its own.
TEST(BiasKernel, BackwardSumsSmallIntegersExactly) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 6100;
  for (const Kind& kind : {kKinds[0], kKinds[1]})
    for (const BiasShape& s : kShapes) {
      SCOPED_TRACE(activation_name(kind.ref) + " " + describe(s));
      seed += 3;
      const size_t count = sz(s.n * s.c * s.spatial);
      const std::vector<float> y = forward_output(kind, s, seed);
      const std::vector<float> dy = test::small_integers(count, seed + 1, 5);
      check_backward(kind, s, y, dy, /*in_place=*/false, /*exact_sums=*/true);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

// bias_backward is the linear case: db alone, dy untouched.
TEST(BiasKernel, BiasBackwardSumsPerChannelAndLeavesTheGradient) {
  CNN_REQUIRE_GPU();
  const BiasShape s{32, 3, 784};
  const std::vector<float> dy = test::small_integers(sz(s.n * s.c * s.spatial), 6300, 5);
  const Expected want = expected_backward(kKinds[0], s, dy, dy);
  DeviceBuffer<float> d_dy(dy), d_db(sz(s.c));
  DeviceBuffer<float> ws = workspace_for(s);
  ASSERT_TRUE(d_dy.ok() && d_db.ok() && ws.ok());
  CNN_CUDA_OK(d_db.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::bias_backward(s.n, s.c, s.spatial, d_dy.get(), d_db.get(), ws.get(), ws.bytes(),
                                  nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("db", d_db.download(), test::cast_all<float>(want.db)));
  EXPECT_TRUE(test::all_equal("dy", d_dy.download(), dy));
}

// Without db the backward is the elementwise pass (and linear in place is nothing).
TEST(BiasKernel, BackwardWithoutABiasIsTheActivationsBackward) {
  CNN_REQUIRE_GPU();
  const BiasShape s{4, 6, 25};
  const Kind& relu = kKinds[1];
  const std::vector<float> y = forward_output(relu, s, 6500);
  const std::vector<float> dy =
      test::cast_all<float>(test::random_values(sz(s.n * s.c * s.spatial), 6501));
  const Expected want = expected_backward(relu, s, y, dy);
  DeviceBuffer<float> d_y(y), d_dy(dy), d_dz(dy.size());
  ASSERT_TRUE(d_y.ok() && d_dy.ok() && d_dz.ok());
  CNN_CUDA_OK(d_dz.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::bias_activation_backward(relu.kernel, s.n, s.c, s.spatial, d_y.get(),
                                             d_dy.get(), d_dz.get(), nullptr, nullptr, 0, nullptr));
  CNN_CUDA_OK(cnnk::bias_activation_backward(cnnk::ActKind::Linear, s.n, s.c, s.spatial, nullptr,
                                             d_dy.get(), d_dy.get(), nullptr, nullptr, 0, nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("dz", d_dz.download(), want.dz));
  EXPECT_TRUE(test::all_equal("dy", d_dy.download(), dy));
}

// The same shape gives the same bits on every run: the chunks and their combination have
// a fixed order.
TEST(BiasKernel, BackwardIsDeterministic) {
  CNN_REQUIRE_GPU();
  CNN_SKIP_IN_SIMULATOR();
  const BiasShape s{256, 4, 196};
  const size_t count = sz(s.n * s.c * s.spatial);
  const std::vector<float> y = forward_output(kKinds[3], s, 6700);
  const std::vector<float> dy = test::cast_all<float>(test::random_values(count, 6701));
  std::vector<float> first;
  for (int run = 0; run < 3; ++run) {
    DeviceBuffer<float> d_y(y), d_dy(dy), d_db(sz(s.c));
    DeviceBuffer<float> ws = workspace_for(s);
    ASSERT_TRUE(d_y.ok() && d_dy.ok() && d_db.ok() && ws.ok());
    CNN_CUDA_OK(cnnk::bias_activation_backward(cnnk::ActKind::Tanh, s.n, s.c, s.spatial, d_y.get(),
                                               d_dy.get(), d_dy.get(), d_db.get(), ws.get(),
                                               ws.bytes(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    if (run == 0)
      first = d_db.download();
    else
      EXPECT_TRUE(test::all_equal("db", d_db.download(), first)) << "run " << run;
  }
}

TEST(BiasKernel, ManyChannelsAreAllCovered) {
  CNN_REQUIRE_GPU();
  const Kind& relu = kKinds[1];
  const BiasShape& s = kManyChannels;
  const size_t count = sz(s.n * s.c * s.spatial);
  const std::vector<float> b = test::small_integers(sz(s.c), 6800, 5);
  std::vector<float> y = test::small_integers(count, 6801, 5);
  std::vector<double> want_y(count);
  for (size_t i = 0; i < count; ++i) {
    const float z = y[i] + b[(i / sz(s.spatial)) % sz(s.c)];
    want_y[i] = z > 0.f ? z : 0.f;
  }
  DeviceBuffer<float> d_y(y), d_b(b);
  ASSERT_TRUE(d_y.ok() && d_b.ok());
  CNN_CUDA_OK(cnnk::bias_activation_forward(relu.kernel, s.n, s.c, s.spatial, d_b.get(), d_y.get(),
                                            nullptr));
  CNN_CUDA_OK(test::sync_status());
  y = d_y.download();
  EXPECT_TRUE(test::all_equal("y", y, want_y));
  check_backward(relu, s, y, test::small_integers(count, 6802, 5), /*in_place=*/true,
                 /*exact_sums=*/true);
}

// An empty batch has a zero bias gradient (assigned), with no workspace.
TEST(BiasKernel, BackwardOfAnEmptyBatchIsZero) {
  CNN_REQUIRE_GPU();
  EXPECT_EQ(cnnk::bias_backward_workspace_bytes(0, 5, 9), 0u);
  DeviceBuffer<float> d_db(5);
  ASSERT_TRUE(d_db.ok());
  CNN_CUDA_OK(d_db.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::bias_backward(0, 5, 9, nullptr, d_db.get(), nullptr, 0, nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("db", d_db.download(), std::vector<float>(5, 0.f)));
}

// The workspace: none while every channel fits in one chunk (2048 values), one float per
// chunk and channel past it; a short or missing one is refused before any launch, as
// is a channel too long for the kernel's 32-bit walk.
TEST(BiasKernel, WorkspaceHoldsOneSumPerChunkAndChannel) {
  EXPECT_EQ(cnnk::bias_backward_workspace_bytes(32, 128, 1), 0u);
  EXPECT_EQ(cnnk::bias_backward_workspace_bytes(1, 64, 2048), 0u);
  EXPECT_EQ(cnnk::bias_backward_workspace_bytes(1, 64, 2049), 64u * 2 * sizeof(float));
  EXPECT_EQ(cnnk::bias_backward_workspace_bytes(32, 64, 784), 64u * 13 * sizeof(float));
  EXPECT_EQ(cnnk::bias_backward_workspace_bytes(256, 64, 784), 64u * 98 * sizeof(float));
  const size_t need = cnnk::bias_backward_workspace_bytes(32, 64, 784);
  float* fake = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced
  EXPECT_EQ(cnnk::bias_backward(32, 64, 784, fake, fake, fake, need - 1, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::bias_backward(32, 64, 784, fake, fake, nullptr, need, nullptr),
            cudaErrorInvalidValue);
  // A channel past 32-bit indexing (2^32 values) is refused.
  EXPECT_EQ(cnnk::bias_backward(int64_t(1) << 20, 1, int64_t(1) << 12, fake, fake, fake,
                                size_t(1) << 40, nullptr),
            cudaErrorInvalidValue);
  // A nonlinear backward needs y and dz.
  EXPECT_EQ(cnnk::bias_activation_backward(cnnk::ActKind::Relu, 1, 2, 3, nullptr, fake, fake, fake,
                                           nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::bias_activation_backward(cnnk::ActKind::Relu, 1, 2, 3, fake, fake, nullptr, fake,
                                           nullptr, 0, nullptr),
            cudaErrorInvalidValue);
}

// Empty problems launch nothing and succeed, even with null pointers (no device needed).
TEST(BiasKernel, EmptyProblemsLaunchNothing) {
  EXPECT_EQ(cnnk::bias_activation_forward(cnnk::ActKind::Relu, 0, 3, 4, nullptr, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::bias_backward(4, 0, 4, nullptr, nullptr, nullptr, 0, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace cnn
