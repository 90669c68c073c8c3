// Batch normalization kernels against cnn::ref::batchnorm_*. Both sides reduce in double;
// only the order of the sums differs, so the bounds (derived from each reduction's length
// and the size of its terms) are far looser than the differences seen in practice. The
// inference path has no reduction and uses the same rounded double operations as the
// reference: it is compared bit for bit. Outputs start as NaN poison.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnk/batchnorm.h"
#include "engine/ops/batchnorm/batchnorm.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::BatchNormGeometry;
using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

constexpr float kMomentum = 0.99f, kEpsilon = 1e-3f;

int64_t at(const BatchNormGeometry& g, int64_t n, int64_t c, int64_t s) {
  return (n * g.c + c) * g.spatial + s;
}

// Batch 1 and odd batches, spatial 1 (after Dense) and odd maps, channels off any tile.
const std::vector<BatchNormGeometry>& shapes() {
  static const std::vector<BatchNormGeometry> all = {
      {1, 1, 7}, {3, 3, 25}, {5, 17, 1}, {2, 64, 49}, {4, 130, 9}, {1, 3, 1}, {33, 2, 1}};
  return all;
}

struct Inputs {
  std::vector<float> x, gamma, beta, running_mean, running_var;
};

// x has a per-channel offset far from 0 (a test of the variance's numerics) and a spread.
Inputs make_inputs(const BatchNormGeometry& g, uint64_t seed, double offset) {
  Inputs in;
  in.x = test::cast_all<float>(test::random_values(sz(g.size()), seed, -2.0, 2.0));
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t s = 0; s < g.spatial; ++s)
        in.x[sz(at(g, n, c, s))] += static_cast<float>(offset * static_cast<double>(c % 3));
  in.gamma = test::cast_all<float>(test::random_values(sz(g.c), seed + 1, 0.5, 1.5));
  in.beta = test::cast_all<float>(test::random_values(sz(g.c), seed + 2, -1.0, 1.0));
  in.running_mean = test::cast_all<float>(test::random_values(sz(g.c), seed + 3, -1.0, 1.0));
  in.running_var = test::cast_all<float>(test::random_values(sz(g.c), seed + 4, 0.5, 2.0));
  return in;
}

std::vector<double> abs_plus(const std::vector<float>& v, double add) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::abs(static_cast<double>(v[i])) + add;
  return out;
}

void check_training(const BatchNormGeometry& g, uint64_t seed, double offset) {
  SCOPED_TRACE(::testing::Message()
               << "n " << g.n << " c " << g.c << " spatial " << g.spatial << " offset " << offset);
  const Inputs in = make_inputs(g, seed, offset);
  const double m = static_cast<double>(g.reduction());

  // Reference forward.
  std::vector<float> rm = in.running_mean, rv = in.running_var;
  std::vector<float> y(sz(g.size())), mean(sz(g.c)), invstd(sz(g.c));
  ref::batchnorm_forward_training<float>(g, in.x.data(), in.gamma.data(), in.beta.data(), kMomentum,
                                         kEpsilon, rm.data(), rv.data(), y.data(), mean.data(),
                                         invstd.data());

  DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_rm(in.running_mean),
      d_rv(in.running_var), d_y(y.size()), d_mean(mean.size()), d_invstd(invstd.size());
  ASSERT_TRUE(d_x.ok() && d_gamma.ok() && d_beta.ok() && d_rm.ok() && d_rv.ok() && d_y.ok() &&
              d_mean.ok() && d_invstd.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(d_mean.fill_bytes(0xFF));
  CNN_CUDA_OK(d_invstd.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::batchnorm_forward_training(g, d_x.get(), d_gamma.get(), d_beta.get(), kMomentum,
                                               kEpsilon, d_rm.get(), d_rv.get(), d_y.get(),
                                               d_mean.get(), d_invstd.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());

  // The sums are over m terms of size up to max|x|; everything downstream inherits their
  // relative error, which is of the order of double rounding: float-level bounds with the
  // reduction's growth are generous.
  double max_abs_x = 0.0;
  for (const float v : in.x) max_abs_x = std::max(max_abs_x, std::abs(static_cast<double>(v)));
  EXPECT_TRUE(test::within_bounds("save_mean", d_mean.download(), mean,
                                  test::reduction_bounds({max_abs_x}, m)));
  EXPECT_TRUE(test::within_bounds("save_invstd", d_invstd.download(), invstd,
                                  test::reduction_bounds(abs_plus(invstd, 0.0), m)));
  EXPECT_TRUE(
      test::within_bounds("y", d_y.download(), y, test::reduction_bounds(abs_plus(y, 1.0), m)));
  EXPECT_TRUE(test::within_bounds("running_mean", d_rm.download(), rm,
                                  test::reduction_bounds({max_abs_x}, m)));
  EXPECT_TRUE(test::within_bounds("running_var", d_rv.download(), rv,
                                  test::reduction_bounds(abs_plus(rv, 0.0), m)));

  // Backward from the reference's saved statistics.
  const std::vector<float> dy =
      test::cast_all<float>(test::random_values(sz(g.size()), seed + 7, -1.0, 1.0));
  std::vector<float> dx(sz(g.size())), dgamma(sz(g.c)), dbeta(sz(g.c));
  ref::batchnorm_backward<float>(g, in.x.data(), dy.data(), in.gamma.data(), mean.data(),
                                 invstd.data(), dx.data(), dgamma.data(), dbeta.data());
  // Bounds from the size of the terms: sum |dy| and sum |dy * xhat| per channel; for dx,
  // |k| * (m |dy| + |dbeta| + |xhat dgamma|), the magnitudes of what is cancelled.
  std::vector<double> scale_dbeta(sz(g.c), 0.0), scale_dgamma(sz(g.c), 0.0),
      scale_dx(sz(g.size()), 0.0);
  for (int64_t c = 0; c < g.c; ++c) {
    const double mu = mean[sz(c)], is = invstd[sz(c)];
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const size_t i = sz(at(g, n, c, s));
        const double xhat = (static_cast<double>(in.x[i]) - mu) * is;
        scale_dbeta[sz(c)] += std::abs(static_cast<double>(dy[i]));
        scale_dgamma[sz(c)] += std::abs(static_cast<double>(dy[i]) * xhat);
      }
    const double k = std::abs(static_cast<double>(in.gamma[sz(c)]) * is / m);
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const size_t i = sz(at(g, n, c, s));
        const double xhat = (static_cast<double>(in.x[i]) - mu) * is;
        scale_dx[i] = k * (m * std::abs(static_cast<double>(dy[i])) + scale_dbeta[sz(c)] +
                           std::abs(xhat) * scale_dgamma[sz(c)]);
      }
  }

  DeviceBuffer<float> d_dy(dy), d_dx(dx.size()), d_dgamma(dgamma.size()), d_dbeta(dbeta.size()),
      d_mean_ref(mean), d_invstd_ref(invstd);
  ASSERT_TRUE(d_dy.ok() && d_dx.ok() && d_dgamma.ok() && d_dbeta.ok() && d_mean_ref.ok() &&
              d_invstd_ref.ok());
  CNN_CUDA_OK(d_dx.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dgamma.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dbeta.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::batchnorm_backward(g, d_x.get(), d_dy.get(), d_gamma.get(), d_mean_ref.get(),
                                       d_invstd_ref.get(), d_dx.get(), d_dgamma.get(),
                                       d_dbeta.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::within_bounds("dbeta", d_dbeta.download(), dbeta,
                                  test::reduction_bounds(scale_dbeta, m)));
  EXPECT_TRUE(test::within_bounds("dgamma", d_dgamma.download(), dgamma,
                                  test::reduction_bounds(scale_dgamma, m)));
  EXPECT_TRUE(test::within_bounds("dx", d_dx.download(), dx, test::reduction_bounds(scale_dx, m)));
}

TEST(BatchNormKernel, TrainingForwardAndBackwardSweep) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 7100;
  for (const BatchNormGeometry& g : shapes()) {
    seed += 10;
    check_training(g, seed, 0.0);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// A first-layer sized channel (256 * 28 * 28 values) whose values sit far from 0: a
// one-pass E[x^2] - E[x]^2 in float would lose the variance; two passes in double do not.
TEST(BatchNormKernel, LargeChannelsFarFromZero) {
  CNN_REQUIRE_GPU();
  check_training(BatchNormGeometry{256, 3, 784}, 7500, 1000.0);
}

void check_inference(const BatchNormGeometry& g, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "n " << g.n << " c " << g.c << " spatial " << g.spatial);
  const Inputs in = make_inputs(g, seed, 3.0);
  std::vector<float> y(sz(g.size()));
  ref::batchnorm_forward_inference<float>(g, in.x.data(), in.gamma.data(), in.beta.data(),
                                          in.running_mean.data(), in.running_var.data(), kEpsilon,
                                          y.data());
  DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_rm(in.running_mean),
      d_rv(in.running_var), d_y(y.size());
  ASSERT_TRUE(d_x.ok() && d_gamma.ok() && d_beta.ok() && d_rm.ok() && d_rv.ok() && d_y.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::batchnorm_forward_inference(g, d_x.get(), d_gamma.get(), d_beta.get(),
                                                d_rm.get(), d_rv.get(), kEpsilon, d_y.get(),
                                                nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("y", d_y.download(), y));
}

TEST(BatchNormKernel, InferenceMatchesReferenceExactly) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 7700;
  for (const BatchNormGeometry& g : shapes()) check_inference(g, seed += 10);
}

// More channels than a grid's y dimension holds (65535): the launch strides over them.
TEST(BatchNormKernel, InferenceOverMoreChannelsThanOneGridColumn) {
  CNN_REQUIRE_GPU();
  check_inference(BatchNormGeometry{2, 65535 + 70, 3}, 7800);
}

// Two runs on the same input give the same bits: the reductions have a fixed order.
TEST(BatchNormKernel, TrainingIsDeterministic) {
  CNN_REQUIRE_GPU();
  CNN_SKIP_IN_SIMULATOR();
  const BatchNormGeometry g{7, 5, 121};
  const Inputs in = make_inputs(g, 7900, 2.0);
  const std::vector<float> dy =
      test::cast_all<float>(test::random_values(sz(g.size()), 7901, -1.0, 1.0));
  DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_dy(dy);
  ASSERT_TRUE(d_x.ok() && d_gamma.ok() && d_beta.ok() && d_dy.ok());
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<float> d_rm(in.running_mean), d_rv(in.running_var), d_y(sz(g.size())),
        d_mean(sz(g.c)), d_invstd(sz(g.c)), d_dx(sz(g.size())), d_dgamma(sz(g.c)), d_dbeta(sz(g.c));
    ASSERT_TRUE(d_rm.ok() && d_rv.ok() && d_y.ok() && d_mean.ok() && d_invstd.ok() && d_dx.ok() &&
                d_dgamma.ok() && d_dbeta.ok());
    CNN_CUDA_OK(cnnk::batchnorm_forward_training(g, d_x.get(), d_gamma.get(), d_beta.get(),
                                                 kMomentum, kEpsilon, d_rm.get(), d_rv.get(),
                                                 d_y.get(), d_mean.get(), d_invstd.get(), nullptr));
    CNN_CUDA_OK(cnnk::batchnorm_backward(g, d_x.get(), d_dy.get(), d_gamma.get(), d_mean.get(),
                                         d_invstd.get(), d_dx.get(), d_dgamma.get(), d_dbeta.get(),
                                         nullptr));
    CNN_CUDA_OK(test::sync_status());
    std::vector<float> all;
    for (const DeviceBuffer<float>* b :
         {&d_rm, &d_rv, &d_y, &d_mean, &d_invstd, &d_dx, &d_dgamma, &d_dbeta}) {
      const std::vector<float> v = b->download();
      all.insert(all.end(), v.begin(), v.end());
    }
    runs.push_back(all);
  }
  EXPECT_TRUE(test::all_equal("second run", runs[1], runs[0]));
}

// An empty batch still updates the running statistics as the reference does (the batch
// statistics read as 0) and assigns zero parameter gradients.
TEST(BatchNormKernel, EmptyBatchUpdatesRunningStatistics) {
  CNN_REQUIRE_GPU();
  const BatchNormGeometry g{0, 3, 4};
  const Inputs in = make_inputs(BatchNormGeometry{1, 3, 4}, 7950, 0.0);
  std::vector<float> rm = in.running_mean, rv = in.running_var, mean(3), invstd(3);
  ref::batchnorm_forward_training<float>(g, nullptr, in.gamma.data(), in.beta.data(), kMomentum,
                                         kEpsilon, rm.data(), rv.data(), nullptr, mean.data(),
                                         invstd.data());
  DeviceBuffer<float> d_gamma(in.gamma), d_beta(in.beta), d_rm(in.running_mean),
      d_rv(in.running_var), d_mean(3), d_invstd(3), d_dgamma(3), d_dbeta(3);
  ASSERT_TRUE(d_gamma.ok() && d_beta.ok() && d_rm.ok() && d_rv.ok() && d_mean.ok() &&
              d_invstd.ok() && d_dgamma.ok() && d_dbeta.ok());
  CNN_CUDA_OK(d_dgamma.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dbeta.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::batchnorm_forward_training(g, nullptr, d_gamma.get(), d_beta.get(), kMomentum,
                                               kEpsilon, d_rm.get(), d_rv.get(), nullptr,
                                               d_mean.get(), d_invstd.get(), nullptr));
  CNN_CUDA_OK(cnnk::batchnorm_backward(g, nullptr, nullptr, d_gamma.get(), d_mean.get(),
                                       d_invstd.get(), nullptr, d_dgamma.get(), d_dbeta.get(),
                                       nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::all_equal("running_mean", d_rm.download(), rm));
  EXPECT_TRUE(test::all_equal("running_var", d_rv.download(), rv));
  EXPECT_TRUE(test::all_equal("save_mean", d_mean.download(), mean));
  EXPECT_TRUE(test::all_equal("save_invstd", d_invstd.download(), invstd));
  EXPECT_TRUE(test::all_equal("dgamma", d_dgamma.download(), std::vector<float>(3, 0.f)));
  EXPECT_TRUE(test::all_equal("dbeta", d_dbeta.download(), std::vector<float>(3, 0.f)));
}

// No channels: nothing to do, nothing launched (no device needed).
TEST(BatchNormKernel, NoChannelsLaunchesNothing) {
  const BatchNormGeometry g{4, 0, 9};
  EXPECT_EQ(cnnk::batchnorm_forward_training(g, nullptr, nullptr, nullptr, kMomentum, kEpsilon,
                                             nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::batchnorm_forward_inference(g, nullptr, nullptr, nullptr, nullptr, nullptr,
                                              kEpsilon, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::batchnorm_backward(g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                     nullptr, nullptr, nullptr),
            cudaSuccess);
}

}  // namespace
}  // namespace cnn
