// The executor's backward through a whole graph with branches (residual add, concat,
// batch norm, pooling, fused activations, Flattens that share memory and Flattens that
// must copy), checked against finite differences of the loss, and the assign/accumulate
// contract of branch gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/executor.h"
#include "engine/graph/layers.h"
#include "engine/graph/parameters.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

Model branchy() {
  Model m("branchy");
  NodeRef x = m.input(Shape{3, 6, 6});
  NodeRef a = m.add(layers::conv2d(4, 3, "same", Activation::Tanh), x);
  NodeRef b = m.add(layers::conv2d(4, 3, "same", Activation::Sigmoid), a);
  NodeRef r = m.add(layers::add(), {a, b});  // a feeds two layers: gradients must sum
  NodeRef bn = m.add(layers::batch_norm(), r);
  NodeRef c = m.add(layers::conv2d(2, 1, "valid"), x);
  NodeRef cat = m.add(layers::concatenate(), {bn, c});
  NodeRef p = m.add(layers::avg_pool2d(2, "same", 2), cat);
  NodeRef mp = m.add(layers::max_pool2d(3, "valid", 1), p);
  NodeRef f = m.add(layers::flatten(), mp);
  NodeRef d = m.add(layers::dense(5, Activation::Softmax), f);
  m.finish(d);
  return m;
}

// A node read by a Flatten and by another layer (its gradient cannot be the Flatten's,
// which must go to scratch and be summed), and a Flatten of the model's input (whose
// memory the executor does not plan): both Flattens then copy instead of sharing.
Model flatten_fan_out() {
  Model m("flatten-fan-out");
  NodeRef x = m.input(Shape{2, 5, 5});
  NodeRef c = m.add(layers::conv2d(3, 3, "same", Activation::Tanh), x);
  NodeRef f = m.add(layers::flatten(), c);
  NodeRef d1 = m.add(layers::dense(5), f);
  NodeRef c2 = m.add(layers::conv2d(2, 3, "valid", Activation::Sigmoid), c);
  NodeRef f2 = m.add(layers::flatten(), c2);
  NodeRef d2 = m.add(layers::dense(5), f2);
  NodeRef f0 = m.add(layers::flatten(), x);
  NodeRef d0 = m.add(layers::dense(5), f0);
  NodeRef sum = m.add(layers::add(), {d1, d2, d0});
  m.finish(sum);
  return m;
}

double loss_of(Executor& exec, Backend& be, const Tensor& x, const Tensor& labels) {
  const Tensor logits = exec.forward(x, true);
  be.metrics_reset();
  be.softmax_xent({x.shape()[0], 5}, logits.data(), labels.data(), true, 0.0f, nullptr);
  return be.metrics_read().mean_loss();
}

// Backward's parameter gradients of `m` (5 classes) on a batch of 3 against central
// differences of the loss: every parameter of the small layers, a stride through larger
// ones.
void expect_gradients_match_finite_differences(Model& m, const Shape& item) {
  CpuBackend be;
  Parameters params(m, be);
  params.initialize(7);
  Executor exec(m, params, be, 4);
  const int64_t n = 3;
  std::vector<int64_t> dims{n};
  dims.insert(dims.end(), item.dims().begin(), item.dims().end());
  Tensor x = Tensor::empty_host(Shape(dims));
  Tensor labels = Tensor::empty_host(Shape{n});
  Rng rng(11);
  for (int64_t i = 0; i < x.numel(); ++i) x.host()[i] = static_cast<float>(rng.uniform(-1, 1));
  for (int64_t i = 0; i < n; ++i) labels.host()[i] = static_cast<float>(i % 5);

  const Tensor logits = exec.forward(x, true);
  Tensor dlogits = Tensor::empty_host(Shape{n, 5});
  be.softmax_xent({n, 5}, logits.data(), labels.data(), true, 1.0f / n, dlogits.data());
  std::fill_n(params.grads().host(), params.grads().numel(), std::nanf(""));  // poison
  exec.backward(dlogits);
  const std::vector<int64_t> at = testing::flat_indices(params);
  ASSERT_EQ(static_cast<int64_t>(at.size()), params.trainable_count());
  std::vector<float> analytic(params.grads().host(),
                              params.grads().host() + params.grads().numel());
  for (int64_t i : at) ASSERT_TRUE(std::isfinite(analytic[size_t(i)])) << "gradient " << i;

  float* w = params.values().host();
  const double eps = 1e-3;
  int checked = 0;
  double diff2 = 0, norm2 = 0;
  for (size_t k = 0; k < at.size(); k += (k < 200 ? 1 : 7)) {
    const int64_t i = at[k];
    const float saved = w[i];
    w[i] = static_cast<float>(saved + eps);
    const double up = loss_of(exec, be, x, labels);
    w[i] = static_cast<float>(saved - eps);
    const double down = loss_of(exec, be, x, labels);
    w[i] = saved;
    const double numeric = (up - down) / (2 * eps);
    const double a = analytic[static_cast<size_t>(i)];
    EXPECT_NEAR(a, numeric, 2e-3 + 3e-2 * std::max(std::abs(a), std::abs(numeric)))
        << "parameter " << i;
    diff2 += (a - numeric) * (a - numeric);
    norm2 += numeric * numeric;
    ++checked;
  }
  EXPECT_GT(checked, 100);
  // Each element's bound has to allow float32's noise in the differences; over all the
  // checked gradients together the error must be small, so that a gradient wrong only
  // where it is small (under the 2e-3 floor) still fails.
  ASSERT_GT(norm2, 1e-2);
  EXPECT_LT(std::sqrt(diff2 / norm2), 0.02);
}

TEST(Executor, GraphGradientsMatchFiniteDifferences) {
  Model m = branchy();
  expect_gradients_match_finite_differences(m, Shape{3, 6, 6});
}

TEST(Executor, FlattensThatMustCopyStillPassTheirGradients) {
  Model m = flatten_fan_out();
  expect_gradients_match_finite_differences(m, Shape{2, 5, 5});
}

TEST(Executor, SmallerBatchesUseViewsAndMatchAFreshExecutor) {
  CpuBackend be;
  Model m1 = branchy(), m2 = branchy();
  Parameters p1(m1, be), p2(m2, be);
  p1.initialize(3);
  p2.initialize(3);
  Executor big(m1, p1, be, 8), exact(m2, p2, be, 2);
  Tensor x = Tensor::empty_host(Shape{2, 3, 6, 6});
  Rng rng(5);
  for (int64_t i = 0; i < x.numel(); ++i) x.host()[i] = static_cast<float>(rng.uniform(-1, 1));
  const Tensor a = big.forward(x, false), b = exact.forward(x, false);
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.host()[i], b.host()[i]);
}

TEST(Executor, RejectsWrongInputShapes) {
  CpuBackend be;
  Model m = branchy();
  Parameters p(m, be);
  Executor exec(m, p, be, 2);
  EXPECT_THROW(exec.forward(Tensor::zeros_host(Shape{1, 3, 5, 6}), false), Error);
  EXPECT_THROW(exec.forward(Tensor::zeros_host(Shape{3, 3, 6, 6}), false), Error);  // > max
}

}  // namespace
}  // namespace cnn
