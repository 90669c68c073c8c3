// The classical image filters through the engine's convolution: responses computed by
// hand on a 5x5 picture, the scaling back to 0..255, colour and alpha, seams between
// the strips a large picture is cut into, and the kernel bank itself. Every case runs
// on the reference loops, the OpenBLAS path and, where a GPU is usable, CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/io/png.h"
#include "engine/viz/image_filters.h"

namespace cnn {
namespace {

// 0 0 0 0 0 / 0 90 90 90 0 / 0 90 180 90 0 / 0 90 90 90 0 / 0 0 0 0 0
Image8 plateau() {
  Image8 img(5, 5, 1, 0);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) img.at(x, y) = 90;
  img.at(2, 2) = 180;
  return img;
}

std::vector<float> as_floats(std::initializer_list<int> v) {
  return std::vector<float>(v.begin(), v.end());
}

class ImageFilters : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& which = GetParam();
    if (which == "cuda") {
      const CudaStatus st = probe_cuda();
      if (!has_cuda_backend() || !st.available) GTEST_SKIP() << "no usable GPU: " << st.reason;
      BackendOptions o;
      o.verbose = false;
      backend_ = make_backend(Device::cuda(0), o);
    } else {
      backend_ = std::make_unique<CpuBackend>(which == "reference");
    }
  }
  std::vector<float> responses(const std::string& kernel, const Image8& img) {
    return viz::filter_responses(*backend_, viz::find_image_kernel(kernel), img).at(0);
  }
  Image8 apply(const std::string& kernel, const Image8& img,
               viz::FilterScale scale = viz::FilterScale::Auto) {
    return viz::apply_image_kernel(*backend_, viz::find_image_kernel(kernel), img, scale);
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(ImageFilters, IdentityKeepsThePicture) {
  const Image8 img = plateau();
  EXPECT_EQ(apply("identity", img).pixels, img.pixels);
}

TEST_P(ImageFilters, BoxBlurAveragesWithZerosOutside) {
  // Worked by hand: e.g. the corner sees only the 90 at (1, 1): 90 / 9 = 10.
  EXPECT_EQ(responses("box-blur", plateau()), as_floats({10, 20, 30,  20, 10,  //
                                                         20, 50, 70,  50, 20,  //
                                                         30, 70, 100, 70, 30,  //
                                                         20, 50, 70,  50, 20,  //
                                                         10, 20, 30,  20, 10}));
  const Image8 out = apply("box-blur", plateau());
  EXPECT_EQ(out.at(2, 2), 100);
  EXPECT_EQ(out.at(1, 0), 20);
}

TEST_P(ImageFilters, SobelXIsTheHorizontalGradient) {
  // Rows: (I(y-1,x+1) - I(y-1,x-1)) + 2 (I(y,x+1) - I(y,x-1)) + (I(y+1,x+1) - I(y+1,x-1)).
  const std::vector<float> expect = as_floats({90,  90,  0, -90,  -90,   //
                                               270, 360, 0, -360, -270,  //
                                               360, 540, 0, -540, -360,  //
                                               270, 360, 0, -360, -270,  //
                                               90,  90,  0, -90,  -90});
  EXPECT_EQ(responses("sobel-x", plateau()), expect);
  // sobel-y is its transpose on this symmetric picture.
  const std::vector<float> y = responses("sobel-y", plateau());
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 5; ++c)
      EXPECT_EQ(y[static_cast<size_t>(r * 5 + c)], expect[static_cast<size_t>(c * 5 + r)]);

  // abs (auto for a zero-sum kernel): |y| * 255 / 540; clamp: negatives to 0.
  const Image8 a = apply("sobel-x", plateau());
  const Image8 c = apply("sobel-x", plateau(), viz::FilterScale::Clamp);
  for (size_t i = 0; i < 25; ++i) {
    EXPECT_EQ(a.pixels[i], std::lround(std::abs(expect[i]) * (255.0 / 540.0))) << i;
    EXPECT_EQ(c.pixels[i], std::lround(std::clamp(expect[i], 0.0f, 255.0f))) << i;
  }
  EXPECT_EQ(a.at(1, 2), 255);
  EXPECT_EQ(a.at(3, 2), 255);
}

TEST_P(ImageFilters, LaplacianAndLog5RespondAtThePeak) {
  // 4-neighbour Laplacian at the centre: 4 * 180 - 4 * 90 = 360; at a flat corner 0.
  const std::vector<float> lap = responses("laplacian", plateau());
  EXPECT_EQ(lap[12], 360.0f);
  EXPECT_EQ(responses("laplacian-diag", plateau())[12], 8 * 180.0f - 8 * 90.0f);
  // log5 at the centre: 16 on the 180, -2 on the four 90s beside it, -1 on the four
  // diagonal 90s and on the four 0s two pixels away.
  EXPECT_EQ(responses("log5", plateau())[12], 16 * 180.0f - 8 * 90.0f - 4 * 90.0f);
  // A flat picture: every zero-sum kernel answers 0 away from the border.
  const Image8 flat(7, 7, 1, 77);
  for (const viz::ImageKernel& k : viz::image_kernels())
    if (k.tap_sum() == 0) {
      EXPECT_EQ(responses(k.name, flat)[3 * 7 + 3], 0.0f) << k.name;
    }
}

TEST_P(ImageFilters, GaussianAndSharpen) {
  // Gaussian at the centre: (4 * 180 + 2 * 4 * 90 + 1 * 4 * 90) / 16 = 1800 / 16.
  EXPECT_EQ(responses("gaussian", plateau())[12], 112.5f);
  EXPECT_EQ(apply("gaussian", plateau()).at(2, 2), 113);  // rounded half away from zero
  // Sharpen: 5 * 180 - 4 * 90 = 540, clamped to 255; a corner: -90 -> 0 ... clamped.
  const Image8 s = apply("sharpen", plateau());
  EXPECT_EQ(s.at(2, 2), 255);
  EXPECT_EQ(s.at(1, 0), 0);
}

TEST_P(ImageFilters, ColourChannelsAreFilteredAlikeAndAlphaIsKept) {
  const Image8 gray = plateau();
  Image8 rgba(5, 5, 4);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      rgba.at(x, y, 0) = gray.at(x, y);
      rgba.at(x, y, 1) = static_cast<uint8_t>(gray.at(x, y) / 2);
      rgba.at(x, y, 2) = 0;
      rgba.at(x, y, 3) = static_cast<uint8_t>(10 * (x + y));
    }
  const Image8 out = apply("box-blur", rgba);
  ASSERT_EQ(out.channels, 4);
  const Image8 g = apply("box-blur", gray);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) {
      EXPECT_EQ(out.at(x, y, 0), g.at(x, y));
      EXPECT_NEAR(out.at(x, y, 1), g.at(x, y) / 2.0, 0.51);
      EXPECT_EQ(out.at(x, y, 2), 0);
      EXPECT_EQ(out.at(x, y, 3), 10 * (x + y));
    }
  // Abs scaling shares one factor over the channels: the strongest channel reaches 255.
  const Image8 e = apply("sobel-x", rgba);
  EXPECT_EQ(e.at(1, 2, 0), 255);
  EXPECT_NEAR(e.at(1, 2, 1), 128, 1);
}

TEST_P(ImageFilters, LargePicturesAreCutIntoSeamlessStrips) {
  // 1100 x 1000: two strips of about 2^20 pixels; log5 reads two rows across the seam.
  const int w = 1100, h = 1000;
  Image8 img(w, h, 1);
  uint32_t s = 12345;
  for (uint8_t& v : img.pixels) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  const viz::ImageKernel& k = viz::find_image_kernel("log5");
  const std::vector<float> got = viz::filter_responses(*backend_, k, img).at(0);
  // The rows around the seam (953) and the picture's edges, by plain loops.
  for (int y : {0, 1, 950, 951, 952, 953, 954, 955, 998, 999})
    for (int x : {0, 1, 2, 500, 1097, 1098, 1099}) {
      int64_t sum = 0;
      for (int r = 0; r < 5; ++r)
        for (int c = 0; c < 5; ++c) {
          const int yy = y + r - 2, xx = x + c - 2;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w)
            sum += int64_t{k.taps[static_cast<size_t>(r * 5 + c)]} * img.at(xx, yy);
        }
      ASSERT_EQ(got[static_cast<size_t>(y) * w + x], static_cast<float>(sum)) << x << "," << y;
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, ImageFilters, ::testing::Values("reference", "openblas", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(ImageKernels, TheBankHoldsEveryNamedKernelWellFormed) {
  const std::vector<std::string> names = {
      "identity",     "edge",    "laplacian", "laplacian-diag",  "sharpen",       "box-blur",
      "gaussian",     "sobel-x", "sobel-y",   "line-horizontal", "line-vertical", "line-plus45",
      "line-minus45", "log5"};
  ASSERT_EQ(viz::image_kernels().size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const viz::ImageKernel& k = viz::image_kernels()[i];
    EXPECT_EQ(k.name, names[i]);
    EXPECT_EQ(k.taps.size(), static_cast<size_t>(k.size * k.size)) << k.name;
    EXPECT_EQ(k.size % 2, 1) << k.name;
    // Either brightness-keeping (taps sum to the divisor) or a detector (sum 0).
    EXPECT_TRUE(k.tap_sum() == k.divisor || k.tap_sum() == 0) << k.name;
  }
  EXPECT_EQ(viz::find_image_kernel("log5").size, 5);
  EXPECT_EQ(viz::resolve_filter_scale(viz::find_image_kernel("sobel-x"), viz::FilterScale::Auto),
            viz::FilterScale::Abs);
  EXPECT_EQ(viz::resolve_filter_scale(viz::find_image_kernel("box-blur"), viz::FilterScale::Auto),
            viz::FilterScale::Clamp);
  EXPECT_EQ(viz::resolve_filter_scale(viz::find_image_kernel("box-blur"), viz::FilterScale::Abs),
            viz::FilterScale::Abs);
  EXPECT_EQ(viz::parse_filter_scale("clamp"), viz::FilterScale::Clamp);
  EXPECT_THROW(viz::parse_filter_scale("log"), ConfigError);
  try {
    viz::find_image_kernel("sobel");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sobel-x"), std::string::npos) << e.what();
  }
}

TEST(ImageKernels, LineDetectorsFindTheirLines) {
  CpuBackend be;
  // A one-pixel line through the middle of a 9x9 picture, in each direction.
  const auto picture = [](int dir) {
    Image8 img(9, 9, 1, 0);
    for (int i = 0; i < 9; ++i) {
      if (dir == 0) img.at(i, 4) = 200;      // horizontal
      if (dir == 1) img.at(4, i) = 200;      // vertical
      if (dir == 2) img.at(i, 8 - i) = 200;  // +45: rising to the right
      if (dir == 3) img.at(i, i) = 200;      // -45: falling to the right
    }
    return img;
  };
  const char* kernels[] = {"line-horizontal", "line-vertical", "line-plus45", "line-minus45"};
  for (int k = 0; k < 4; ++k)
    for (int dir = 0; dir < 4; ++dir) {
      const float centre =
          viz::filter_responses(be, viz::find_image_kernel(kernels[k]), picture(dir))[0][4 * 9 + 4];
      if (k == dir) {
        EXPECT_EQ(centre, 6 * 200.0f) << kernels[k];
      } else {
        EXPECT_LT(centre, 6 * 200.0f) << kernels[k] << " on direction " << dir;
      }
    }
}

}  // namespace
}  // namespace cnn
