#include "engine/io/png_input.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace cnn {
namespace {

// One output sample of a resampled axis: a weighted sum of source samples.
struct Tap {
  int src = 0;
  double weight = 0;
};

// Per output index, the source taps along one axis of `in` samples resampled to `out`.
std::vector<std::vector<Tap>> axis_taps(int in, int out) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(out));
  const double f = static_cast<double>(in) / out;  // source samples per output sample
  for (int i = 0; i < out; ++i) {
    auto& t = taps[static_cast<size_t>(i)];
    if (f >= 1.0) {
      // Area: output i covers source [i f, (i + 1) f); each source pixel weighs by its
      // overlap with that interval.
      const double a = i * f, b = (i + 1) * f;
      for (int s = static_cast<int>(std::floor(a)); s < in && s < b; ++s) {
        const double overlap = std::min<double>(s + 1, b) - std::max<double>(s, a);
        if (overlap > 0) t.push_back({s, overlap / f});
      }
    } else {
      // Bilinear between the two nearest source centres (pixel centres aligned).
      const double u = std::clamp((i + 0.5) * f - 0.5, 0.0, static_cast<double>(in - 1));
      const int s0 = static_cast<int>(std::floor(u));
      const int s1 = std::min(s0 + 1, in - 1);
      const double w1 = u - s0;
      t.push_back({s0, 1.0 - w1});
      if (w1 > 0) t.push_back({s1, w1});
    }
  }
  return taps;
}

double border_mean(const Image8& g) {
  double sum = 0;
  int64_t n = 0;
  for (int y = 0; y < g.height; ++y)
    for (int x = 0; x < g.width; ++x)
      if (y == 0 || x == 0 || y == g.height - 1 || x == g.width - 1) {
        sum += g.at(x, y);
        ++n;
      }
  return n ? sum / static_cast<double>(n) : 0.0;
}

}  // namespace

InvertMode parse_invert_mode(const std::string& name) {
  if (name == "auto") return InvertMode::Auto;
  if (name == "yes") return InvertMode::Always;
  if (name == "no") return InvertMode::Never;
  throw ConfigError(fmt::format("unknown invert mode '{}' (auto, yes, no)", name));
}

std::vector<float> resample_gray(const Image8& gray, int out_w, int out_h) {
  CNN_CHECK(gray.channels == 1 && gray.width >= 1 && gray.height >= 1, Error,
            "resample_gray needs a non-empty one-channel image, not {}", gray.describe());
  CNN_CHECK(out_w >= 1 && out_h >= 1, ConfigError, "cannot resample to {}x{}", out_w, out_h);
  const auto tx = axis_taps(gray.width, out_w);
  const auto ty = axis_taps(gray.height, out_h);
  // Rows first (width), then columns (height).
  std::vector<double> rows(static_cast<size_t>(out_w) * static_cast<size_t>(gray.height));
  for (int y = 0; y < gray.height; ++y)
    for (int x = 0; x < out_w; ++x) {
      double v = 0;
      for (const Tap& t : tx[static_cast<size_t>(x)]) v += t.weight * gray.at(t.src, y);
      rows[static_cast<size_t>(y) * static_cast<size_t>(out_w) + static_cast<size_t>(x)] = v;
    }
  std::vector<float> out(static_cast<size_t>(out_w) * static_cast<size_t>(out_h));
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x) {
      double v = 0;
      for (const Tap& t : ty[static_cast<size_t>(y)])
        v += t.weight *
             rows[static_cast<size_t>(t.src) * static_cast<size_t>(out_w) + static_cast<size_t>(x)];
      out[static_cast<size_t>(y) * static_cast<size_t>(out_w) + static_cast<size_t>(x)] =
          static_cast<float>(v);
    }
  return out;
}

ModelInput prepare_model_input(const Image8& image, int rows, int cols, InvertMode invert) {
  CNN_CHECK(rows >= 1 && cols >= 1, ConfigError, "a model input of {}x{} pixels is impossible",
            rows, cols);
  CNN_CHECK(image.width >= 1 && image.height >= 1, DataError, "the image is empty");
  Image8 g = to_grayscale(image);
  ModelInput r;
  r.rows = rows;
  r.cols = cols;
  r.border_mean = border_mean(g);
  r.inverted =
      invert == InvertMode::Always || (invert == InvertMode::Auto && r.border_mean > 127.5);
  if (r.inverted)
    for (uint8_t& v : g.pixels) v = static_cast<uint8_t>(255 - v);
  r.pixels.assign(static_cast<size_t>(rows) * static_cast<size_t>(cols), 0.0f);
  if (g.width == cols && g.height == rows) {
    for (size_t i = 0; i < r.pixels.size(); ++i) r.pixels[i] = g.pixels[i] / 255.0f;
    return r;
  }
  r.resized = true;
  const double scale =
      std::min(static_cast<double>(cols) / g.width, static_cast<double>(rows) / g.height);
  const int w = std::clamp(static_cast<int>(std::lround(g.width * scale)), 1, cols);
  const int h = std::clamp(static_cast<int>(std::lround(g.height * scale)), 1, rows);
  const std::vector<float> fitted = resample_gray(g, w, h);
  const float margin = static_cast<float>(border_mean(g) / 255.0);
  std::fill(r.pixels.begin(), r.pixels.end(), margin);
  const int x0 = (cols - w) / 2, y0 = (rows - h) / 2;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      r.pixels[static_cast<size_t>(y0 + y) * static_cast<size_t>(cols) +
               static_cast<size_t>(x0 + x)] =
          std::clamp(
              fitted[static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)] /
                  255.0f,
              0.0f, 1.0f);
  return r;
}

}  // namespace cnn
