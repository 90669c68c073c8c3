// The CUDA backend's convolution options end to end: the activation fused into the
// forward (native epilogue, or cuDNN then the activation pass) is the double oracle's
// within float rounding and gives the bits of the unfused forward; implementation choices name the
// kernel variant; --tf32 (BackendOptions
// ::tf32) switches the native kernels to the TF32 implicit GEMM and stays within the
// TF32 bound of the reference, while the default stays strict FP32. Without a usable GPU
// every test skips with the probe's reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/device.h"
#include "engine/ops/conv2d/conv2d.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/support/fused_oracle.h"
#include "tests/support/gradcheck.h"

namespace cnn {
namespace {

using testing::host_random;

std::unique_ptr<cuda::CudaBackend> make_gpu(ImplPolicy policy, bool tf32) {
  cuda::CudaOptions o;
  o.policy = policy;
  o.verbose = false;
  o.tf32 = tf32;
  return std::make_unique<cuda::CudaBackend>(o);
}

cnnk::Conv2dGeometry layer(int n, int c, int hw, int k, int kernel) {
  Conv2dParams p;
  p.filters = k;
  p.kernel_h = p.kernel_w = kernel;
  p.padding = Padding::same();
  return conv2d_geometry(p, Shape{n, c, hw, hw});
}

struct Inputs {
  Tensor x, w, b;
};
Inputs inputs_for(const cnnk::Conv2dGeometry& g, uint64_t seed) {
  return {host_random(Shape{g.n, g.c, g.h, g.w}, seed),
          host_random(Shape{g.k, g.c, g.r, g.s}, seed + 1), host_random(Shape{g.k}, seed + 2)};
}

std::vector<float> gpu_forward(cuda::CudaBackend& be, const cnnk::Conv2dGeometry& g,
                               const Inputs& in, Activation act, bool fused) {
  const Tensor x = be.to_device(in.x), w = be.to_device(in.w), b = be.to_device(in.b);
  Tensor y = be.empty(Shape{g.n, g.k, g.p, g.q});
  if (fused) {
    be.conv2d_forward_fused(g, x.data(), w.data(), b.data(), act, y.data());
  } else {
    be.conv2d_forward(g, x.data(), w.data(), b.data(), y.data());
    ActivationGeometry ag;
    ag.n = g.n;
    ag.c = g.k;
    ag.spatial = int64_t(g.p) * g.q;
    be.activation_forward(act, ag, y.data(), y.data());
  }
  const Tensor h = be.to_host(y);
  return std::vector<float>(h.host(), h.host() + h.numel());
}

std::vector<float> host_vector(const Tensor& t) {
  return std::vector<float>(t.host(), t.host() + t.numel());
}

TEST(CudaConv2dFused, FusedEqualsUnfusedUnderEveryPolicy) {
  REQUIRE_GPU();
  // The Fashion-MNIST first layer (direct kernel) and its second (implicit GEMM).
  for (const cnnk::Conv2dGeometry& g : {layer(5, 1, 28, 64, 7), layer(3, 64, 14, 128, 3)}) {
    SCOPED_TRACE(describe(g));
    const Inputs in = inputs_for(g, 7);
    for (const ImplPolicy policy : {ImplPolicy::Native, ImplPolicy::Cudnn}) {
      SCOPED_TRACE(impl_policy_name(policy));
      auto be = make_gpu(policy, false);
      for (const Activation a : {Activation::Relu, Activation::Sigmoid, Activation::Tanh,
                                 Activation::Softmax, Activation::Linear}) {
        SCOPED_TRACE(activation_name(a));
        const std::vector<float> fused = gpu_forward(*be, g, in, a, true);
        const std::vector<float> separate = gpu_forward(*be, g, in, a, false);
        // The oracle first: under cuDNN the fused pass is the separate one by design, and
        // its heuristics may pick an FFT or Winograd algorithm (held to a wider bound).
        const auto choices = be->implementation_choices();
        const auto chosen = choices.find("conv2d forward " + describe(g));
        ASSERT_NE(chosen, choices.end());
        SCOPED_TRACE(chosen->second);
        EXPECT_TRUE(test::fused_matches_the_oracle(g, host_vector(in.x), host_vector(in.w),
                                                   in.b.host(), a, fused,
                                                   testing::transform_algorithm(chosen->second)));
        ASSERT_EQ(fused.size(), separate.size());
        EXPECT_EQ(std::memcmp(fused.data(), separate.data(), fused.size() * sizeof(float)), 0);
      }
    }
  }
}

// The choices say which kernel ran: the direct kernel for a first layer's forward and
// backward filter, the implicit GEMM for its backward data, the TF32 one with --tf32.
TEST(CudaConv2dFused, ChoicesNameTheKernelVariant) {
  REQUIRE_GPU();
  const cnnk::Conv2dGeometry g = layer(2, 1, 28, 64, 7);
  const Inputs in = inputs_for(g, 9);
  for (const bool tf32 : {false, true}) {
    SCOPED_TRACE(tf32 ? "tf32" : "fp32");
    auto be = make_gpu(ImplPolicy::Native, tf32);
    const Tensor x = be->to_device(in.x), w = be->to_device(in.w);
    Tensor y = be->empty(Shape{g.n, g.k, g.p, g.q}), dx = be->empty(in.x.shape()),
           dw = be->empty(in.w.shape()), db = be->empty(Shape{g.k});
    be->conv2d_forward_fused(g, x.data(), w.data(), nullptr, Activation::Relu, y.data());
    be->conv2d_backward_data(g, y.data(), w.data(), dx.data());
    be->conv2d_backward_filter(g, x.data(), y.data(), dw.data(), db.data());
    be->synchronize();
    const auto choices = be->implementation_choices();
    const std::string key = describe(g);
    ASSERT_TRUE(choices.count("conv2d forward " + key));
    EXPECT_EQ(choices.at("conv2d forward " + key), "native (direct)");
    EXPECT_EQ(choices.at("conv2d backward-filter " + key), "native (direct)");
    EXPECT_EQ(choices.at("conv2d backward-data " + key),
              tf32 ? "native (igemm-tf32)" : "native (igemm)");
    EXPECT_EQ(be->impl_name("conv2d"), "native");
  }
}

// With --tf32 the native implicit GEMM multiplies on tensor cores: within the TF32 bound
// of the double reference (2^-9 of the sum of |terms| for the rounded inputs, plus FP32
// accumulation), and, on random data, visibly different from strict FP32 (the flag did
// something). Without it, FP32: within the FP32 bound.
TEST(CudaConv2dFused, Tf32OptionSwitchesTheImplicitGemm) {
  REQUIRE_GPU();
  int device = 0, major = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  if (major < 8) GTEST_SKIP() << "compute capability " << major << ".x has no TF32";
  const cnnk::Conv2dGeometry g = layer(2, 64, 14, 128, 3);  // C*R*S 576: implicit GEMM
  const Inputs in = inputs_for(g, 11);
  std::vector<double> want(size_t(g.output_size())), scale(want.size());
  {
    const auto xd =
        test::cast_all<double>(std::vector<float>(in.x.host(), in.x.host() + in.x.numel()));
    const auto wd =
        test::cast_all<double>(std::vector<float>(in.w.host(), in.w.host() + in.w.numel()));
    const auto bd =
        test::cast_all<double>(std::vector<float>(in.b.host(), in.b.host() + in.b.numel()));
    ref::conv2d_forward<double>(g, xd.data(), wd.data(), bd.data(), want.data());
    const auto xa = test::abs_all(xd), wa = test::abs_all(wd), ba = test::abs_all(bd);
    ref::conv2d_forward<double>(g, xa.data(), wa.data(), ba.data(), scale.data());
  }
  const double length = double(g.c) * g.r * g.s + 1;
  const double fp32_rtol = 4.0 / 8388608.0 * std::sqrt(length);
  auto strict = make_gpu(ImplPolicy::Native, false);
  auto tf32 = make_gpu(ImplPolicy::Native, true);
  const std::vector<float> y32 = gpu_forward(*strict, g, in, Activation::Linear, true);
  const std::vector<float> ytf = gpu_forward(*tf32, g, in, Activation::Linear, true);
  std::vector<double> b32(want.size()), btf(want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    b32[i] = 1e-6 + fp32_rtol * scale[i];
    btf[i] = 1e-6 + (std::ldexp(1.0, -9) + 4 * fp32_rtol) * scale[i];
  }
  EXPECT_TRUE(test::within_bounds("fp32", y32, want, b32));
  EXPECT_TRUE(test::within_bounds("tf32", ytf, want, btf));
  size_t differ = 0;
  for (size_t i = 0; i < y32.size(); ++i) differ += y32[i] != ytf[i] ? 1 : 0;
  EXPECT_GT(differ, y32.size() / 2) << "TF32 results equal the FP32 ones: no tensor cores?";
  EXPECT_EQ(strict->implementation_choices().at("conv2d forward " + describe(g)), "native (igemm)");
  EXPECT_EQ(tf32->implementation_choices().at("conv2d forward " + describe(g)),
            "native (igemm-tf32)");
}

}  // namespace
}  // namespace cnn
