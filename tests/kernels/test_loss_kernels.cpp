// Softmax cross-entropy and channel softmax kernels against cnn::ref. Both sides compute
// in double and round once to float, so the bounds are a few float ulps (scaled by the
// length of the row's reduction); the argmax, the correct counts and the row count are
// exact. Logits of small integers make ties common: the first maximum must win.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cnnk/loss.h"
#include "engine/ops/activation/activation.h"
#include "engine/ops/loss/softmax_xent.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// What the reference says, row by row.
struct Expected {
  std::vector<float> dlogits;
  std::vector<double> row_loss;
  std::vector<float> row_correct;
  double loss_sum = 0.0, abs_loss_sum = 0.0;
  int64_t correct = 0;
};

Expected reference(int64_t rows, int64_t classes, const std::vector<float>& logits,
                   const std::vector<float>& labels, bool sparse, float grad_scale,
                   const std::vector<bool>& bad = {}) {
  Expected e;
  e.dlogits.assign(sz(rows * classes), 0.f);
  e.row_loss.assign(sz(rows), 0.0);
  e.row_correct.assign(sz(rows), 0.f);
  const LossGeometry one{1, classes};
  for (int64_t r = 0; r < rows; ++r) {
    if (!bad.empty() && bad[sz(r)]) continue;  // loss 0, wrong, zero gradient
    const float* z = logits.data() + r * classes;
    float* dz = e.dlogits.data() + r * classes;
    int64_t hit = 0;
    const double loss =
        sparse ? ref::softmax_xent_sparse<float>(one, z, labels.data() + r, grad_scale, dz, &hit)
               : ref::softmax_xent_dense<float>(one, z, labels.data() + r * classes, grad_scale, dz,
                                                &hit);
    e.row_loss[sz(r)] = loss;
    e.row_correct[sz(r)] = static_cast<float>(hit);
    e.loss_sum += loss;
    e.abs_loss_sum += std::abs(loss);
    e.correct += hit;
  }
  return e;
}

// Runs the kernel (twice when `twice`, to prove the metrics accumulate) and compares.
void check(int64_t rows, int64_t classes, const std::vector<float>& logits,
           const std::vector<float>& labels, bool sparse, float grad_scale, bool with_dlogits,
           const std::vector<bool>& bad = {}) {
  SCOPED_TRACE(::testing::Message()
               << "rows " << rows << " classes " << classes << (sparse ? " sparse" : " dense")
               << (with_dlogits ? "" : " without dlogits"));
  const Expected e = reference(rows, classes, logits, labels, sparse, grad_scale, bad);
  DeviceBuffer<float> d_logits(logits), d_labels(labels), d_dlogits(logits.size()),
      d_row_loss(sz(rows)), d_row_correct(sz(rows));
  DeviceBuffer<cnnk::DeviceMetrics> d_metrics(1);
  DeviceBuffer<int> d_bad(1);
  ASSERT_TRUE(d_logits.ok() && d_labels.ok() && d_dlogits.ok() && d_row_loss.ok() &&
              d_row_correct.ok() && d_metrics.ok() && d_bad.ok());
  CNN_CUDA_OK(d_dlogits.fill_bytes(0xFF));
  CNN_CUDA_OK(d_row_loss.fill_bytes(0xFF));
  CNN_CUDA_OK(d_row_correct.fill_bytes(0xFF));
  CNN_CUDA_OK(d_metrics.fill_bytes(0));
  CNN_CUDA_OK(d_bad.fill_bytes(0));
  for (int pass = 0; pass < 2; ++pass)
    CNN_CUDA_OK(cnnk::softmax_xent(rows, classes, d_logits.get(), d_labels.get(), sparse,
                                   grad_scale, with_dlogits ? d_dlogits.get() : nullptr,
                                   d_row_loss.get(), d_row_correct.get(), d_metrics.get(),
                                   d_bad.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());

  if (with_dlogits) {
    const std::vector<double> bound = test::reduction_bounds(
        test::abs_all(test::cast_all<double>(e.dlogits)), static_cast<double>(classes),
        4.0 * 1.2e-7, 1e-7 * std::abs(static_cast<double>(grad_scale)));
    EXPECT_TRUE(test::within_bounds("dlogits", d_dlogits.download(), e.dlogits, bound));
  }
  EXPECT_TRUE(test::within_bounds(
      "row_loss", d_row_loss.download(), e.row_loss,
      test::reduction_bounds(test::abs_all(e.row_loss), static_cast<double>(classes))));
  EXPECT_TRUE(test::all_equal("row_correct", d_row_correct.download(), e.row_correct));

  const std::vector<cnnk::DeviceMetrics> m = d_metrics.download();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].count, static_cast<unsigned long long>(2 * rows));
  EXPECT_EQ(m[0].correct, static_cast<unsigned long long>(2 * e.correct));
  const double sum_bound =
      test::reduction_bounds({2.0 * e.abs_loss_sum}, static_cast<double>(rows * classes))[0];
  EXPECT_NEAR(m[0].loss_sum, 2.0 * e.loss_sum, sum_bound);
  const std::vector<int> flag = d_bad.download();
  ASSERT_EQ(flag.size(), 1u);
  bool any_bad = false;
  for (const bool b : bad) any_bad = any_bad || b;
  EXPECT_EQ(flag[0], any_bad ? 1 : 0);
}

// Logits: small integers (ties everywhere) or spread-out values with a large offset (the
// max subtraction matters).
std::vector<float> make_logits(int64_t rows, int64_t classes, uint64_t seed, bool ties) {
  if (ties) return test::small_integers(sz(rows * classes), seed, 2);
  std::vector<float> z =
      test::cast_all<float>(test::random_values(sz(rows * classes), seed, -8.0, 8.0));
  for (size_t i = 0; i < z.size(); ++i) z[i] += (i / static_cast<size_t>(classes)) % 2 ? 60.f : 0.f;
  return z;
}

const std::vector<int64_t> kRows = {1, 3, 33, 257};
const std::vector<int64_t> kClasses = {1, 3, 10, 17, 130};

TEST(SoftmaxXentKernel, SparseMatchesReference) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 8100;
  for (const int64_t rows : kRows)
    for (const int64_t classes : kClasses)
      for (const bool ties : {true, false}) {
        seed += 3;
        const std::vector<float> logits = make_logits(rows, classes, seed, ties);
        std::vector<float> labels(sz(rows));
        for (int64_t r = 0; r < rows; ++r)
          labels[sz(r)] = static_cast<float>(cnnk::random_bits(seed + 1, sz(r)) %
                                             static_cast<uint64_t>(classes));
        const float scale = 1.0f / static_cast<float>(rows);
        check(rows, classes, logits, labels, true, scale, true);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(SoftmaxXentKernel, DenseMatchesReference) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 8300;
  for (const int64_t rows : kRows)
    for (const int64_t classes : kClasses)
      for (const bool ties : {true, false}) {
        seed += 3;
        const std::vector<float> logits = make_logits(rows, classes, seed, ties);
        // Row kinds in turn: one-hot, soft with zeros, uniform (argmax is then class 0).
        std::vector<float> targets(sz(rows * classes), 0.f);
        const std::vector<double> u = test::random_values(targets.size(), seed + 1, 0.0, 1.0);
        for (int64_t r = 0; r < rows; ++r) {
          float* t = targets.data() + r * classes;
          if (r % 3 == 0) {
            t[cnnk::random_bits(seed + 2, sz(r)) % static_cast<uint64_t>(classes)] = 1.f;
          } else if (r % 3 == 1) {
            double total = 0.0;
            for (int64_t j = 0; j < classes; ++j) {
              const double v = u[sz(r * classes + j)];
              total += v < 0.3 ? 0.0 : v;
            }
            for (int64_t j = 0; j < classes; ++j) {
              const double v = u[sz(r * classes + j)];
              t[j] = total > 0 && v >= 0.3 ? static_cast<float>(v / total) : 0.f;
            }
          } else {
            for (int64_t j = 0; j < classes; ++j) t[j] = 1.f / static_cast<float>(classes);
          }
        }
        check(rows, classes, logits, targets, false, 0.5f, true);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(SoftmaxXentKernel, WithoutGradient) {
  CNN_REQUIRE_GPU();
  const int64_t rows = 33, classes = 10;
  std::vector<float> labels(sz(rows));
  for (int64_t r = 0; r < rows; ++r) labels[sz(r)] = static_cast<float>(r % classes);
  check(rows, classes, make_logits(rows, classes, 8500, false), labels, true, 1.f, false);
}

// Labels outside [0, classes), fractional or NaN: the row counts as wrong with loss 0
// and a zero gradient, the flag is raised, and the other rows are unaffected.
TEST(SoftmaxXentKernel, BadSparseLabelsAreFlagged) {
  CNN_REQUIRE_GPU();
  const int64_t rows = 40, classes = 10;
  std::vector<float> labels(sz(rows));
  std::vector<bool> bad(sz(rows), false);
  const std::vector<float> bad_values = {-1.f,  10.f, 2.5f, std::numeric_limits<float>::quiet_NaN(),
                                         1e10f, -0.5f};
  for (int64_t r = 0; r < rows; ++r) {
    labels[sz(r)] = static_cast<float>(r % classes);
    if (r % 7 == 3) {
      labels[sz(r)] = bad_values[sz(r / 7) % bad_values.size()];
      bad[sz(r)] = true;
    }
  }
  check(rows, classes, make_logits(rows, classes, 8600, true), labels, true, 0.25f, true, bad);
}

TEST(SoftmaxXentKernel, LauncherContract) {
  // No rows: nothing launched; no classes or missing workspace: refused (no device needed).
  EXPECT_EQ(cnnk::softmax_xent(0, 10, nullptr, nullptr, true, 1.f, nullptr, nullptr, nullptr,
                               nullptr, nullptr, nullptr),
            cudaSuccess);
  float dummy = 0.f;
  EXPECT_EQ(cnnk::softmax_xent(4, 0, &dummy, &dummy, true, 1.f, nullptr, &dummy, &dummy, nullptr,
                               nullptr, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::softmax_xent(4, 10, &dummy, &dummy, true, 1.f, nullptr, nullptr, &dummy, nullptr,
                               nullptr, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cnnk::softmax_forward(0, 3, 4, nullptr, nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cnnk::softmax_backward(2, 0, 4, nullptr, nullptr, nullptr, nullptr), cudaSuccess);
}

// Softmax over the channel axis of [n, c, spatial], forward and backward (in place too).
TEST(SoftmaxKernel, ChannelSoftmaxMatchesReference) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 8800;
  for (const int64_t n : {int64_t{1}, int64_t{3}})
    for (const int64_t c : {int64_t{1}, int64_t{3}, int64_t{10}, int64_t{17}, int64_t{130}})
      for (const int64_t spatial : {int64_t{1}, int64_t{7}, int64_t{49}}) {
        SCOPED_TRACE(::testing::Message() << "n " << n << " c " << c << " spatial " << spatial);
        seed += 3;
        const ActivationGeometry g{n, c, spatial};
        const std::vector<float> x =
            test::cast_all<float>(test::random_values(sz(g.size()), seed, -20.0, 20.0));
        const std::vector<float> dy =
            test::cast_all<float>(test::random_values(sz(g.size()), seed + 1, -1.0, 1.0));
        std::vector<float> y(x.size()), dx(x.size());
        ref::activation_forward<float>(Activation::Softmax, g, x.data(), y.data());
        ref::activation_backward<float>(Activation::Softmax, g, y.data(), dy.data(), dx.data());
        // dx_j = y_j (dy_j - sum_k dy_k y_k): bounded by the size of what is summed.
        std::vector<double> dx_scale(x.size());
        for (int64_t i = 0; i < n; ++i)
          for (int64_t s = 0; s < spatial; ++s) {
            double dot_abs = 0.0;
            for (int64_t j = 0; j < c; ++j) {
              const size_t k = sz((i * c + j) * spatial + s);
              dot_abs += std::abs(static_cast<double>(dy[k]) * static_cast<double>(y[k]));
            }
            for (int64_t j = 0; j < c; ++j) {
              const size_t k = sz((i * c + j) * spatial + s);
              dx_scale[k] = std::abs(static_cast<double>(y[k])) *
                            (std::abs(static_cast<double>(dy[k])) + dot_abs);
            }
          }

        DeviceBuffer<float> d_x(x), d_y(y.size()), d_dy(dy), d_dx(dx.size());
        ASSERT_TRUE(d_x.ok() && d_y.ok() && d_dy.ok() && d_dx.ok());
        CNN_CUDA_OK(d_y.fill_bytes(0xFF));
        CNN_CUDA_OK(d_dx.fill_bytes(0xFF));
        CNN_CUDA_OK(cnnk::softmax_forward(n, c, spatial, d_x.get(), d_y.get(), nullptr));
        CNN_CUDA_OK(test::sync_status());
        EXPECT_TRUE(test::within_bounds(
            "y", d_y.download(), y,
            test::reduction_bounds(test::abs_all(test::cast_all<double>(y)), static_cast<double>(c),
                                   4.0 * 1.2e-7, 1e-30)));
        // Backward from the reference's y, so that only the backward is measured.
        CNN_CUDA_OK(d_y.upload(y));
        CNN_CUDA_OK(
            cnnk::softmax_backward(n, c, spatial, d_y.get(), d_dy.get(), d_dx.get(), nullptr));
        CNN_CUDA_OK(cnnk::softmax_backward(n, c, spatial, d_y.get(), d_dy.get(), d_dy.get(),
                                           nullptr));  // in place
        CNN_CUDA_OK(test::sync_status());
        const std::vector<double> bound =
            test::reduction_bounds(dx_scale, static_cast<double>(c), 4.0 * 1.2e-7, 1e-30);
        EXPECT_TRUE(test::within_bounds("dx", d_dx.download(), dx, bound));
        EXPECT_TRUE(test::within_bounds("dx in place", d_dy.download(), dx, bound));
      }
}

}  // namespace
}  // namespace cnn
