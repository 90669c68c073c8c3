// The step scalars (cnnk/step.h): a kernel given a Live value that points into device
// memory reads what is there when it runs, and computes exactly what it computes from the
// same value passed at launch. This is what lets a training step captured once into a
// CUDA graph see a new batch, step count and learning rate on every replay.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cnnk/augment.h"
#include "cnnk/dropout.h"
#include "cnnk/optim.h"
#include "cnnk/step.h"
#include "cnnk/tensor_ops.h"
#include "engine/ops/augment/augment.h"
#include "engine/ops/dropout/dropout.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

// One StepScalars in device memory, written by the kernel under test's sibling.
struct DeviceStep {
  DeviceBuffer<cnnk::StepScalars> buf{1};
  cudaError_t store(const cnnk::StepScalars& s) {
    return cnnk::store_step_scalars(s, buf.get(), nullptr);
  }
  const cnnk::StepScalars* get() const { return buf.get(); }
};

TEST(StepKernels, StoreWritesTheWholeBlock) {
  CNN_REQUIRE_GPU();
  DeviceStep step;
  ASSERT_TRUE(step.buf.ok());
  const int32_t dummy = 0;
  const cnnk::StepScalars want{&dummy, 123456789012LL, 0.0625f, 0.875f};
  CNN_CUDA_OK(step.store(want));
  CNN_CUDA_OK(test::sync_status());
  const std::vector<cnnk::StepScalars> got = step.buf.download();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rows, want.rows);
  EXPECT_EQ(got[0].iteration, want.iteration);
  EXPECT_EQ(got[0].rate, want.rate);
  EXPECT_EQ(got[0].momentum, want.momentum);
}

TEST(StepKernels, GatherReadsItsRowsFromTheStep) {
  CNN_REQUIRE_GPU();
  const int64_t rows = 9, row_len = 5, count = 4;
  std::vector<float> src(static_cast<size_t>(rows * row_len));
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
  const std::vector<int32_t> order = {8, 3, 3, 0, 7, 1, 2, 6, 5};
  DeviceBuffer<float> d_src(src), d_dst(static_cast<size_t>(count * row_len));
  DeviceBuffer<int32_t> d_order(order);
  DeviceStep step;
  ASSERT_TRUE(d_src.ok() && d_dst.ok() && d_order.ok() && step.buf.ok());
  for (const int64_t begin : {int64_t{0}, int64_t{5}, int64_t{2}}) {
    CNN_CUDA_OK(step.store({d_order.get() + begin, 0, 0.0f}));
    const cnnk::Live<const int32_t*> live_rows(nullptr, &step.get()->rows);
    CNN_CUDA_OK(cnnk::gather_rows(d_src.get(), row_len, live_rows, count, d_dst.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    const std::vector<float> got = d_dst.download();
    for (int64_t i = 0; i < count; ++i)
      for (int64_t k = 0; k < row_len; ++k)
        ASSERT_EQ(got[static_cast<size_t>(i * row_len + k)],
                  src[static_cast<size_t>(order[static_cast<size_t>(begin + i)] * row_len + k)])
            << "batch from " << begin << ", row " << i;
  }
}

TEST(StepKernels, DropoutAndAugmentDrawFromTheLiveStep) {
  CNN_REQUIRE_GPU();
  const cnnk::DropoutGeometry dg{3, 5, 7, false};
  cnnk::AugmentGeometry ag;
  ag.n = 6;
  ag.c = 1;
  ag.h = 9;
  ag.w = 9;
  ag.flip = true;
  ag.max_shift = 2;
  const size_t dn = static_cast<size_t>(dg.size()), an = static_cast<size_t>(ag.size());
  const std::vector<float> x = test::cast_all<float>(test::random_values(dn, 3, -1.0, 1.0));
  const std::vector<float> img = test::cast_all<float>(test::random_values(an, 4, -1.0, 1.0));
  DeviceBuffer<float> d_x(x), d_y(dn), d_mask(dn), d_img(img), d_aug(an);
  DeviceStep step;
  ASSERT_TRUE(d_x.ok() && d_y.ok() && d_mask.ok() && d_img.ok() && d_aug.ok() && step.buf.ok());
  for (const int64_t iteration : {int64_t{0}, int64_t{1}, int64_t{977}}) {
    CNN_CUDA_OK(step.store({nullptr, iteration, 0.0f}));
    const cnnk::Live<int64_t> live(-1, &step.get()->iteration);  // -1: must not be used
    const cnnk::StepSeed drop_seed{42, 7, live}, aug_seed{42, 8, live};
    CNN_CUDA_OK(
        cnnk::dropout_forward(dg, 0.4f, drop_seed, d_x.get(), d_y.get(), d_mask.get(), nullptr));
    CNN_CUDA_OK(cnnk::augment(ag, aug_seed, d_img.get(), d_aug.get(), nullptr));
    CNN_CUDA_OK(test::sync_status());
    std::vector<float> y(dn), mask(dn), aug(an);
    ref::dropout_forward<float>(dg, 0.4f, cnnk::StepSeed{42, 7, iteration}.value(), x.data(),
                                y.data(), mask.data());
    ref::augment(ag, cnnk::StepSeed{42, 8, iteration}.value(), img.data(), aug.data());
    EXPECT_TRUE(test::all_equal("mask", d_mask.download(), mask)) << "iteration " << iteration;
    EXPECT_TRUE(test::all_equal("augmented", d_aug.download(), aug)) << "iteration " << iteration;
  }
}

TEST(StepKernels, OptimizersReadTheirRateAndMomentumFromTheStep) {
  CNN_REQUIRE_GPU();
  const int64_t n = 1000;
  const size_t un = static_cast<size_t>(n);
  const std::vector<float> w0 = test::cast_all<float>(test::random_values(un, 5, -1.0, 1.0));
  const std::vector<float> g = test::cast_all<float>(test::random_values(un, 6, -1.0, 1.0));
  DeviceStep step;
  ASSERT_TRUE(step.buf.ok());
  const float rate = 0.0125f, momentum = 0.8f;
  CNN_CUDA_OK(step.store({nullptr, 0, rate, momentum}));
  // -1: a kernel that used the value instead of reading the step would move differently.
  const cnnk::Live<float> live_rate(-1.0f, &step.get()->rate);
  const cnnk::Live<float> live_momentum(-1.0f, &step.get()->momentum);
  // Each optimizer twice from the same start: the rate and momentum (SGD's, Adam's beta1)
  // as values, then from the step.
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<std::vector<float>> results;
    for (const bool from_step : {false, true}) {
      const cnnk::Live<float> r = from_step ? live_rate : cnnk::Live<float>(rate);
      const cnnk::Live<float> mu = from_step ? live_momentum : cnnk::Live<float>(momentum);
      DeviceBuffer<float> d_w(w0), d_g(g), d_s1(std::vector<float>(un, 0.1f)),
          d_s2(std::vector<float>(un, 0.2f));
      ASSERT_TRUE(d_w.ok() && d_g.ok() && d_s1.ok() && d_s2.ok());
      if (kind == 0)
        CNN_CUDA_OK(cnnk::sgd_update(n, r, mu, true, d_w.get(), d_g.get(), d_s1.get(), nullptr));
      else if (kind == 1)
        CNN_CUDA_OK(cnnk::adam_update(n, r, mu, 0.999f, 1e-7f, d_w.get(), d_g.get(), d_s1.get(),
                                      d_s2.get(), nullptr));
      else
        CNN_CUDA_OK(
            cnnk::rmsprop_update(n, r, 0.9f, 1e-7f, d_w.get(), d_g.get(), d_s1.get(), nullptr));
      CNN_CUDA_OK(test::sync_status());
      results.push_back(d_w.download());
    }
    EXPECT_TRUE(test::all_equal("w", results[1], results[0])) << "optimizer " << kind;
    EXPECT_NE(results[0], w0) << "optimizer " << kind << " did not move the weights";
  }
}

}  // namespace
}  // namespace cnn
