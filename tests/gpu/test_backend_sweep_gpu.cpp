// Every pass of convolution, pooling, batch normalization, and the bias with its
// activation through the CUDA backend, under --impl native and --impl cudnn, against the
// CPU reference backend over a sweep of shapes: batch 1 and odd batches, odd spatial
// sizes, stride 1 and 2, kernels 1 to 7, "same" (asymmetric where the shape makes it so:
// cuDNN then hands over to native) and "valid", channel counts off the tile sizes (1, 3,
// 17, 64, 130). The kernel suites (tests/kernels) hold the native kernels to the
// reference; this one holds the backend's dispatch and the cuDNN path, descriptors and
// workspaces included. Bounds scale with the reduction length (kernel_test_util.h), and
// with the tensor's scale where cuDNN chose an FFT or Winograd algorithm (transform_bounds);
// the worst element and the algorithm that ran are printed either way. Without a usable GPU every
// test skips with the probe's reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/ops/activation/activation.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/pool2d/pool2d.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/kernels/kernel_test_util.h"

namespace cnn {
namespace {

using test::expect_within;
using test::reduction_bounds;
using testing::host_random;

Tensor host_abs(const Tensor& t) {
  Tensor a = Tensor::empty_host(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) a.host()[i] = std::abs(t.host()[i]);
  return a;
}

std::vector<double> values(const Tensor& host) {
  return std::vector<double>(host.host(), host.host() + host.numel());
}

// Runs `pass` on `be` with the host inputs copied there; returns the outputs on the host.
using Pass =
    std::function<void(Backend&, const std::vector<const float*>&, const std::vector<float*>&)>;
std::vector<Tensor> run(Backend& be, const std::vector<Tensor>& inputs,
                        const std::vector<Shape>& outputs, const Pass& pass) {
  std::vector<Tensor> in, out;
  std::vector<const float*> in_ptrs;
  std::vector<float*> out_ptrs;
  for (const Tensor& t : inputs) {
    in.push_back(be.to_device(t));
    in_ptrs.push_back(in.back().data());
  }
  for (const Shape& s : outputs) {
    out.push_back(be.zeros(s));
    out_ptrs.push_back(out.back().data());
  }
  pass(be, in_ptrs, out_ptrs);
  std::vector<Tensor> host;
  for (const Tensor& t : out) host.push_back(be.to_host(t));
  return host;
}

// The bound of cuDNN's FFT and Winograd algorithms (testing::transform_algorithm), where an
// output near zero inherits the rounding of its large neighbours: the tensor's largest sum
// of |terms| for every element, 16 times wider than reduction_bounds': a few parts in 10^4
// of the scale on the sweep's longest reductions, where a wrong index is off by the whole
// scale.
std::vector<double> transform_bounds(const std::vector<double>& scale, double length) {
  double largest = 0;
  for (double v : scale) largest = std::max(largest, std::abs(v));
  return reduction_bounds(std::vector<double>(scale.size(), largest), length, 16 * 4.0 / 8388608.0);
}

class BackendSweep : public ::testing::TestWithParam<ImplPolicy> {
 protected:
  void SetUp() override {
    REQUIRE_GPU();
    gpu_ = testing::quiet_gpu(GetParam());
  }
  // The GPU's outputs against the reference's, each within reduction_bounds of
  // (reference on absolute inputs, reduction length); within transform_bounds where the
  // backend's choice for `choice_key` (an op and shape it records) names cuDNN's FFT or
  // Winograd, and the choice is in the failure message either way.
  void check(const std::string& what, const std::vector<Tensor>& inputs,
             const std::vector<Shape>& outputs, const std::vector<double>& lengths,
             const Pass& pass, const std::string& choice_key = "") {
    std::vector<Tensor> abs_inputs;
    for (const Tensor& t : inputs) abs_inputs.push_back(host_abs(t));
    const std::vector<Tensor> got = run(*gpu_, inputs, outputs, pass);
    const std::vector<Tensor> want = run(reference_, inputs, outputs, pass);
    const std::vector<Tensor> scale = run(reference_, abs_inputs, outputs, pass);
    const auto choices = gpu_->implementation_choices();
    const auto chosen = choices.find(choice_key);
    const std::string choice = chosen == choices.end() ? "" : chosen->second;
    SCOPED_TRACE(what + " ran " + (choice.empty() ? "(no choice recorded)" : choice));
    EXPECT_TRUE(choice_key.empty() || !choice.empty()) << "no choice for " << choice_key;
    for (size_t i = 0; i < got.size(); ++i)
      expect_within(what + " output " + std::to_string(i), values(got[i]), values(want[i]),
                    testing::transform_algorithm(choice)
                        ? transform_bounds(values(scale[i]), lengths[i])
                        : reduction_bounds(values(scale[i]), lengths[i]));
  }
  // The GPU's outputs against the reference's, within 1e-4 of each output's largest value.
  void check_relative(const std::string& what, const std::vector<Tensor>& inputs,
                      const std::vector<Shape>& outputs, const Pass& pass) {
    const std::vector<Tensor> got = run(*gpu_, inputs, outputs, pass);
    const std::vector<Tensor> want = run(reference_, inputs, outputs, pass);
    for (size_t i = 0; i < got.size(); ++i) {
      double largest = 0;
      for (double v : values(want[i])) largest = std::max(largest, std::abs(v));
      expect_within(what + " output " + std::to_string(i), values(got[i]), values(want[i]),
                    {1e-4 * (1.0 + largest)});
    }
  }
  CpuBackend reference_{true};
  std::unique_ptr<cuda::CudaBackend> gpu_;
};

struct ConvCase {
  const char* name;
  int n, c, hw, k, kernel, stride;
  bool same;
};

const ConvCase kConvCases[] = {
    {"b1_c1_k1_valid", 1, 1, 5, 3, 1, 1, false},
    {"b3_c3_k3_same", 3, 3, 7, 17, 3, 1, true},
    {"b2_c17_k5_s2_same_asymmetric", 2, 17, 8, 5, 5, 2, true},
    {"b5_c64_k7_s2_valid", 5, 64, 15, 3, 7, 2, false},
    {"b1_c130_k3_same", 1, 130, 6, 130, 3, 1, true},
    {"b3_c3_k7_same_odd", 3, 3, 11, 64, 7, 1, true},
};

TEST_P(BackendSweep, ConvolutionEveryPass) {
  for (const ConvCase& cc : kConvCases) {
    SCOPED_TRACE(cc.name);
    Conv2dParams p;
    p.filters = cc.k;
    p.kernel_h = p.kernel_w = cc.kernel;
    p.stride_h = p.stride_w = cc.stride;
    p.padding = cc.same ? Padding::same() : Padding::valid();
    const cnnk::Conv2dGeometry g = conv2d_geometry(p, Shape{cc.n, cc.c, cc.hw, cc.hw});
    const Shape xs{g.n, g.c, g.h, g.w}, ws{g.k, g.c, g.r, g.s}, ys{g.n, g.k, g.p, g.q};
    const Tensor x = host_random(xs, 1), w = host_random(ws, 2), b = host_random(Shape{g.k}, 3),
                 dy = host_random(ys, 4);
    const double taps = double(g.c) * g.r * g.s, pixels = double(g.n) * g.p * g.q;
    const std::string shape = " " + describe(g);
    check(
        "forward", {x, w, b}, {ys}, {taps + 1},
        [&](Backend& be, const auto& in, const auto& out) {
          be.conv2d_forward(g, in[0], in[1], in[2], out[0]);
        },
        "conv2d forward" + shape);
    check(
        "backward-data", {dy, w}, {xs}, {double(g.k) * g.r * g.s},
        [&](Backend& be, const auto& in, const auto& out) {
          be.conv2d_backward_data(g, in[0], in[1], out[0]);
        },
        "conv2d backward-data" + shape);
    check(
        "backward-filter", {x, dy}, {ws, Shape{g.k}}, {pixels, pixels},
        [&](Backend& be, const auto& in, const auto& out) {
          be.conv2d_backward_filter(g, in[0], in[1], out[0], out[1]);
        },
        "conv2d backward-filter" + shape);
  }
}

struct PoolCase {
  const char* name;
  cnnk::PoolMode mode;
  int n, c, hw, window, stride;
  bool same;
};

const PoolCase kPoolCases[] = {
    {"max_2x2_odd_valid", cnnk::PoolMode::Max, 3, 3, 7, 2, 2, false},
    {"max_3x3_s2_same_asymmetric", cnnk::PoolMode::Max, 1, 17, 8, 3, 2, true},
    {"avg_2x2", cnnk::PoolMode::Average, 2, 64, 6, 2, 2, false},
    {"avg_3x3_s1_same", cnnk::PoolMode::Average, 5, 1, 9, 3, 1, true},
};

TEST_P(BackendSweep, PoolingBothPasses) {
  for (const PoolCase& pc : kPoolCases) {
    SCOPED_TRACE(pc.name);
    Pool2dParams p;
    p.mode = pc.mode;
    p.pool_h = p.pool_w = pc.window;
    p.stride_h = p.stride_w = pc.stride;
    p.padding = pc.same ? Padding::same() : Padding::valid();
    const cnnk::Pool2dGeometry g = pool2d_geometry(p, Shape{pc.n, pc.c, pc.hw, pc.hw});
    const Shape xs{g.n, g.c, g.h, g.w}, ys{g.n, g.c, g.p, g.q};
    const Tensor x = host_random(xs, 5), dy = host_random(ys, 6);
    const double window = double(g.window_h) * g.window_w;
    check("forward", {x}, {ys}, {window}, [&](Backend& be, const auto& in, const auto& out) {
      be.pool2d_forward(g, in[0], out[0]);
    });
    // The backward takes the forward's output, computed where it runs.
    check("backward", {x, dy}, {ys, xs}, {window, window},
          [&](Backend& be, const auto& in, const auto& out) {
            be.pool2d_forward(g, in[0], out[0]);
            be.pool2d_backward(g, in[0], out[0], in[1], out[1]);
          });
  }
}

// Batch normalization's results are not plain sums (a square root, a division, the
// backward's cancellations), so its bound is relative to the largest value of each
// output: 1e-4 of it, far below what a wrong pointer, stride or statistic would give.
// The last case's channels (5 * 1000 values) take the native kernels' chunked path, with
// its workspace from the backend.
TEST_P(BackendSweep, BatchNormEveryPass) {
  const cnnk::BatchNormGeometry cases[] = {
      {3, 17, 49}, {2, 130, 9}, {5, 1, 25}, {1, 3, 7}, {5, 2, 1000}};
  for (const cnnk::BatchNormGeometry& g : cases) {
    SCOPED_TRACE(::testing::PrintToString(std::vector<int>{g.n, g.c, g.spatial}));
    const Shape xs{g.n, g.c, g.spatial}, cs{g.c};
    const Tensor x = host_random(xs, 7), dy = host_random(xs, 8), gamma = host_random(cs, 9),
                 beta = host_random(cs, 10), mean = host_random(cs, 11),
                 var = host_abs(host_random(cs, 12));
    constexpr float kMomentum = 0.9f, kEpsilon = 1e-3f;
    // Outputs: y, running mean and variance (from zero), saved mean and 1/std.
    check_relative("forward-training", {x, gamma, beta}, {xs, cs, cs, cs, cs},
                   [&](Backend& be, const auto& in, const auto& out) {
                     be.batchnorm_forward_training(g, in[0], in[1], in[2], kMomentum, kEpsilon,
                                                   out[1], out[2], out[0], out[3], out[4]);
                   });
    check_relative("forward-inference", {x, gamma, beta, mean, var}, {xs},
                   [&](Backend& be, const auto& in, const auto& out) {
                     be.batchnorm_forward_inference(g, in[0], in[1], in[2], in[3], in[4], kEpsilon,
                                                    out[0]);
                   });
    // Outputs: dx, dgamma, dbeta, then the training forward's (whose saved statistics the
    // backward reads) y, running mean and variance, saved mean and 1/std.
    check_relative("backward", {x, dy, gamma, beta}, {xs, cs, cs, xs, cs, cs, cs, cs},
                   [&](Backend& be, const auto& in, const auto& out) {
                     be.batchnorm_forward_training(g, in[0], in[2], in[3], kMomentum, kEpsilon,
                                                   out[4], out[5], out[3], out[6], out[7]);
                     be.batchnorm_backward(g, in[0], in[1], in[2], out[6], out[7], kEpsilon, out[0],
                                           out[1], out[2]);
                   });
  }
}

// The bias and activation of dense and convolution layers: the dense GEMM with its bias
// and activation after it, and the backward's dz with the bias gradient (dz in a buffer
// of its own: the kernel suite covers it in place), for every activation, softmax
// included (no elementwise derivative: the backend takes two steps there). Shapes: dense
// rows, a convolution's maps, and channels long enough to be summed in chunks. Bounds
// relative to each output's largest value, as batch norm's: the activations are no sums.
TEST_P(BackendSweep, BiasAndActivationBothPasses) {
  const Activation kinds[] = {Activation::Linear, Activation::Relu, Activation::Sigmoid,
                              Activation::Tanh, Activation::Softmax};
  const cnnk::DenseGeometry dense_cases[] = {{3, 20, 17}, {33, 64, 10}};
  const ActivationGeometry bias_cases[] = {{33, 10, 1}, {3, 17, 49}, {32, 3, 784}};
  for (const Activation a : kinds) {
    SCOPED_TRACE(activation_name(a));
    for (const cnnk::DenseGeometry& g : dense_cases) {
      SCOPED_TRACE(::testing::PrintToString(std::vector<int>{g.n, g.in, g.out}));
      const Tensor x = host_random(Shape{g.n, g.in}, 13), w = host_random(Shape{g.out, g.in}, 14),
                   b = host_random(Shape{g.out}, 15);
      check_relative("dense forward", {x, w, b}, {Shape{g.n, g.out}},
                     [&](Backend& be, const auto& in, const auto& out) {
                       be.dense_forward_fused(g, in[0], in[1], in[2], a, out[0]);
                     });
    }
    for (const ActivationGeometry& g : bias_cases) {
      SCOPED_TRACE(::testing::PrintToString(std::vector<int64_t>{g.n, g.c, g.spatial}));
      const Shape ys{g.n, g.c, g.spatial};
      // y in (0, 1), a valid output of every activation; dy of both signs.
      Tensor y = host_abs(host_random(ys, 16));
      for (int64_t i = 0; i < y.numel(); ++i) y.host()[i] = std::min(y.host()[i], 0.99f);
      const Tensor dy = host_random(ys, 17);
      check_relative("backward", {y, dy}, {ys, Shape{g.c}},
                     [&](Backend& be, const auto& in, const auto& out) {
                       be.bias_activation_backward(a, g, in[0], in[1], out[0], out[1]);
                     });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, BackendSweep,
                         ::testing::Values(ImplPolicy::Native, ImplPolicy::Cudnn),
                         [](const auto& param_info) { return impl_policy_name(param_info.param); });

}  // namespace
}  // namespace cnn
