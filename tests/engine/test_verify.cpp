// verify_model, with the CPU's OpenBLAS path as the candidate: the same comparison the
// GPU kernels get, runnable on any machine.
#include <gtest/gtest.h>

#include "engine/backend/cpu_backend.h"
#include "engine/train/verify.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

Dataset batch_of(int64_t n) {
  const std::string dir = testing::real_fashion_mnist_dir();
  if (dir.empty()) {
    // Without the real data: random images; the model zoo takes 1x28x28.
    Dataset d;
    d.images = Tensor::empty_host(Shape{n, 1, 28, 28});
    d.labels = Tensor::empty_host(Shape{n});
    Rng rng(3);
    for (int64_t i = 0; i < d.images.numel(); ++i)
      d.images.host()[i] = static_cast<float>(rng.uniform());
    for (int64_t i = 0; i < n; ++i) d.labels.host()[i] = static_cast<float>(i % 10);
    return d;
  }
  return take_first(load_dataset_dir(dir).train, n);
}

TEST(Verify, OpenBlasPathMatchesTheReferenceOnEverySeedModelsLayers) {
  const Dataset b = batch_of(4);
  for (const char* model : {"mnist-cnn", "mnist-functional", "fashion-cnn"}) {
    CpuBackend reference(true), candidate(false);
    const auto rows = verify_model(model, reference, candidate, b.images, b.labels);
    ASSERT_FALSE(rows.empty());
    int forward = 0, input_grad = 0, weight_grad = 0;
    for (const VerifyRow& r : rows) {
      EXPECT_TRUE(r.ok) << model << " " << r.layer << " " << r.pass << " " << r.param << " max_rel "
                        << r.max_rel << " off " << r.off;
      if (r.pass == "forward") {
        EXPECT_LT(r.max_rel, 1e-5) << r.layer;
      }
      forward += r.pass == "forward";
      input_grad += r.pass == "input_grad";
      weight_grad += r.pass == "weight_grad";
    }
    EXPECT_GT(forward, 0);
    EXPECT_GT(input_grad, 0);
    EXPECT_GT(weight_grad, 0);
  }
}

TEST(Verify, ATightToleranceFlagsTheRoundingDifferences) {
  // The two paths round differently (sums in another order): with a zero tolerance the
  // comparison must see it, which shows it compares real values.
  const Dataset b = batch_of(2);
  CpuBackend reference(true), candidate(false);
  VerifyOptions opt;
  opt.forward_tolerance = 0.0;
  const auto rows = verify_model("mnist-cnn", reference, candidate, b.images, b.labels, opt);
  bool any_forward_failed = false;
  for (const VerifyRow& r : rows)
    if (r.pass == "forward" && !r.ok) any_forward_failed = true;
  EXPECT_TRUE(any_forward_failed);
}

}  // namespace
}  // namespace cnn
