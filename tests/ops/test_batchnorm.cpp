// BatchNormalization reference: gradients, running statistics, inference.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/ops/batchnorm/batchnorm.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using cnnk::BatchNormGeometry;
using test::poisoned;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

constexpr double kMomentum = 0.99, kEpsilon = 1e-3;

TEST(BatchNormRef, TrainingGradientsMatchFiniteDifferences) {
  uint64_t seed = 600;
  // NCHW with spatial maps, and [N, C] after a Dense layer (spatial 1).
  for (const BatchNormGeometry& g :
       {BatchNormGeometry{3, 4, 6}, BatchNormGeometry{5, 3, 1}, BatchNormGeometry{2, 2, 9}}) {
    SCOPED_TRACE(testing::Message() << "n " << g.n << " c " << g.c << " spatial " << g.spatial);
    seed += 4;
    std::vector<double> x = test::random_values(sz(g.size()), seed, -2.0, 3.0);
    std::vector<double> gamma = test::random_values(sz(g.c), seed + 1, 0.5, 1.5);
    std::vector<double> beta = test::random_values(sz(g.c), seed + 2);
    const std::vector<double> dy = test::random_values(sz(g.size()), seed + 3);
    std::vector<double> y(x.size()), save_mean(sz(g.c)), save_invstd(sz(g.c));
    const auto loss = [&] {
      std::vector<double> rm(sz(g.c), 0.0), rv(sz(g.c), 1.0);
      ref::batchnorm_forward_training<double>(g, x.data(), gamma.data(), beta.data(), kMomentum,
                                              kEpsilon, rm.data(), rv.data(), y.data(),
                                              save_mean.data(), save_invstd.data());
      return test::dot(y, dy);
    };
    loss();  // saves the statistics of the unperturbed x
    const std::vector<double> mean = save_mean, invstd = save_invstd;
    std::vector<double> dx = poisoned<double>(x.size()), dgamma = poisoned<double>(sz(g.c)),
                        dbeta = poisoned<double>(sz(g.c));
    ref::batchnorm_backward<double>(g, x.data(), dy.data(), gamma.data(), mean.data(),
                                    invstd.data(), dx.data(), dgamma.data(), dbeta.data());
    EXPECT_TRUE(test::gradients_match("dx", dx, test::numeric_gradient(x, loss)));
    EXPECT_TRUE(test::gradients_match("dgamma", dgamma, test::numeric_gradient(gamma, loss)));
    EXPECT_TRUE(test::gradients_match("dbeta", dbeta, test::numeric_gradient(beta, loss)));
  }
}

TEST(BatchNormRef, TrainingForwardAndRunningStatistics) {
  // One channel of a known batch, one channel of a constant, spatial 2.
  const BatchNormGeometry g{3, 2, 2};
  // Channel 0 holds 1..6, channel 1 holds 4 everywhere.
  const std::vector<double> x = {1, 2, 4, 4, 3, 4, 4, 4, 5, 6, 4, 4};
  const std::vector<double> gamma = {2.0, 0.5}, beta = {1.0, -1.0};
  std::vector<double> rm = {0.5, 0.0}, rv = {2.0, 1.0};
  std::vector<double> y = poisoned<double>(x.size()), save_mean = poisoned<double>(2),
                      save_invstd = poisoned<double>(2);
  ref::batchnorm_forward_training<double>(g, x.data(), gamma.data(), beta.data(), kMomentum,
                                          kEpsilon, rm.data(), rv.data(), y.data(),
                                          save_mean.data(), save_invstd.data());
  // Channel 0: mean 3.5, biased variance 17.5 / 6, unbiased 17.5 / 5.
  const double var0 = 17.5 / 6.0, unbiased0 = 17.5 / 5.0;
  const double invstd0 = 1.0 / std::sqrt(var0 + kEpsilon), invstd1 = 1.0 / std::sqrt(kEpsilon);
  EXPECT_DOUBLE_EQ(save_mean[0], 3.5);
  EXPECT_DOUBLE_EQ(save_mean[1], 4.0);
  EXPECT_NEAR(save_invstd[0], invstd0, 1e-14);
  EXPECT_NEAR(save_invstd[1], invstd1, 1e-12);
  EXPECT_NEAR(rm[0], 0.99 * 0.5 + 0.01 * 3.5, 1e-15);
  EXPECT_NEAR(rm[1], 0.01 * 4.0, 1e-15);
  EXPECT_NEAR(rv[0], 0.99 * 2.0 + 0.01 * unbiased0, 1e-15);  // unbiased into running var
  EXPECT_NEAR(rv[1], 0.99 * 1.0, 1e-15);
  const double channel0[] = {1, 2, 3, 4, 5, 6};
  const size_t where0[] = {0, 1, 4, 5, 8, 9};
  for (int i = 0; i < 6; ++i)
    EXPECT_NEAR(y[where0[i]], 2.0 * (channel0[i] - 3.5) * invstd0 + 1.0, 1e-12);
  for (size_t i : {2u, 3u, 6u, 7u, 10u, 11u}) EXPECT_DOUBLE_EQ(y[i], -1.0);  // beta only
}

TEST(BatchNormRef, RunningStatisticsConvergeToThePopulation) {
  // Repeated training steps on the same batch: running mean -> batch mean, running
  // variance -> unbiased batch variance, at the rate momentum^steps.
  const BatchNormGeometry g{4, 1, 5};
  const std::vector<double> x = test::random_values(20, 42, -1.0, 3.0);
  double mean = 0.0;
  for (double v : x) mean += v / 20.0;
  double sq = 0.0;
  for (double v : x) sq += (v - mean) * (v - mean);
  const double gamma = 1.0, beta = 0.0;
  double rm = 0.0, rv = 1.0, sm = 0.0, si = 0.0;
  std::vector<double> y(20);
  for (int step = 0; step < 100; ++step)
    ref::batchnorm_forward_training<double>(g, x.data(), &gamma, &beta, kMomentum, kEpsilon, &rm,
                                            &rv, y.data(), &sm, &si);
  const double decay = std::pow(kMomentum, 100);
  EXPECT_NEAR(rm, (1 - decay) * mean, 1e-12);
  EXPECT_NEAR(rv, decay * 1.0 + (1 - decay) * sq / 19.0, 1e-12);
}

TEST(BatchNormRef, InferenceUsesRunningStatistics) {
  const BatchNormGeometry g{2, 3, 4};
  const std::vector<double> x = test::random_values(sz(g.size()), 7);
  const std::vector<double> gamma = {1.5, -0.5, 2.0}, beta = {0.1, 0.2, 0.3};
  const std::vector<double> rm = {0.2, -0.1, 0.0}, rv = {0.5, 2.0, 1e-4};
  std::vector<double> y = poisoned<double>(x.size());
  ref::batchnorm_forward_inference<double>(g, x.data(), gamma.data(), beta.data(), rm.data(),
                                           rv.data(), kEpsilon, y.data());
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < g.c; ++c)
      for (int s = 0; s < g.spatial; ++s) {
        const size_t i = sz((static_cast<int64_t>(n) * g.c + c) * g.spatial + s);
        const size_t k = sz(c);
        EXPECT_NEAR(y[i], gamma[k] * (x[i] - rm[k]) / std::sqrt(rv[k] + kEpsilon) + beta[k], 1e-12);
      }
}

TEST(BatchNormRef, FloatMatchesDouble) {
  const BatchNormGeometry g{4, 3, 10};
  const std::vector<double> xd = test::random_values(sz(g.size()), 11, -2.0, 2.0);
  const std::vector<double> gd = test::random_values(3, 12, 0.5, 1.5),
                            bd = test::random_values(3, 13),
                            dyd = test::random_values(xd.size(), 14);
  const std::vector<float> x = test::cast_all<float>(xd), gamma = test::cast_all<float>(gd),
                           beta = test::cast_all<float>(bd), dy = test::cast_all<float>(dyd);
  std::vector<float> rm(3, 0.0f), rv(3, 1.0f), y = poisoned<float>(x.size()),
                                               sm = poisoned<float>(3), si = poisoned<float>(3);
  ref::batchnorm_forward_training<float>(g, x.data(), gamma.data(), beta.data(), 0.99f, 1e-3f,
                                         rm.data(), rv.data(), y.data(), sm.data(), si.data());
  std::vector<float> dx = poisoned<float>(x.size()), dg = poisoned<float>(3),
                     db = poisoned<float>(3);
  ref::batchnorm_backward<float>(g, x.data(), dy.data(), gamma.data(), sm.data(), si.data(),
                                 dx.data(), dg.data(), db.data());
  // The same in double, from the same float inputs.
  const std::vector<double> x2 = test::cast_all<double>(x), g2 = test::cast_all<double>(gamma),
                            b2 = test::cast_all<double>(beta), dy2 = test::cast_all<double>(dy);
  std::vector<double> rm2(3, 0.0), rv2(3, 1.0), y2(x.size()), sm2(3), si2(3), dx2(x.size()), dg2(3),
      db2(3);
  ref::batchnorm_forward_training<double>(g, x2.data(), g2.data(), b2.data(), 0.99, 1e-3,
                                          rm2.data(), rv2.data(), y2.data(), sm2.data(),
                                          si2.data());
  ref::batchnorm_backward<double>(g, x2.data(), dy2.data(), g2.data(), sm2.data(), si2.data(),
                                  dx2.data(), dg2.data(), db2.data());
  const std::vector<double> tol = {1e-5};
  EXPECT_TRUE(test::within_bounds("y", y, y2, tol));
  EXPECT_TRUE(test::within_bounds("running mean", rm, rm2, tol));
  EXPECT_TRUE(test::within_bounds("running var", rv, rv2, tol));
  EXPECT_TRUE(test::within_bounds("dx", dx, dx2, tol));
  EXPECT_TRUE(test::within_bounds("dgamma", dg, dg2, {1e-4}));
  EXPECT_TRUE(test::within_bounds("dbeta", db, db2, {1e-4}));
}

}  // namespace
}  // namespace cnn
