// Softmax cross-entropy reference: values, gradients, accuracy counts, bad labels.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/loss/softmax_xent.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::poisoned;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

TEST(SoftmaxXentRef, KnownValues) {
  // Equal logits: -log(1 / classes) per row.
  const LossGeometry g{3, 4};
  const std::vector<double> logits(12, 0.7), labels = {0, 3, 2};
  std::vector<double> d = poisoned<double>(12);
  int64_t correct = -1;
  const double loss =
      ref::softmax_xent_sparse<double>(g, logits.data(), labels.data(), 1.0, d.data(), &correct);
  EXPECT_NEAR(loss, 3.0 * std::log(4.0), 1e-14);
  EXPECT_EQ(correct, 1);  // ties go to class 0; only row 0's label is 0
  for (size_t i = 0; i < 12; ++i) {
    const bool hot = (i == 0) || (i == 4 + 3) || (i == 8 + 2);
    EXPECT_NEAR(d[i], 0.25 - (hot ? 1.0 : 0.0), 1e-15) << i;
  }
  // Two classes, logits (0, log 3): softmax (1/4, 3/4).
  const LossGeometry g2{1, 2};
  const std::vector<double> z = {0.0, std::log(3.0)}, label1 = {1}, label0 = {0};
  EXPECT_NEAR(ref::softmax_xent_sparse<double>(g2, z.data(), label1.data(), 1.0, nullptr, nullptr),
              -std::log(0.75), 1e-15);
  EXPECT_NEAR(ref::softmax_xent_sparse<double>(g2, z.data(), label0.data(), 1.0, nullptr, nullptr),
              -std::log(0.25), 1e-15);
  const std::vector<double> soft = {0.5, 0.5};
  EXPECT_NEAR(ref::softmax_xent_dense<double>(g2, z.data(), soft.data(), 1.0, nullptr, nullptr),
              -0.5 * std::log(0.25) - 0.5 * std::log(0.75), 1e-15);
}

TEST(SoftmaxXentRef, StableForLargeLogits) {
  const LossGeometry g{1, 3};
  const std::vector<float> z = {1000.0f, 0.0f, -1000.0f}, label = {0.0f}, wrong = {1.0f};
  std::vector<float> d = poisoned<float>(3);
  EXPECT_EQ(ref::softmax_xent_sparse<float>(g, z.data(), label.data(), 1.0f, d.data(), nullptr),
            0.0);
  EXPECT_TRUE(test::all_equal("d", d, std::vector<float>{0, 0, 0}));
  EXPECT_NEAR(ref::softmax_xent_sparse<float>(g, z.data(), wrong.data(), 1.0f, d.data(), nullptr),
              1000.0, 1e-9);
  EXPECT_TRUE(test::all_equal("d", d, std::vector<float>{1, -1, 0}));
}

TEST(SoftmaxXentRef, GradientsMatchFiniteDifferences) {
  const LossGeometry g{5, 7};
  std::vector<double> logits = test::random_values(sz(g.rows * g.classes), 801, -3.0, 3.0);
  const std::vector<double> labels = {0, 6, 3, 3, 1};
  // Dense targets: a probability distribution per row.
  std::vector<double> targets = test::random_values(logits.size(), 802, 0.0, 1.0);
  for (int64_t r = 0; r < g.rows; ++r) {
    double sum = 0.0;
    for (int64_t j = 0; j < g.classes; ++j) sum += targets[sz(r * g.classes + j)];
    for (int64_t j = 0; j < g.classes; ++j) targets[sz(r * g.classes + j)] /= sum;
  }
  {
    SCOPED_TRACE("sparse");
    std::vector<double> d = poisoned<double>(logits.size());
    ref::softmax_xent_sparse<double>(g, logits.data(), labels.data(), 1.0, d.data(), nullptr);
    const auto loss = [&] {
      return ref::softmax_xent_sparse<double>(g, logits.data(), labels.data(), 1.0, nullptr,
                                              nullptr);
    };
    EXPECT_TRUE(test::gradients_match("dlogits", d, test::numeric_gradient(logits, loss)));
  }
  {
    SCOPED_TRACE("dense");
    std::vector<double> d = poisoned<double>(logits.size());
    ref::softmax_xent_dense<double>(g, logits.data(), targets.data(), 1.0, d.data(), nullptr);
    const auto loss = [&] {
      return ref::softmax_xent_dense<double>(g, logits.data(), targets.data(), 1.0, nullptr,
                                             nullptr);
    };
    EXPECT_TRUE(test::gradients_match("dlogits", d, test::numeric_gradient(logits, loss)));
  }
}

TEST(SoftmaxXentRef, GradScaleScalesTheGradientOnly) {
  const LossGeometry g{4, 3};
  const std::vector<float> z = test::cast_all<float>(test::random_values(12, 5));
  const std::vector<float> labels = {2, 0, 1, 1};
  std::vector<float> d1 = poisoned<float>(12), d4 = poisoned<float>(12);
  const double l1 =
      ref::softmax_xent_sparse<float>(g, z.data(), labels.data(), 1.0f, d1.data(), nullptr);
  const double l4 =
      ref::softmax_xent_sparse<float>(g, z.data(), labels.data(), 0.25f, d4.data(), nullptr);
  EXPECT_EQ(l1, l4);
  for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(d4[i], 0.25f * d1[i], 1e-7f);
}

TEST(SoftmaxXentRef, CountsCorrectRows) {
  const LossGeometry g{4, 3};
  const std::vector<float> z = {3,  1,  2,    // argmax 0
                                0,  5,  5,    // tie: argmax 1 (first)
                                1,  1,  9,    // argmax 2
                                -1, -2, -3};  // argmax 0
  const std::vector<float> labels = {0, 2, 2, 1};
  int64_t correct = -1;
  ref::softmax_xent_sparse<float>(g, z.data(), labels.data(), 1.0f, nullptr, &correct);
  EXPECT_EQ(correct, 2);
  // Dense targets: compared by their argmax.
  const std::vector<float> t = {1, 0, 0, 0, 1, 0, 0.2f, 0.3f, 0.5f, 0, 0, 1};
  ref::softmax_xent_dense<float>(g, z.data(), t.data(), 1.0f, nullptr, &correct);
  EXPECT_EQ(correct, 3);
}

TEST(SoftmaxXentRef, LabelOutsideTheClassesThrowsDataError) {
  const LossGeometry g{2, 3};
  const std::vector<float> z(6, 0.0f);
  for (float bad : {-1.0f, 3.0f, 1.5f, 100.0f, NAN}) {
    const std::vector<float> labels = {0.0f, bad};
    try {
      ref::softmax_xent_sparse<float>(g, z.data(), labels.data(), 1.0f, nullptr, nullptr);
      ADD_FAILURE() << "no error for label " << bad;
    } catch (const DataError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("row 1"), std::string::npos) << m;
      EXPECT_NE(m.find("[0, 3)"), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace cnn
