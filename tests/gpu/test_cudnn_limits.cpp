// Where the cuDNN path steps aside for native: tensors its legacy descriptors cannot
// describe (32-bit element counts), and the in-place softmax it does not document. The
// support checks are host functions and run in every CUDA build; the choices need a GPU
// (or the simulated one).
#include <gtest/gtest.h>

#include <string>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cudnn_context.h"
#include "engine/core/error.h"
#include "engine/ops/conv2d/conv2d_cudnn.h"
#include "engine/ops/pool2d/pool2d_cudnn.h"
#include "tests/gpu/gpu_test_util.h"

namespace cnn {
namespace {

constexpr int64_t kIntMax = 2147483647;

TEST(CudnnLimits, DescriptorsHoldUpToTheLargestIntElements) {
  EXPECT_TRUE(cuda::descriptor_fits(1, 1, 1, kIntMax));
  EXPECT_TRUE(cuda::descriptor_fits(kIntMax, 1, 1, 1));
  EXPECT_TRUE(cuda::descriptor_fits(0, kIntMax, kIntMax, kIntMax));  // empty: nothing to count
  EXPECT_FALSE(cuda::descriptor_fits(1, 1, 2, kIntMax / 2 + 1));
  EXPECT_FALSE(cuda::descriptor_fits(1024, 64, 224, 224));  // 3.3e9 elements
  // Products that would overflow 64 bits are refused, not wrapped into range.
  EXPECT_FALSE(cuda::descriptor_fits(kIntMax, kIntMax, kIntMax, kIntMax));
  EXPECT_FALSE(cuda::descriptor_fits(-1, 1, 1, 1));
}

TEST(CudnnLimits, ConvolutionAndPoolingRefuseTensorsOverTheCount) {
  cnnk::Conv2dGeometry g;
  g.n = 1024, g.c = 64, g.h = g.w = 224, g.k = 64, g.r = g.s = 3;
  g.pad_top = g.pad_left = 1;
  g.p = g.q = 224;
  const cnnk::Support big = cudnn::conv2d_supports(g);
  EXPECT_FALSE(big.ok);
  EXPECT_NE(std::string(big.reason).find("32-bit element count"), std::string::npos);
  g.n = 32;  // 1.0e8 elements each way
  EXPECT_TRUE(cudnn::conv2d_supports(g).ok);

  cnnk::Pool2dGeometry p;
  p.n = 1024, p.c = 64, p.h = p.w = 224, p.window_h = p.window_w = 2, p.stride_h = p.stride_w = 2;
  p.p = p.q = 112;
  EXPECT_FALSE(cudnn::pool2d_supports(p).ok);
  p.n = 32;
  EXPECT_TRUE(cudnn::pool2d_supports(p).ok);
}

TEST(CudnnLimits, ATensorOverTheCountIsAConfigErrorThatNamesIt) {
  try {
    const cuda::TensorDesc d(1024, 64, 224, 224);
    FAIL() << "a descriptor of 3.3e9 elements was made";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("[1024, 64, 224, 224]"), std::string::npos) << e.what();
  }
}

// A softmax in place (the dense layer's output overwritten by its softmax) runs native
// under --impl cudnn, says why, and computes what the reference does; out of place it is
// cuDNN's.
TEST(CudnnLimits, InPlaceSoftmaxRunsNativeUnderCudnn) {
  REQUIRE_GPU();
  const ActivationGeometry g{3, 5, 1};
  const Tensor x = testing::host_random(Shape{3, 5}, 11);
  auto be = testing::quiet_gpu(ImplPolicy::Cudnn);
  CpuBackend reference(true);
  auto run = [&](Backend& b, bool in_place) {
    const Tensor dx = b.to_device(x), y = b.zeros(x.shape());
    b.activation_forward(Activation::Softmax, g, dx.data(), in_place ? dx.data() : y.data());
    return b.to_host(in_place ? dx : y);
  };
  const Tensor want = run(reference, false);
  for (const bool in_place : {true, false}) {
    SCOPED_TRACE(in_place);
    const Tensor got = run(*be, in_place);
    for (int64_t i = 0; i < want.numel(); ++i)
      EXPECT_NEAR(got.host()[i], want.host()[i], 1e-6f) << i;
    const std::string choice = be->implementation_choices().at("activation forward softmax");
    EXPECT_EQ(choice, in_place ? "native (cuDNN does not document an in-place softmax)" : "cudnn");
  }
}

}  // namespace
}  // namespace cnn
