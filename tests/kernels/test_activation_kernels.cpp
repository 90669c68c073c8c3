// The elementwise activation kernels (cnnk::activation_forward / activation_backward)
// against cnn::ref::activation_* in double, for every kind, over sizes around the block
// size and past the grid's cap (so the grid-stride loop takes a second lap), and with
// the backward in place (dx aliasing dy, as the engine runs it). ReLU and linear are
// exact; sigmoid and tanh are held to a few float roundings, sigmoid over the whole range
// where its value is not zero in float.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnk/activation.h"
#include "engine/ops/activation/activation.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using test::DeviceBuffer;

struct Kind {
  Activation ref;
  cnnk::ActKind kernel;
  double rtol;  // relative to |expected|, plus 1e-7 absolute
};

// Sigmoid: CUDA's expf is within 2 ulp, which the division keeps; the backward's two
// products round twice.
const Kind kKinds[] = {{Activation::Linear, cnnk::ActKind::Linear, 0.0},
                       {Activation::Relu, cnnk::ActKind::Relu, 0.0},
                       {Activation::Sigmoid, cnnk::ActKind::Sigmoid, 32.0 / 8388608.0},
                       {Activation::Tanh, cnnk::ActKind::Tanh, 8.0 / 8388608.0}};

std::vector<double> bounds(const std::vector<double>& expected, double rtol) {
  std::vector<double> b(expected.size());
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = rtol == 0.0 ? 0.0 : 1e-7 + rtol * std::abs(expected[i]);
  return b;
}

void check(const Kind& kind, int64_t size, uint64_t seed) {
  SCOPED_TRACE(activation_name(kind.ref) + " size " + std::to_string(size));
  const ActivationGeometry g{size, 1, 1};
  const auto n = static_cast<size_t>(size);
  // Inputs over [-8, 8], with exact zeros sprinkled in (ReLU's edge).
  std::vector<float> x = test::cast_all<float>(test::random_values(n, seed, -8.0, 8.0));
  for (size_t i = 0; i < n; i += 97) x[i] = 0.f;
  const std::vector<float> dy = test::cast_all<float>(test::random_values(n, seed + 1));

  std::vector<double> want_y(n);
  ref::activation_forward<double>(kind.ref, g, test::cast_all<double>(x).data(), want_y.data());

  DeviceBuffer<float> d_x(x), d_y(n), d_grad(dy);
  ASSERT_TRUE(d_x.ok() && d_y.ok() && d_grad.ok());
  CNN_CUDA_OK(d_y.fill_bytes(0xFF));
  CNN_CUDA_OK(cnnk::activation_forward(kind.kernel, size, d_x.get(), d_y.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  const std::vector<float> y = d_y.download();
  test::expect_within("y", y, want_y, bounds(want_y, kind.rtol));

  // The backward from the kernel's own y, in place over dy.
  std::vector<double> want_dx(n);
  ref::activation_backward<double>(kind.ref, g, test::cast_all<double>(y).data(),
                                   test::cast_all<double>(dy).data(), want_dx.data());
  CNN_CUDA_OK(
      cnnk::activation_backward(kind.kernel, size, d_y.get(), d_grad.get(), d_grad.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  test::expect_within("dx", d_grad.download(), want_dx, bounds(want_dx, kind.rtol));
}

TEST(ActivationKernel, EveryKindMatchesTheReference) {
  CNN_REQUIRE_GPU();
  uint64_t seed = 9700;
  for (const Kind& kind : kKinds)
    for (const int64_t size : {int64_t(1), int64_t(255), int64_t(256), int64_t(257), int64_t(4099)})
      check(kind, size, seed += 2);
}

// More elements than 8192 blocks of 256 threads cover in one lap.
TEST(ActivationKernel, GridStrideCoversEveryElement) {
  CNN_REQUIRE_GPU();
  check(kKinds[1], int64_t(8192) * 256 + 77, 9800);
}

// Sigmoid far into both tails: past x = -88, where exp(-x) overflows float, the value is
// still a normal float down to about -87.3 and a subnormal one down to about -103.3. Each
// output is held to a few ulp of the reference's value rounded to float, plus one
// subnormal step for the outputs that can only be a multiple of it.
TEST(ActivationKernel, SigmoidIsAccurateOverTheWholeRange) {
  CNN_REQUIRE_GPU();
  std::vector<float> x;
  for (float v = -110.f; v <= 110.f; v += 0.37f) x.push_back(v);
  for (float v : {-103.9f, -103.2f, -100.f, -89.f, -88.5f, -87.f, -30.f, 30.f, 88.5f, 0.f})
    x.push_back(v);
  const auto n = static_cast<int64_t>(x.size());
  std::vector<double> want(x.size());
  ref::activation_forward<double>(Activation::Sigmoid, ActivationGeometry{n, 1, 1},
                                  test::cast_all<double>(x).data(), want.data());

  DeviceBuffer<float> d_x(x), d_y(x.size());
  ASSERT_TRUE(d_x.ok() && d_y.ok());
  CNN_CUDA_OK(cnnk::activation_forward(cnnk::ActKind::Sigmoid, n, d_x.get(), d_y.get(), nullptr));
  CNN_CUDA_OK(test::sync_status());
  const std::vector<float> y = d_y.download();
  const double subnormal_step = std::ldexp(1.0, -149);
  std::vector<double> bound(want.size());
  for (size_t i = 0; i < bound.size(); ++i)
    bound[i] = 4.0 / 8388608.0 * std::abs(want[i]) + subnormal_step;
  test::expect_within("y", y, want, bound);
  // The deep tail is not flushed to zero while the reference's float is not zero.
  for (size_t i = 0; i < y.size(); ++i)
    if (static_cast<float>(want[i]) > 0.f) {
      EXPECT_GT(y[i], 0.f) << "x = " << x[i];
    }
}

TEST(ActivationKernel, EmptyTensorLaunchesNothing) {
  CNN_REQUIRE_GPU();
  EXPECT_EQ(cnnk::activation_forward(cnnk::ActKind::Relu, 0, nullptr, nullptr, nullptr),
            cudaSuccess);
  EXPECT_EQ(cnnk::activation_backward(cnnk::ActKind::Relu, 0, nullptr, nullptr, nullptr, nullptr),
            cudaSuccess);
}

}  // namespace
}  // namespace cnn
