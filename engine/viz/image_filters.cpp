#include "engine/viz/image_filters.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/core/error.h"
#include "engine/ops/conv2d/conv2d.h"

namespace cnn::viz {

int ImageKernel::tap_sum() const {
  int s = 0;
  for (int t : taps) s += t;
  return s;
}

namespace {

// A kernel from its taps written row by row: "-1 0 1 / -2 0 2 / -1 0 1".
ImageKernel kernel(const char* name, const char* description, const char* rows, int divisor = 1) {
  ImageKernel k{name, description, 0, {}, divisor};
  std::istringstream in(rows);
  int row_count = 1;
  for (std::string tok; in >> tok;) {
    if (tok == "/") {
      ++row_count;
    } else {
      k.taps.push_back(std::stoi(tok));
    }
  }
  k.size = row_count;
  return k;
}

}  // namespace

const std::vector<ImageKernel>& image_kernels() {
  static const std::vector<ImageKernel> kKernels = {
      kernel("identity", "leaves the picture as it is", "0 0 0 / 0 1 0 / 0 0 0"),
      kernel("edge", "edge detection (diagonal differences)", "1 0 -1 / 0 0 0 / -1 0 1"),
      kernel("laplacian", "Laplacian, 4 neighbours", "0 -1 0 / -1 4 -1 / 0 -1 0"),
      kernel("laplacian-diag", "Laplacian with diagonals, 8 neighbours",
             "-1 -1 -1 / -1 8 -1 / -1 -1 -1"),
      kernel("sharpen", "sharpen (identity plus the 4-neighbour Laplacian)",
             "0 -1 0 / -1 5 -1 / 0 -1 0"),
      kernel("box-blur", "box blur, the mean of 3x3", "1 1 1 / 1 1 1 / 1 1 1", 9),
      kernel("gaussian", "Gaussian blur 3x3", "1 2 1 / 2 4 2 / 1 2 1", 16),
      kernel("sobel-x", "Sobel, horizontal gradient (vertical edges)", "-1 0 1 / -2 0 2 / -1 0 1"),
      kernel("sobel-y", "Sobel, vertical gradient (horizontal edges)", "-1 -2 -1 / 0 0 0 / 1 2 1"),
      kernel("line-horizontal", "line detector, horizontal lines", "-1 -1 -1 / 2 2 2 / -1 -1 -1"),
      kernel("line-vertical", "line detector, vertical lines", "-1 2 -1 / -1 2 -1 / -1 2 -1"),
      kernel("line-plus45", "line detector, +45 degrees (rising to the right)",
             "-1 -1 2 / -1 2 -1 / 2 -1 -1"),
      kernel("line-minus45", "line detector, -45 degrees (falling to the right)",
             "2 -1 -1 / -1 2 -1 / -1 -1 2"),
      kernel("log5", "Laplacian of Gaussian 5x5",
             "0 0 -1 0 0 / 0 -1 -2 -1 0 / -1 -2 16 -2 -1 / 0 -1 -2 -1 0 / 0 0 -1 0 0"),
  };
  return kKernels;
}

const ImageKernel& find_image_kernel(const std::string& name) {
  std::string names;
  for (const ImageKernel& k : image_kernels()) {
    if (k.name == name) return k;
    names += (names.empty() ? "" : ", ") + k.name;
  }
  throw ConfigError(fmt::format("unknown kernel '{}' (known: {})", name, names));
}

FilterScale parse_filter_scale(const std::string& name) {
  if (name == "auto") return FilterScale::Auto;
  if (name == "clamp") return FilterScale::Clamp;
  if (name == "abs") return FilterScale::Abs;
  throw ConfigError(fmt::format("unknown scaling '{}' (auto, clamp, abs)", name));
}

FilterScale resolve_filter_scale(const ImageKernel& k, FilterScale requested) {
  if (requested != FilterScale::Auto) return requested;
  return k.tap_sum() == 0 ? FilterScale::Abs : FilterScale::Clamp;
}

std::vector<std::vector<float>> filter_responses(Backend& backend, const ImageKernel& k,
                                                 const Image8& image) {
  CNN_CHECK(image.width >= 1 && image.height >= 1 && image.channels >= 1 && image.channels <= 4,
            ConfigError, "cannot filter a {} image", image.describe());
  CNN_CHECK(static_cast<int>(k.taps.size()) == k.size * k.size && k.divisor != 0, ConfigError,
            "kernel '{}' is malformed", k.name);
  const int planes = image.has_color() ? 3 : 1;
  const int W = image.width, H = image.height, half = k.size / 2;
  const size_t plane = static_cast<size_t>(W) * static_cast<size_t>(H);
  std::vector<std::vector<float>> out(static_cast<size_t>(planes), std::vector<float>(plane));
  Tensor w = Tensor::empty_host(Shape{1, 1, k.size, k.size});
  for (size_t i = 0; i < k.taps.size(); ++i) w.host()[i] = static_cast<float>(k.taps[i]);
  const Tensor dw = backend.to_device(w);
  const float div = static_cast<float>(k.divisor);

  // Strips of about 2^20 pixels bound the memory (the CPU's im2col buffer holds size^2
  // floats per pixel). Each strip reads `half` rows of its neighbours; only the picture's
  // own top and bottom rows are padded with zeros, so strips join seamlessly.
  const int strip = std::max(1, (1 << 20) / W);
  for (int r0 = 0; r0 < H; r0 += strip) {
    const int r1 = std::min(H, r0 + strip);
    const int in0 = std::max(0, r0 - half), in1 = std::min(H, r1 + half);
    Conv2dParams p;
    p.filters = 1;
    p.kernel_h = p.kernel_w = k.size;
    p.use_bias = false;
    p.padding = Padding::explicit_(half - (r0 - in0), half - (in1 - r1), half, half);
    // The channels are the batch: [planes, 1, rows, W].
    const Shape in_shape{planes, 1, in1 - in0, W};
    const cnnk::Conv2dGeometry g = conv2d_geometry(p, in_shape);
    CNN_CHECK(g.p == r1 - r0 && g.q == W, Error, "strip geometry {} for rows {}..{}", describe(g),
              r0, r1);
    Tensor x = Tensor::empty_host(in_shape);
    const size_t in_plane = static_cast<size_t>(in1 - in0) * static_cast<size_t>(W);
    for (int c = 0; c < planes; ++c)
      for (size_t i = 0; i < in_plane; ++i)
        x.host()[static_cast<size_t>(c) * in_plane + i] =
            image.pixels[(static_cast<size_t>(in0) * static_cast<size_t>(W) + i) *
                             static_cast<size_t>(image.channels) +
                         static_cast<size_t>(c)];
    const Tensor dx = backend.to_device(x);
    const Tensor dy = backend.empty(Shape{g.n, g.k, g.p, g.q});
    backend.conv2d_forward(g, dx.data(), dw.data(), nullptr, dy.data());
    const Tensor y = backend.to_host(dy);
    const size_t out_plane = static_cast<size_t>(r1 - r0) * static_cast<size_t>(W);
    for (int c = 0; c < planes; ++c) {
      const float* src = y.host() + static_cast<size_t>(c) * out_plane;
      float* dst = out[static_cast<size_t>(c)].data() + static_cast<size_t>(r0) * W;
      for (size_t i = 0; i < out_plane; ++i) dst[i] = src[i] / div;
    }
  }
  return out;
}

Image8 apply_image_kernel(Backend& backend, const ImageKernel& k, const Image8& image,
                          FilterScale scale) {
  const std::vector<std::vector<float>> planes = filter_responses(backend, k, image);
  const FilterScale rule = resolve_filter_scale(k, scale);
  double factor = 1.0;
  if (rule == FilterScale::Abs) {
    double max_abs = 0;
    for (const auto& pl : planes)
      for (float v : pl) max_abs = std::max(max_abs, std::abs(static_cast<double>(v)));
    factor = max_abs > 0 ? 255.0 / max_abs : 0.0;
  }
  Image8 out = image;  // keeps the size, the channels and the alpha
  for (size_t c = 0; c < planes.size(); ++c)
    for (size_t i = 0; i < planes[c].size(); ++i) {
      double v = planes[c][i];
      v = rule == FilterScale::Abs ? std::abs(v) * factor : v;
      out.pixels[i * static_cast<size_t>(image.channels) + c] =
          static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
    }
  return out;
}

}  // namespace cnn::viz
