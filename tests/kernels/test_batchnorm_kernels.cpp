// Batch normalization kernels against cnn::ref::batchnorm_*. Both sides reduce in double;
// only the order of the sums differs, so the bounds (derived from each reduction's length
// and the size of its terms) are far looser than the differences seen in practice. The
// inference path has no reduction and uses the same rounded double operations as the
// reference: it is compared bit for bit. Outputs start as NaN poison.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <utility>
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

// Batch 1 and odd batches, spatial 1 (after Dense) and odd maps, channels off any tile;
// then channels of more than 4096 values, which the kernels cut into chunks reduced by
// separate blocks: two uneven chunks, a Dense-like channel strided across the batch, and
// a channel long enough (over 128 chunks of 4096) that each chunk is walked in pieces.
const std::vector<BatchNormGeometry>& shapes() {
  static const std::vector<BatchNormGeometry> all = {
      {1, 1, 7}, {3, 3, 25}, {5, 17, 1},   {2, 64, 49},  {4, 130, 9},
      {1, 3, 1}, {33, 2, 1}, {3, 2, 1501}, {5001, 3, 1}, {2, 1, 300007}};
  return all;
}

// The workspace a shape asks for, poisoned: the kernels must write before they read.
struct Workspace {
  size_t bytes;
  DeviceBuffer<double> buffer;
  explicit Workspace(const BatchNormGeometry& g)
      : bytes(cnnk::batchnorm_workspace_bytes(g)), buffer((bytes + 7) / 8) {}
  bool ok() const { return buffer.ok(); }
  void* get() { return bytes ? static_cast<void*>(buffer.get()) : nullptr; }
};

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

// Sizes of what the backward sums and cancels, per element: sum |dy| and sum |dy * xhat|
// per channel; for dx, |k| * (m |dy| + |dbeta| + |xhat dgamma|).
struct GradientScales {
  std::vector<double> dbeta, dgamma, dx;
};
GradientScales gradient_scales(const BatchNormGeometry& g, const Inputs& in,
                               const std::vector<float>& dy, const std::vector<float>& mean,
                               const std::vector<float>& invstd) {
  const double m = static_cast<double>(g.reduction());
  GradientScales out{std::vector<double>(sz(g.c), 0.0), std::vector<double>(sz(g.c), 0.0),
                     std::vector<double>(sz(g.size()), 0.0)};
  for (int64_t c = 0; c < g.c; ++c) {
    const double mu = mean[sz(c)], is = invstd[sz(c)];
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const size_t i = sz(at(g, n, c, s));
        const double xhat = (static_cast<double>(in.x[i]) - mu) * is;
        out.dbeta[sz(c)] += std::abs(static_cast<double>(dy[i]));
        out.dgamma[sz(c)] += std::abs(static_cast<double>(dy[i]) * xhat);
      }
    const double k = std::abs(static_cast<double>(in.gamma[sz(c)]) * is / m);
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t s = 0; s < g.spatial; ++s) {
        const size_t i = sz(at(g, n, c, s));
        const double xhat = (static_cast<double>(in.x[i]) - mu) * is;
        out.dx[i] = k * (m * std::abs(static_cast<double>(dy[i])) + out.dbeta[sz(c)] +
                         std::abs(xhat) * out.dgamma[sz(c)]);
      }
  }
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
  Workspace ws(g);
  ASSERT_TRUE(d_x.ok() && d_gamma.ok() && d_beta.ok() && d_rm.ok() && d_rv.ok() && d_y.ok() &&
              d_mean.ok() && d_invstd.ok() && ws.ok());
  CNN_CUDA_OK(ws.buffer.fill_bytes(0xFF));
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(d_mean.fill_bytes(0xFF));
  CNN_CUDA_OK(d_invstd.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::batchnorm_forward_training(
      g, d_x.get(), d_gamma.get(), d_beta.get(), kMomentum, kEpsilon, d_rm.get(), d_rv.get(),
      d_y.get(), d_mean.get(), d_invstd.get(), ws.get(), ws.bytes, nullptr));
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
  const GradientScales scales = gradient_scales(g, in, dy, mean, invstd);

  DeviceBuffer<float> d_dy(dy), d_dx(dx.size()), d_dgamma(dgamma.size()), d_dbeta(dbeta.size()),
      d_mean_ref(mean), d_invstd_ref(invstd);
  ASSERT_TRUE(d_dy.ok() && d_dx.ok() && d_dgamma.ok() && d_dbeta.ok() && d_mean_ref.ok() &&
              d_invstd_ref.ok());
  CNN_CUDA_OK(d_dx.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dgamma.fill_bytes(0xFF));
  CNN_CUDA_OK(d_dbeta.fill_bytes(0xFF));
  CNN_CUDA_OK(ws.buffer.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::batchnorm_backward(g, d_x.get(), d_dy.get(), d_gamma.get(), d_mean_ref.get(),
                                       d_invstd_ref.get(), d_dx.get(), d_dgamma.get(),
                                       d_dbeta.get(), ws.get(), ws.bytes, nullptr));
  CNN_CUDA_OK(test::sync_status());
  EXPECT_TRUE(test::within_bounds("dbeta", d_dbeta.download(), dbeta,
                                  test::reduction_bounds(scales.dbeta, m)));
  EXPECT_TRUE(test::within_bounds("dgamma", d_dgamma.download(), dgamma,
                                  test::reduction_bounds(scales.dgamma, m)));
  EXPECT_TRUE(test::within_bounds("dx", d_dx.download(), dx, test::reduction_bounds(scales.dx, m)));
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

// Bounds for a double reduction rounded once to float: 2 float ulps of the value, plus the
// double sums' own worst-case error (m * 2^-52 of the sum of the terms' sizes). Far
// tighter than reduction_bounds: a chunk dropped, counted twice or combined with the
// wrong mean moves the statistics by many ulps.
std::vector<double> double_sum_bounds(const std::vector<float>& expected,
                                      const std::vector<double>& scale, double m) {
  std::vector<double> b(expected.size());
  for (size_t i = 0; i < b.size(); ++i) {
    const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::abs(expected[i]), 1e-30f)) - 23);
    b[i] = 2.0 * ulp + m * std::ldexp(1.0, -52) * scale[scale.size() == 1 ? 0 : i];
  }
  return b;
}

// Values with a trend along each channel (from -20 to +20 over its m values, plus noise):
// the chunks of a long channel have means far apart, so combining their variances without
// moving them to the channel's mean is off by a large factor. Statistics and outputs are
// compared to the reference at float rounding.
TEST(BatchNormKernel, ChunkedStatisticsMatchTheReferenceToFloatRounding) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 7600;
  for (const BatchNormGeometry g :
       {BatchNormGeometry{7, 5, 121}, BatchNormGeometry{3, 2, 1501}, BatchNormGeometry{5001, 3, 1},
        BatchNormGeometry{2, 1, 300007}}) {
    SCOPED_TRACE(::testing::Message() << "n " << g.n << " c " << g.c << " spatial " << g.spatial);
    Inputs in = make_inputs(g, seed += 10, 0.0);
    const double m = static_cast<double>(g.reduction());
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t s = 0; s < g.spatial; ++s) {
          const double j = static_cast<double>(n * g.spatial + s);
          in.x[sz(at(g, n, c, s))] += static_cast<float>(40.0 * (j / m - 0.5));
        }
    std::vector<float> rm = in.running_mean, rv = in.running_var;
    std::vector<float> y(sz(g.size())), mean(sz(g.c)), invstd(sz(g.c));
    ref::batchnorm_forward_training<float>(g, in.x.data(), in.gamma.data(), in.beta.data(),
                                           kMomentum, kEpsilon, rm.data(), rv.data(), y.data(),
                                           mean.data(), invstd.data());
    const std::vector<float> dy =
        test::cast_all<float>(test::random_values(sz(g.size()), seed + 5, -1.0, 1.0));
    std::vector<float> dx(sz(g.size())), dgamma(sz(g.c)), dbeta(sz(g.c));
    ref::batchnorm_backward<float>(g, in.x.data(), dy.data(), in.gamma.data(), mean.data(),
                                   invstd.data(), dx.data(), dgamma.data(), dbeta.data());

    DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_rm(in.running_mean),
        d_rv(in.running_var), d_y(y.size()), d_mean(mean.size()), d_invstd(invstd.size()), d_dy(dy),
        d_mean_ref(mean), d_invstd_ref(invstd), d_dx(dx.size()), d_dgamma(dgamma.size()),
        d_dbeta(dbeta.size());
    Workspace ws(g);
    for (const DeviceBuffer<float>* b :
         {&d_x, &d_gamma, &d_beta, &d_rm, &d_rv, &d_y, &d_mean, &d_invstd, &d_dy, &d_mean_ref,
          &d_invstd_ref, &d_dx, &d_dgamma, &d_dbeta})
      ASSERT_TRUE(b->ok());
    ASSERT_TRUE(ws.ok());
    CNN_CUDA_OK(ws.buffer.fill_bytes(0xFF));
    CNN_CUDA_OK(cnnk::batchnorm_forward_training(
        g, d_x.get(), d_gamma.get(), d_beta.get(), kMomentum, kEpsilon, d_rm.get(), d_rv.get(),
        d_y.get(), d_mean.get(), d_invstd.get(), ws.get(), ws.bytes, nullptr));
    // The backward from the reference's statistics, as the reference's backward.
    CNN_CUDA_OK(cnnk::batchnorm_backward(g, d_x.get(), d_dy.get(), d_gamma.get(), d_mean_ref.get(),
                                         d_invstd_ref.get(), d_dx.get(), d_dgamma.get(),
                                         d_dbeta.get(), ws.get(), ws.bytes, nullptr));
    CNN_CUDA_OK(test::sync_status());

    // Sizes of the summed terms: |x| for the mean; for y = (x - mean) * scale + shift,
    // |scale| (|x| + |x - mean|), through the mean's and 1/std's errors; the variance sums
    // squares, with no cancellation.
    double max_x = 0.0;
    for (const float v : in.x) max_x = std::max(max_x, std::abs(static_cast<double>(v)));
    std::vector<double> scale_y(y.size());
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t s = 0; s < g.spatial; ++s) {
          const size_t i = sz(at(g, n, c, s));
          const double scale = std::abs(static_cast<double>(in.gamma[sz(c)]) * invstd[sz(c)]);
          scale_y[i] = scale * (max_x + std::abs(static_cast<double>(in.x[i]) - mean[sz(c)]));
        }
    EXPECT_TRUE(test::within_bounds("save_mean", d_mean.download(), mean,
                                    double_sum_bounds(mean, {max_x}, m)));
    EXPECT_TRUE(test::within_bounds("save_invstd", d_invstd.download(), invstd,
                                    double_sum_bounds(invstd, {0.0}, m)));
    EXPECT_TRUE(test::within_bounds("running_mean", d_rm.download(), rm,
                                    double_sum_bounds(rm, {max_x}, m)));
    EXPECT_TRUE(
        test::within_bounds("running_var", d_rv.download(), rv, double_sum_bounds(rv, {0.0}, m)));
    EXPECT_TRUE(test::within_bounds("y", d_y.download(), y, double_sum_bounds(y, scale_y, m)));
    const GradientScales scales = gradient_scales(g, in, dy, mean, invstd);
    EXPECT_TRUE(test::within_bounds("dbeta", d_dbeta.download(), dbeta,
                                    double_sum_bounds(dbeta, scales.dbeta, m)));
    EXPECT_TRUE(test::within_bounds("dgamma", d_dgamma.download(), dgamma,
                                    double_sum_bounds(dgamma, scales.dgamma, m)));
    EXPECT_TRUE(
        test::within_bounds("dx", d_dx.download(), dx, double_sum_bounds(dx, scales.dx, m)));
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

// Two runs on the same input give the same bits: the reductions have a fixed order, in
// one block per channel and across the chunks of a long channel.
TEST(BatchNormKernel, TrainingIsDeterministic) {
  CNN_REQUIRE_GPU();
  CNN_SKIP_IN_SIMULATOR();
  for (const BatchNormGeometry g : {BatchNormGeometry{7, 5, 121}, BatchNormGeometry{9, 3, 2000}}) {
    SCOPED_TRACE(::testing::Message() << "n " << g.n << " c " << g.c << " spatial " << g.spatial);
    const Inputs in = make_inputs(g, 7900, 2.0);
    const std::vector<float> dy =
        test::cast_all<float>(test::random_values(sz(g.size()), 7901, -1.0, 1.0));
    DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_dy(dy);
    Workspace ws(g);
    ASSERT_TRUE(d_x.ok() && d_gamma.ok() && d_beta.ok() && d_dy.ok() && ws.ok());
    std::vector<std::vector<float>> runs;
    for (int run = 0; run < 2; ++run) {
      DeviceBuffer<float> d_rm(in.running_mean), d_rv(in.running_var), d_y(sz(g.size())),
          d_mean(sz(g.c)), d_invstd(sz(g.c)), d_dx(sz(g.size())), d_dgamma(sz(g.c)),
          d_dbeta(sz(g.c));
      ASSERT_TRUE(d_rm.ok() && d_rv.ok() && d_y.ok() && d_mean.ok() && d_invstd.ok() && d_dx.ok() &&
                  d_dgamma.ok() && d_dbeta.ok());
      CNN_CUDA_OK(cnnk::batchnorm_forward_training(
          g, d_x.get(), d_gamma.get(), d_beta.get(), kMomentum, kEpsilon, d_rm.get(), d_rv.get(),
          d_y.get(), d_mean.get(), d_invstd.get(), ws.get(), ws.bytes, nullptr));
      CNN_CUDA_OK(cnnk::batchnorm_backward(g, d_x.get(), d_dy.get(), d_gamma.get(), d_mean.get(),
                                           d_invstd.get(), d_dx.get(), d_dgamma.get(),
                                           d_dbeta.get(), ws.get(), ws.bytes, nullptr));
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
}

// y may alias x on both paths (the engine normalises in place): same values as out of place.
TEST(BatchNormKernel, TrainingForwardInPlace) {
  CNN_REQUIRE_GPU();
  for (const BatchNormGeometry g : {BatchNormGeometry{3, 4, 50}, BatchNormGeometry{3, 2, 1501}}) {
    SCOPED_TRACE(::testing::Message() << "n " << g.n << " c " << g.c << " spatial " << g.spatial);
    const Inputs in = make_inputs(g, 7920, 1.0);
    DeviceBuffer<float> d_x(in.x), d_inplace(in.x), d_gamma(in.gamma), d_beta(in.beta),
        d_y(sz(g.size())), d_stats(sz(4 * g.c));
    Workspace ws(g);
    ASSERT_TRUE(d_x.ok() && d_inplace.ok() && d_gamma.ok() && d_beta.ok() && d_y.ok() &&
                d_stats.ok() && ws.ok());
    for (float* y : {d_y.get(), d_inplace.get()}) {
      DeviceBuffer<float> d_rm(in.running_mean), d_rv(in.running_var);
      ASSERT_TRUE(d_rm.ok() && d_rv.ok());
      const float* x = y == d_y.get() ? d_x.get() : d_inplace.get();
      CNN_CUDA_OK(cnnk::batchnorm_forward_training(
          g, x, d_gamma.get(), d_beta.get(), kMomentum, kEpsilon, d_rm.get(), d_rv.get(), y,
          d_stats.get(), d_stats.get() + g.c, ws.get(), ws.bytes, nullptr));
    }
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("in place", d_inplace.download(), d_y.download()));
  }
}

// Short channels need no workspace; long ones do, and a launch without enough of it is
// refused before anything runs (no device needed).
TEST(BatchNormKernel, LongChannelsNeedTheWorkspace) {
  EXPECT_EQ(cnnk::batchnorm_workspace_bytes(BatchNormGeometry{1, 3, 4096}), 0u);
  EXPECT_EQ(cnnk::batchnorm_workspace_bytes(BatchNormGeometry{0, 3, 5000}), 0u);
  EXPECT_EQ(cnnk::batchnorm_workspace_bytes(BatchNormGeometry{4, 0, 5000}), 0u);
  const BatchNormGeometry g{1, 3, 4097};
  const size_t need = cnnk::batchnorm_workspace_bytes(g);
  ASSERT_GT(need, 0u);
  // The same shape's backward and forward share one size; more channels need more.
  EXPECT_GT(cnnk::batchnorm_workspace_bytes(BatchNormGeometry{1, 4, 4097}), need);
  float* fake = reinterpret_cast<float*>(uintptr_t{256});     // never dereferenced
  float* fake_dx = reinterpret_cast<float*>(uintptr_t{512});  // (dx may not alias x or dy)
  for (const auto& [ws, bytes] :
       {std::pair<void*, size_t>{fake, need - 1}, std::pair<void*, size_t>{nullptr, need}}) {
    EXPECT_EQ(cnnk::batchnorm_forward_training(g, fake, fake, fake, kMomentum, kEpsilon, fake, fake,
                                               fake, fake, fake, ws, bytes, nullptr),
              cudaErrorInvalidValue);
    EXPECT_EQ(cnnk::batchnorm_backward(g, fake, fake, fake, fake, fake, fake_dx, fake, fake, ws,
                                       bytes, nullptr),
              cudaErrorInvalidValue);
  }
}

// The backward's x, dy and dx are __restrict__ in the kernels: an in-place call is refused
// before anything runs, on short channels and long ones (no device needed).
TEST(BatchNormKernel, BackwardRefusesDxAliasingItsInputs) {
  float* x = reinterpret_cast<float*>(uintptr_t{256});  // never dereferenced
  float* dy = reinterpret_cast<float*>(uintptr_t{512});
  float* other = reinterpret_cast<float*>(uintptr_t{1024});
  for (const BatchNormGeometry& g : {BatchNormGeometry{2, 3, 16}, BatchNormGeometry{1, 3, 4097}}) {
    const size_t bytes = cnnk::batchnorm_workspace_bytes(g);
    void* ws = bytes ? other : nullptr;
    for (float* dx : {x, dy})
      EXPECT_EQ(cnnk::batchnorm_backward(g, x, dy, other, other, other, dx, other, other, ws, bytes,
                                         nullptr),
                cudaErrorInvalidValue)
          << "spatial " << g.spatial << (dx == x ? ", dx == x" : ", dx == dy");
  }
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
                                               d_mean.get(), d_invstd.get(), nullptr, 0, nullptr));
  CNN_CUDA_OK(cnnk::batchnorm_backward(g, nullptr, nullptr, d_gamma.get(), d_mean.get(),
                                       d_invstd.get(), nullptr, d_dgamma.get(), d_dbeta.get(),
                                       nullptr, 0, nullptr));
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
  EXPECT_EQ(
      cnnk::batchnorm_forward_training(g, nullptr, nullptr, nullptr, kMomentum, kEpsilon, nullptr,
                                       nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
      cudaSuccess);
  EXPECT_EQ(cnnk::batchnorm_forward_inference(g, nullptr, nullptr, nullptr, nullptr, nullptr,
                                              kEpsilon, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::batchnorm_backward(g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                     nullptr, nullptr, nullptr, 0, nullptr),
            cudaSuccess);
}

}  // namespace
}  // namespace cnn
