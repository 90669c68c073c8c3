// Tensors, devices and random numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "cnnk/random.h"
#include "engine/backend/impl_policy.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/core/tensor.h"

namespace cnn {
namespace {

TEST(Tensor, ViewsShareStorageAndCheckBounds) {
  Tensor t = Tensor::zeros_host(Shape{4, 2, 3});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  Tensor s = t.slice_batch(1, 2);
  EXPECT_EQ(s.shape(), (Shape{2, 2, 3}));
  s.host()[0] = 5.0f;
  EXPECT_EQ(t.host()[6], 5.0f);
  Tensor r = t.reshape(Shape{24});
  EXPECT_EQ(r.host()[6], 5.0f);
  EXPECT_THROW(t.reshape(Shape{25}), Error);
  EXPECT_THROW(t.slice_batch(3, 2), Error);
  EXPECT_THROW(t.view(20, Shape{5}), Error);
  EXPECT_EQ(t.view(20, Shape{4}).host(), t.host() + 20);
  EXPECT_EQ(Shape({2, 3}).str(true), "(None, 3)");
  EXPECT_EQ(Shape({7}).str(), "(7,)");
}

TEST(Device, RequestsResolveOrFailClearly) {
  EXPECT_TRUE(resolve_device("cpu").is_host());
  EXPECT_THROW(resolve_device("tpu"), ConfigError);
  EXPECT_THROW(resolve_device("cuda:x"), ConfigError);
  const CudaStatus st = probe_cuda();
  if (!st.available) {
    EXPECT_FALSE(st.reason.empty());
    EXPECT_TRUE(resolve_device("auto").is_host());
    try {
      resolve_device("cuda");
      FAIL() << "expected DeviceError";
    } catch (const DeviceError& e) {
      EXPECT_NE(std::string(e.what()).find(st.reason), std::string::npos);
    }
  } else {
    EXPECT_TRUE(resolve_device("auto").is_cuda());
    EXPECT_THROW(resolve_device(fmt::format("cuda:{}", st.gpus.size())), DeviceError);
  }
}

// CMake's architecture entries against compute capabilities: SASS runs within its major
// version from its minor up, PTX on every later GPU, an arch-specific build only on its own.
TEST(Device, BuildArchitecturesCoverTheGpusTheyCan) {
  EXPECT_TRUE(cuda_archs_cover("90", 9, 0));
  EXPECT_TRUE(cuda_archs_cover("90", 10, 0));  // PTX, through the JIT
  EXPECT_FALSE(cuda_archs_cover("90", 8, 0));
  EXPECT_FALSE(cuda_archs_cover("90", 8, 9));
  EXPECT_TRUE(cuda_archs_cover("80-real", 8, 6));
  EXPECT_FALSE(cuda_archs_cover("80-real", 9, 0));
  EXPECT_FALSE(cuda_archs_cover("86-real", 8, 0));
  EXPECT_TRUE(cuda_archs_cover("80-virtual", 9, 0));
  EXPECT_FALSE(cuda_archs_cover("90-virtual", 8, 9));
  EXPECT_TRUE(cuda_archs_cover("90a", 9, 0));
  EXPECT_FALSE(cuda_archs_cover("90a", 10, 0));
  EXPECT_TRUE(cuda_archs_cover("80-real,90", 8, 0));
  EXPECT_TRUE(cuda_archs_cover("80-real;90-real", 9, 0));
  EXPECT_FALSE(cuda_archs_cover("80-real;90-real", 7, 5));
  EXPECT_TRUE(cuda_archs_cover("120", 12, 0));
  EXPECT_FALSE(cuda_archs_cover("120", 9, 0));
  for (const char* any : {"", "native", "all", "all-major"})
    EXPECT_TRUE(cuda_archs_cover(any, 7, 0)) << any;
}

TEST(Device, ADriverTooOldForTheRuntimeSaysBothVersionsAndTheWayOut) {
  const std::string why = driver_too_old_reason(12080, 13000);
  EXPECT_NE(why.find("supports CUDA up to 12.8"), std::string::npos) << why;
  EXPECT_NE(why.find("runtime is CUDA 13.0"), std::string::npos) << why;
  EXPECT_NE(why.find("update the driver"), std::string::npos) << why;
}

TEST(Device, GpusAreFoundByOrdinalNotByPosition) {
  // Device 1's properties could not be read: the probe lists 0 and 2.
  CudaStatus st;
  st.gpus.push_back({0, "first", 9, 0, 1, ""});
  st.gpus.push_back({2, "third", 9, 0, 1, ""});
  ASSERT_NE(find_gpu(st, 2), nullptr);
  EXPECT_EQ(find_gpu(st, 2)->name, "third");
  EXPECT_EQ(find_gpu(st, 0)->name, "first");
  EXPECT_EQ(find_gpu(st, 1), nullptr);
  EXPECT_EQ(find_gpu(st, -1), nullptr);
  EXPECT_EQ(find_gpu(CudaStatus{}, 0), nullptr);
}

TEST(ImplPolicy, PassesThatCannotBeTimedRunNativeUnderAuto) {
  EXPECT_EQ(untimed(ImplPolicy::Auto), ImplPolicy::Native);
  EXPECT_EQ(untimed(ImplPolicy::Native), ImplPolicy::Native);
  EXPECT_EQ(untimed(ImplPolicy::Cudnn), ImplPolicy::Cudnn);
}

TEST(Error, ContextReadsOutermostFirst) {
  Error e("bad magic");
  e.with_context("reading train-images").with_context("loading fashion-mnist");
  EXPECT_STREQ(e.what(), "loading fashion-mnist: reading train-images: bad magic");
  EXPECT_EQ(e.message(), "bad magic");
}

TEST(Rng, StreamsAreReproducibleAndIndependent) {
  Rng a(1), b(1), c(2);
  for (int i = 0; i < 10; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
  std::vector<int> v(100);
  std::iota(v.begin(), v.end(), 0);
  Rng::stream(7, 1).shuffle(v);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);  // a permutation
  EXPECT_NE(v[0] + v[1] * 100, 0 + 1 * 100);
  double sum = 0;
  Rng u(3);
  for (int i = 0; i < 10000; ++i) {
    const double x = u.uniform();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    sum += x;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  // The top 24 bits of the counter's random word, scaled: a pure function of both.
  EXPECT_EQ(cnnk::uniform01(5, 9),
            static_cast<float>(cnnk::random_bits(5, 9) >> 40) / static_cast<float>(1 << 24));
  EXPECT_NE(cnnk::uniform01(5, 9), cnnk::uniform01(5, 10));
  EXPECT_NE(cnnk::uniform01(5, 9), cnnk::uniform01(6, 9));
}

}  // namespace
}  // namespace cnn
