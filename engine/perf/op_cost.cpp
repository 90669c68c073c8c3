#include "engine/perf/op_cost.h"

#include "engine/core/error.h"

namespace cnn::perf {
namespace {

constexpr double kFloat = sizeof(float);

// Batch normalization, per element. Training forward: the mean (1 add), the variance
// (subtract, square, add: 3), then normalize and scale (subtract, times invstd, times
// gamma, plus beta: 4). Backward: dbeta (1 add), dgamma (x-hat from x: 2, times dy, add:
// 4), dx = gamma*invstd/m * (m*dy - dbeta - x-hat*dgamma) (5). Per-channel work is
// negligible and not counted.
constexpr double kBatchNormForwardFlops = 8;
constexpr double kBatchNormBackwardFlops = 10;

[[noreturn]] void no_such_pass(const char* op, OpPass pass) {
  throw Error(fmt::format("{} has no {} pass", op, pass_name(pass)));
}

}  // namespace

std::string pass_name(OpPass pass) {
  switch (pass) {
    case OpPass::Forward:
      return "forward";
    case OpPass::BackwardData:
      return "backward-data";
    case OpPass::BackwardFilter:
      return "backward-filter";
    case OpPass::BackwardWeights:
      return "backward-weights";
    case OpPass::Backward:
      return "backward";
  }
  return "?";
}

OpCost conv2d_cost(const cnnk::Conv2dGeometry& g, bool bias, OpPass pass) {
  const double x = static_cast<double>(g.input_size()), y = static_cast<double>(g.output_size()),
               w = static_cast<double>(g.filter_size()), b = bias ? g.k : 0;
  // Every output takes C*R*S multiply-adds; each backward pass does the same products.
  const double flops = 2.0 * y * g.c * g.r * g.s;
  switch (pass) {
    case OpPass::Forward:
      return {flops, kFloat * (x + w + b + y)};
    case OpPass::BackwardData:
      return {flops, kFloat * (y + w + x)};
    case OpPass::BackwardFilter:
      return {flops, kFloat * (x + y + w + b)};
    default:
      no_such_pass("Conv2D", pass);
  }
}

OpCost pool2d_cost(const cnnk::Pool2dGeometry& g, OpPass pass) {
  const double x = static_cast<double>(g.input_size()), y = static_cast<double>(g.output_size());
  const double flops = y * g.window_h * g.window_w;
  switch (pass) {
    case OpPass::Forward:
      return {flops, kFloat * (x + y)};
    case OpPass::Backward:
      // Max pooling needs x to find each window's maximum again (or an index saved by the
      // forward, which is no smaller); average pooling needs only dy.
      return {flops, kFloat * ((g.mode == cnnk::PoolMode::Max ? x : 0.0) + y + x)};
    default:
      no_such_pass("pooling", pass);
  }
}

OpCost batchnorm_cost(const cnnk::BatchNormGeometry& g, OpPass pass) {
  const double e = static_cast<double>(g.size()), c = g.c;
  switch (pass) {
    case OpPass::Forward:
      // x, gamma, beta and the running statistics in; y, the running statistics and the
      // saved mean and inverse deviation out.
      return {kBatchNormForwardFlops * e, kFloat * (2 * e + 8 * c)};
    case OpPass::Backward:
      // x, dy, gamma, the saved mean and inverse deviation in; dx, dgamma, dbeta out.
      return {kBatchNormBackwardFlops * e, kFloat * (3 * e + 5 * c)};
    default:
      no_such_pass("BatchNormalization", pass);
  }
}

OpCost dense_cost(const cnnk::DenseGeometry& g, bool bias, OpPass pass) {
  const double x = double(g.n) * g.in, y = double(g.n) * g.out, w = double(g.in) * g.out,
               b = bias ? g.out : 0;
  const double flops = 2.0 * g.n * w;
  switch (pass) {
    case OpPass::Forward:
      return {flops, kFloat * (x + w + b + y)};
    case OpPass::BackwardData:
      return {flops, kFloat * (y + w + x)};
    case OpPass::BackwardWeights:
      return {flops, kFloat * (x + y + w + b)};
    default:
      no_such_pass("Dense", pass);
  }
}

double tflops_per_second(const OpCost& c, double ms) { return ms > 0 ? c.flops / ms * 1e-9 : 0.0; }

double gigabytes_per_second(const OpCost& c, double ms) {
  return ms > 0 ? c.bytes / ms * 1e-6 : 0.0;
}

}  // namespace cnn::perf
