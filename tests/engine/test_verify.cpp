// verify_model, with the CPU's OpenBLAS path as the candidate: the same comparison the
// GPU kernels get, runnable on any machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

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

// Every layer on its own and the chained run, on the seed models and on the zoo's branched
// ones, where a tensor feeds several layers (resnet-small's residual adds,
// inception-small's four branches): each layer's row holds its own part of that tensor's
// gradient, not the sum the chained run keeps.
TEST(Verify, OpenBlasPathMatchesTheReferenceOnEverySeedModelsLayers) {
  const Dataset b = batch_of(4);
  for (const char* model :
       {"mnist-cnn", "mnist-functional", "fashion-cnn", "resnet-small", "inception-small"}) {
    CpuBackend reference(true), candidate(false);
    const auto rows = verify_model(model, reference, candidate, b.images, b.labels);
    ASSERT_FALSE(rows.empty());
    int forward = 0, input_grad = 0, weight_grad = 0, chained = 0;
    for (const VerifyRow& r : rows) {
      chained += r.layer == "(model)";
      EXPECT_TRUE(r.ok) << model << " " << r.layer << " " << r.pass << " " << r.param << " max_rel "
                        << r.max_rel << " off " << r.off;
      if (r.pass == "forward") {
        EXPECT_LT(r.max_rel, 1e-5) << r.layer;
      }
      forward += r.pass == "forward";
      input_grad += r.pass == "input_grad";
      weight_grad += r.pass == "weight_grad";
    }
    EXPECT_EQ(chained, 2);
    EXPECT_EQ(rows.back().pass, "weight_grad");
    EXPECT_LT(rows.back().rel_l2, 1e-5) << model;
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
  opt.chain_tolerance = 0.0;
  const auto rows = verify_model("mnist-cnn", reference, candidate, b.images, b.labels, opt);
  bool any_layer_forward_failed = false;
  int chained_failed = 0;
  for (const VerifyRow& r : rows) {
    if (r.layer != "(model)" && r.pass == "forward" && !r.ok) any_layer_forward_failed = true;
    if (r.layer == "(model)" && !r.ok) ++chained_failed;
  }
  EXPECT_TRUE(any_layer_forward_failed);
  EXPECT_EQ(chained_failed, 2);  // the logits and the weight gradients
}

// A 1x1x4x4 input with 2x2 windows (stride 2): window (0,0) ties three ways at 0 (ReLU
// zeros), window (0,1) has one maximum, window (1,0) ties two ways at 5 and window (1,1)
// four ways at 1.
struct TiedPool {
  cnnk::Pool2dGeometry g;
  Tensor x = Tensor::empty_host(Shape{1, 1, 4, 4}), y = Tensor::empty_host(Shape{1, 1, 2, 2});
  TiedPool() {
    g.n = g.c = 1, g.h = g.w = 4, g.p = g.q = 2;
    const float v[16] = {0, 0,  1, 2,  //
                         0, -1, 3, 1,  //
                         5, 2,  1, 1,  //
                         4, 5,  1, 1};
    std::copy(v, v + 16, x.host());
    const float top[4] = {0, 3, 5, 1};
    std::copy(top, top + 4, y.host());
  }
  // dx with each window's gradient dy[o] = o + 1 at the input `pick` chooses among its
  // window's 4 (0: the first in row-major order).
  Tensor dx(const std::function<int(int window)>& pick) const {
    Tensor d = Tensor::empty_host(x.shape());
    std::fill(d.host(), d.host() + 16, 0.f);
    for (int o = 0; o < 4; ++o) {
      const int at = pick(o), h = 2 * (o / 2) + at / 2, w = 2 * (o % 2) + at % 2;
      d.host()[h * 4 + w] += static_cast<float>(o + 1);
    }
    return d;
  }
};

TEST(VerifyMaxPoolTies, InputsTyingInAWindowAreOneGroup) {
  const TiedPool t;
  const TieGroups groups = max_pool_tie_groups(t.g, t.x.host(), t.y.host());
  ASSERT_EQ(groups.size(), 16u);
  auto same = [&](int a, int b) { return groups[size_t(a)] == groups[size_t(b)]; };
  EXPECT_TRUE(same(0, 1) && same(0, 4));                      // the three zeros
  EXPECT_FALSE(same(0, 5));                                   // -1 is not a maximum
  EXPECT_TRUE(same(8, 13));                                   // the two fives
  EXPECT_TRUE(same(10, 11) && same(10, 14) && same(10, 15));  // the four ones
  EXPECT_FALSE(same(6, 2) || same(6, 3) || same(6, 7));       // 3 wins alone
  EXPECT_FALSE(same(0, 8) || same(0, 10) || same(8, 10));     // windows apart
  for (int i : {2, 3, 5, 6, 7, 9, 12}) EXPECT_EQ(groups[size_t(i)], i) << i;
}

// Any choice among the tied inputs passes; one that gives a gradient to an input that is
// not a maximum fails, with the elements of its group counted off.
TEST(VerifyMaxPoolTies, AnyTiedWinnerPassesAndALoserFails) {
  const TiedPool t;
  const TieGroups groups = max_pool_tie_groups(t.g, t.x.host(), t.y.host());
  const Tensor first = t.dx([](int o) { return o == 1 ? 2 : 0; });  // (0,1): 3 at its index 2
  const Tensor last = t.dx([](int o) { return o == 0 ? 2 : o == 1 ? 2 : 3; });
  VerifyRow r = compare_tensors(first, last, 1e-6, 0.0, groups);
  EXPECT_TRUE(r.ok) << r.off;
  EXPECT_EQ(r.tie_groups, 3);
  EXPECT_EQ(r.max_abs, 0.0);
  // Element by element the two differ where the ties went elsewhere.
  const VerifyRow plain = compare_tensors(first, last, 1e-6, 0.0);
  EXPECT_FALSE(plain.ok);
  EXPECT_EQ(plain.off, 6);
  EXPECT_EQ(plain.tie_groups, 0);
  // Window (0,0)'s gradient at -1, which is no maximum: its group (the three zeros) and
  // the -1 are off, 4 elements.
  const Tensor wrong = t.dx([](int o) { return o == 0 ? 3 : o == 1 ? 2 : 0; });
  r = compare_tensors(first, wrong, 1e-6, 0.0, groups);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.off, 4);
  EXPECT_DOUBLE_EQ(r.max_abs, 1.0);
}

// Overlapping windows (3x3, stride 1) that share tied inputs make one group of them all.
TEST(VerifyMaxPoolTies, OverlappingWindowsJoinTheirTies) {
  cnnk::Pool2dGeometry g;
  g.n = g.c = 1, g.h = 1, g.w = 5, g.p = 1, g.q = 3, g.window_h = 1, g.window_w = 3;
  g.stride_h = g.stride_w = 1;
  const float x[5] = {7, 7, 0, 7, 7};
  const float y[3] = {7, 7, 7};  // windows {0,1,2}, {1,2,3}, {2,3,4}
  const TieGroups groups = max_pool_tie_groups(g, x, y);
  for (int i : {1, 3, 4}) EXPECT_EQ(groups[size_t(i)], groups[0]) << i;
  EXPECT_EQ(groups[2], 2);
}

}  // namespace
}  // namespace cnn
