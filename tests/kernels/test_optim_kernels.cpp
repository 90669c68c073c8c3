// Optimizer kernels against cnn::ref::*_update. The kernels perform the reference's float
// operations one by one, each correctly rounded and none fused into an fma, so a few
// steps of every optimizer must agree bit for bit on parameters and state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnk/optim.h"
#include "engine/ops/optim/optim_update.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

// An odd size, several grid-stride rounds' worth for small grids, plus a tiny one.
const std::vector<int64_t> kSizes = {1, 10007, 1'413'834};
constexpr int kSteps = 3;

std::vector<float> values(int64_t n, uint64_t seed, double lo, double hi) {
  return test::cast_all<float>(test::random_values(static_cast<size_t>(n), seed, lo, hi));
}

// The gradient of step `step`: fresh values every step, so the state evolves.
std::vector<float> gradient(int64_t n, uint64_t seed, int step) {
  return values(n, seed + 100 * static_cast<uint64_t>(step), -1.0, 1.0);
}

void check_sgd(const SgdHyper& h) {
  uint64_t seed = 6100;
  for (const int64_t n : kSizes) {
    SCOPED_TRACE(::testing::Message() << "n " << n << " lr " << h.lr << " momentum " << h.momentum
                                      << (h.nesterov ? " nesterov" : ""));
    seed += 1000;
    std::vector<float> w = values(n, seed, -1.0, 1.0), vel(static_cast<size_t>(n), 0.f);
    DeviceBuffer<float> d_w(w), d_v(vel), d_g(static_cast<size_t>(n));
    ASSERT_TRUE(d_w.ok() && d_v.ok() && d_g.ok());
    for (int step = 1; step <= kSteps; ++step) {
      const std::vector<float> g = gradient(n, seed, step);
      ref::sgd_update(n, h, w.data(), g.data(), h.momentum == 0.f ? nullptr : vel.data());
      CNN_CUDA_OK(d_g.upload(g));
      // With momentum 0 the velocity may be null.
      CNN_CUDA_OK(cnnk::sgd_update(n, h.lr, h.momentum, h.nesterov, d_w.get(), d_g.get(),
                                   h.momentum == 0.f ? nullptr : d_v.get(), nullptr));
    }
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("w", d_w.download(), w));
    EXPECT_TRUE(test::all_equal("velocity", d_v.download(), vel));
  }
}

TEST(OptimKernel, SgdMatchesReferenceBitForBit) {
  CNN_REQUIRE_GPU();
  SgdHyper h;
  h.lr = 0.01f;
  for (const float momentum : {0.f, 0.9f})
    for (const bool nesterov : {false, true}) {
      h.momentum = momentum;
      h.nesterov = nesterov;
      check_sgd(h);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

TEST(OptimKernel, AdamMatchesReferenceBitForBit) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 6300;
  for (const AdamHyper& h : {AdamHyper{}, AdamHyper{3e-2f, 0.8f, 0.99f, 1e-4f}})
    for (const int64_t n : kSizes) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " lr " << h.lr << " beta1 " << h.beta1
                                        << " beta2 " << h.beta2 << " eps " << h.epsilon);
      seed += 1000;
      std::vector<float> w = values(n, seed, -1.0, 1.0), m(static_cast<size_t>(n), 0.f),
                         v(static_cast<size_t>(n), 0.f);
      DeviceBuffer<float> d_w(w), d_m(m), d_v(v), d_g(static_cast<size_t>(n));
      ASSERT_TRUE(d_w.ok() && d_m.ok() && d_v.ok() && d_g.ok());
      for (int step = 1; step <= kSteps; ++step) {
        const std::vector<float> g = gradient(n, seed, step);
        ref::adam_update(n, h, step, w.data(), g.data(), m.data(), v.data());
        // The caller's step size, computed as the reference computes its alpha.
        const double t = static_cast<double>(step);
        const float step_size = static_cast<float>(
            static_cast<double>(h.lr) * std::sqrt(1.0 - std::pow(static_cast<double>(h.beta2), t)) /
            (1.0 - std::pow(static_cast<double>(h.beta1), t)));
        CNN_CUDA_OK(d_g.upload(g));
        CNN_CUDA_OK(cnnk::adam_update(n, step_size, h.beta1, h.beta2, h.epsilon, d_w.get(),
                                      d_g.get(), d_m.get(), d_v.get(), nullptr));
      }
      CNN_CUDA_OK(test::sync_status());
      EXPECT_TRUE(test::all_equal("w", d_w.download(), w));
      EXPECT_TRUE(test::all_equal("m", d_m.download(), m));
      EXPECT_TRUE(test::all_equal("v", d_v.download(), v));
    }
}

TEST(OptimKernel, RmspropMatchesReferenceBitForBit) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 6500;
  for (const RmspropHyper& h : {RmspropHyper{}, RmspropHyper{1e-2f, 0.95f, 1e-5f}})
    for (const int64_t n : kSizes) {
      SCOPED_TRACE(::testing::Message()
                   << "n " << n << " lr " << h.lr << " rho " << h.rho << " eps " << h.epsilon);
      seed += 1000;
      std::vector<float> w = values(n, seed, -1.0, 1.0), v = values(n, seed + 1, 0.0, 0.1);
      DeviceBuffer<float> d_w(w), d_v(v), d_g(static_cast<size_t>(n));
      ASSERT_TRUE(d_w.ok() && d_v.ok() && d_g.ok());
      for (int step = 1; step <= kSteps; ++step) {
        const std::vector<float> g = gradient(n, seed, step);
        ref::rmsprop_update(n, h, w.data(), g.data(), v.data());
        CNN_CUDA_OK(d_g.upload(g));
        CNN_CUDA_OK(cnnk::rmsprop_update(n, h.lr, h.rho, h.epsilon, d_w.get(), d_g.get(), d_v.get(),
                                         nullptr));
      }
      CNN_CUDA_OK(test::sync_status());
      EXPECT_TRUE(test::all_equal("w", d_w.download(), w));
      EXPECT_TRUE(test::all_equal("v", d_v.download(), v));
    }
}

// One-cycle changes SGD's momentum and Adam's beta1 every step: the kernels follow the
// reference step by step with each step's value, read from device memory as a captured
// step reads it.
TEST(OptimKernel, AMomentumThatChangesEveryStepMatchesTheReference) {
  CNN_REQUIRE_GPU();
  const int64_t n = 10007;
  const size_t un = static_cast<size_t>(n);
  const float momenta[] = {0.95f, 0.85f, 0.9f, 0.0f, 0.925f};
  DeviceBuffer<float> d_mu(1);
  ASSERT_TRUE(d_mu.ok());
  const cnnk::Live<float> live_mu(-1.0f, d_mu.get());
  for (const bool adam : {false, true}) {
    SCOPED_TRACE(adam ? "adam" : "sgd nesterov");
    const uint64_t seed = adam ? 6700 : 6600;
    std::vector<float> w = values(n, seed, -1.0, 1.0), s1(un, 0.f), s2(un, 0.f);
    DeviceBuffer<float> d_w(w), d_s1(s1), d_s2(s2), d_g(un);
    ASSERT_TRUE(d_w.ok() && d_s1.ok() && d_s2.ok() && d_g.ok());
    int step = 0;
    for (const float mu : momenta) {
      ++step;
      const std::vector<float> g = gradient(n, seed, step);
      CNN_CUDA_OK(d_g.upload(g));
      CNN_CUDA_OK(d_mu.upload(std::vector<float>{mu}));
      if (adam) {
        const AdamHyper h{1e-2f, mu, 0.999f, 1e-7f};
        const float step_size = adam_step_size(h, step);
        ref::adam_apply(n, h, step_size, w.data(), g.data(), s1.data(), s2.data());
        CNN_CUDA_OK(cnnk::adam_update(n, step_size, live_mu, h.beta2, h.epsilon, d_w.get(),
                                      d_g.get(), d_s1.get(), d_s2.get(), nullptr));
      } else {
        const SgdHyper h{1e-2f, mu, true};
        ref::sgd_update(n, h, w.data(), g.data(), s1.data());
        CNN_CUDA_OK(cnnk::sgd_update(n, h.lr, live_mu, h.nesterov, d_w.get(), d_g.get(), d_s1.get(),
                                     nullptr));
      }
    }
    CNN_CUDA_OK(test::sync_status());
    EXPECT_TRUE(test::all_equal("w", d_w.download(), w));
    EXPECT_TRUE(test::all_equal("state", d_s1.download(), s1));
  }
}

// Empty parameter buffers launch nothing (no device needed).
TEST(OptimKernel, EmptyBuffersLaunchNothing) {
  EXPECT_EQ(cnnk::sgd_update(0, 0.1f, 0.9f, true, nullptr, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(
      cnnk::adam_update(0, 1e-3f, 0.9f, 0.999f, 1e-7f, nullptr, nullptr, nullptr, nullptr, nullptr),
      cudaSuccess);
  EXPECT_EQ(cnnk::rmsprop_update(0, 1e-3f, 0.9f, 1e-7f, nullptr, nullptr, nullptr, nullptr),
            cudaSuccess);
}

}  // namespace
}  // namespace cnn
