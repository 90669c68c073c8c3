#include "engine/viz/grids.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"
#include "engine/viz/canvas.h"
#include "engine/viz/font.h"

namespace cnn::viz {
namespace {

constexpr int kMargin = 16;
constexpr int kTitleScale = 2;
constexpr Rgb kOutline{150, 150, 150};

// The smallest and largest finite value of n floats (0, 0 when none is finite).
std::pair<double, double> min_max(const float* v, size_t n) {
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; ++i)
    if (std::isfinite(v[i])) {
      lo = std::min(lo, static_cast<double>(v[i]));
      hi = std::max(hi, static_cast<double>(v[i]));
    }
  return lo <= hi ? std::make_pair(lo, hi) : std::make_pair(0.0, 0.0);
}

// v scaled to [0, 1] by [lo, hi]; `flat` when the range is empty.
double unit(double v, double lo, double hi, double flat) {
  if (!(hi > lo) || !std::isfinite(v)) return flat;
  return std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
}

int magnify_to(int target, int size) {
  return std::max(1, static_cast<int>(std::lround(static_cast<double>(target) / size)));
}

GridLayout layout_grid(int count, int tile_w, int tile_h, int x0, int y0) {
  GridLayout g;
  g.count = count;
  g.cols = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(count)))));
  g.rows = (count + g.cols - 1) / g.cols;
  g.tile_w = tile_w;
  g.tile_h = tile_h;
  g.gap = 8;
  g.x0 = x0;
  g.y0 = y0;
  return g;
}

int grid_width(const GridLayout& g) { return g.cols * g.tile_w + (g.cols - 1) * g.gap; }
int grid_height(const GridLayout& g) { return g.rows * g.tile_h + (g.rows - 1) * g.gap; }

// A "low -> high" strip of the colour map, `w` pixels wide, at (x, y).
void colour_key(Canvas& cv, int x, int y, int w, bool use_viridis) {
  const int h = text_height(kTitleScale);
  cv.text(x, y, "low", colors::kText, kTitleScale);
  const int bar_x = x + text_width("low", kTitleScale) + 8;
  for (int i = 0; i < w; ++i) {
    const double t = static_cast<double>(i) / std::max(w - 1, 1);
    cv.fill_rect(bar_x + i, y, 1, h, use_viridis ? viridis(t) : gray(t));
  }
  cv.outline_rect(bar_x - 1, y - 1, w + 2, h + 2, kOutline);
  cv.text(bar_x + w + 8, y, "high", colors::kText, kTitleScale);
}

}  // namespace

GridPicture render_filters(const float* weights, int k, int c, int r, int s,
                           const std::string& title) {
  CNN_CHECK(k >= 1 && c >= 1 && r >= 1 && s >= 1, ConfigError,
            "no filters to draw: weights [{}, {}, {}, {}]", k, c, r, s);
  const bool colour = c == 3;
  const int blocks = colour ? 1 : c;  // channel blocks side by side in a tile
  int scale = magnify_to(42, std::max(r, s));
  if (blocks > 1) scale = std::max(1, std::min(scale, 480 / (blocks * s)));
  const int block_gap = blocks > 1 ? 2 : 0;
  const int tile_w = blocks * s * scale + (blocks - 1) * block_gap;
  const int tile_h = r * scale;

  const int title_h = text_height(kTitleScale);
  GridLayout g = layout_grid(k, tile_w, tile_h, kMargin + 1, kMargin + title_h + 44);
  const int width = std::max(
      {grid_width(g) + 2 * kMargin + 2, text_width(title, kTitleScale) + 2 * kMargin, 240});
  g.x0 = (width - grid_width(g)) / 2;
  const int height = g.y0 + grid_height(g) + kMargin + 1;
  Canvas cv(width, height, colors::kWhite);
  cv.text(width / 2, kMargin, title, colors::kText, kTitleScale, Align::Center);
  colour_key(cv, width / 2 - 100, kMargin + title_h + 12, 100, false);

  const size_t per_filter = static_cast<size_t>(c) * r * s;
  for (int f = 0; f < k; ++f) {
    const float* w = weights + static_cast<size_t>(f) * per_filter;
    const auto [lo, hi] = min_max(w, per_filter);
    const int tx = g.tile_x(f), ty = g.tile_y(f);
    cv.outline_rect(tx - 1, ty - 1, tile_w + 2, tile_h + 2, kOutline);
    for (int b = 0; b < blocks; ++b) {
      std::vector<Rgb> block(static_cast<size_t>(r) * s);
      for (int i = 0; i < r * s; ++i) {
        if (colour) {
          const auto ch = [&, lo = lo, hi = hi](int cc) {
            return static_cast<uint8_t>(
                std::lround(255 * unit(w[static_cast<size_t>(cc) * r * s + i], lo, hi, 0.5)));
          };
          block[static_cast<size_t>(i)] = {ch(0), ch(1), ch(2)};
        } else {
          block[static_cast<size_t>(i)] =
              gray(unit(w[static_cast<size_t>(b) * r * s + i], lo, hi, 0.5));
        }
      }
      cv.blit_scaled(tx + b * (s * scale + block_gap), ty, block, s, r, scale);
      if (b > 0)
        cv.fill_rect(tx + b * (s * scale + block_gap) - block_gap, ty, block_gap, tile_h, kOutline);
    }
  }
  return {cv.image(), g};
}

GridPicture render_feature_maps(const float* maps, int c, int h, int w, const float* input, int ic,
                                int ih, int iw, const std::string& title) {
  CNN_CHECK(c >= 1 && h >= 1 && w >= 1, ConfigError, "no feature maps to draw: [{}, {}, {}]", c, h,
            w);
  const int scale = magnify_to(c > 64 ? 56 : 84, std::max(h, w));
  const int title_h = text_height(kTitleScale);
  const int top = kMargin + title_h + 44;

  // The input on the left, about twice a tile's size.
  const bool show_input = input && ic >= 1 && ih >= 1 && iw >= 1;
  const int in_scale = show_input ? magnify_to(168, std::max(ih, iw)) : 0;
  const int in_w = show_input ? iw * in_scale : 0;
  const int in_h = show_input ? ih * in_scale : 0;
  const int grid_x = kMargin + 1 + (show_input ? in_w + 40 : 0);
  GridLayout g = layout_grid(c, w * scale, h * scale, grid_x, top + title_h + 8);
  const int width = std::max(
      {grid_x + grid_width(g) + kMargin + 1, text_width(title, kTitleScale) + 2 * kMargin, 240});
  const int height = std::max(g.y0 + grid_height(g), top + title_h + 8 + in_h) + kMargin + 1;
  Canvas cv(width, height, colors::kWhite);
  cv.text(width / 2, kMargin, title, colors::kText, kTitleScale, Align::Center);
  colour_key(cv, width / 2 - 100, kMargin + title_h + 12, 100, true);

  if (show_input) {
    cv.text(kMargin + 1 + in_w / 2, top, "input", colors::kText, kTitleScale, Align::Center);
    const bool rgb = ic == 3;
    const size_t plane = static_cast<size_t>(ih) * iw;
    std::vector<Rgb> block(plane);
    for (size_t i = 0; i < plane; ++i) {
      const auto v = [&](int cc) {
        return static_cast<uint8_t>(
            std::lround(255 * std::clamp(input[cc * plane + i], 0.0f, 1.0f)));
      };
      block[i] = rgb ? Rgb{v(0), v(1), v(2)} : Rgb{v(0), v(0), v(0)};
    }
    cv.outline_rect(kMargin, g.y0 - 1, in_w + 2, in_h + 2, kOutline);
    cv.blit_scaled(kMargin + 1, g.y0, block, iw, ih, in_scale);
  }
  cv.text(g.x0 + grid_width(g) / 2, top, fmt::format("{} channels", c), colors::kText, kTitleScale,
          Align::Center);

  const size_t plane = static_cast<size_t>(h) * w;
  for (int ch = 0; ch < c; ++ch) {
    const float* m = maps + static_cast<size_t>(ch) * plane;
    const auto [lo, hi] = min_max(m, plane);
    std::vector<Rgb> block(plane);
    for (size_t i = 0; i < plane; ++i) block[i] = viridis(unit(m[i], lo, hi, 0.0));
    const int tx = g.tile_x(ch), ty = g.tile_y(ch);
    cv.outline_rect(tx - 1, ty - 1, g.tile_w + 2, g.tile_h + 2, kOutline);
    cv.blit_scaled(tx, ty, block, w, h, scale);
  }
  return {cv.image(), g};
}

int first_conv_node(const Model& model) {
  for (const Node& n : model.nodes())
    if (n.layer && n.layer->type() == "Conv2D") return n.id;
  return -1;
}

void write_filters_png(const Model& model, const Parameters& params, const std::string& path) {
  const int id = first_conv_node(model);
  CNN_CHECK(id >= 0, ConfigError, "model '{}' has no Conv2D layer: no filters to draw",
            model.name());
  const Node& node = model.nodes().at(static_cast<size_t>(id));
  const Parameters::Entry& e = params.find(node.name + "/kernel");
  const Shape& sh = e.value.shape();
  CNN_CHECK(sh.rank() == 4, Error, "'{}' has shape {}, not [k, c, r, s]", e.name, sh.str());
  std::vector<float> w(static_cast<size_t>(e.value.numel()));
  params.read(e, w.data());
  const int k = static_cast<int>(sh[0]), c = static_cast<int>(sh[1]);
  const int r = static_cast<int>(sh[2]), s = static_cast<int>(sh[3]);
  std::string title = fmt::format("{}: {} filter{} {}x{}", node.name, k, k == 1 ? "" : "s", r, s);
  if (c > 1) title += fmt::format(" over {} channels", c);
  write_png(path, render_filters(w.data(), k, c, r, s, title).image);
}

void write_feature_maps_png(Executor& executor, const Model& model, const Tensor& image,
                            const std::string& layer, const std::string& path) {
  const Shape& in_shape = model.input_shape();
  std::vector<int64_t> dims{1};
  for (int64_t d : in_shape.dims()) dims.push_back(d);
  const Shape batched(dims);
  CNN_CHECK(image.defined() && (image.shape() == in_shape || image.shape() == batched), ConfigError,
            "model '{}' takes one image of {}, not {}", model.name(), in_shape.str(),
            image.defined() ? image.shape().str() : "nothing");
  std::string spatial;  // the layers that have feature maps, for messages
  int id = -1;
  for (const Node& n : model.nodes()) {
    if (!n.layer) continue;
    if (n.shape.rank() == 3) spatial += (spatial.empty() ? "" : ", ") + n.name;
    if (id < 0 && (layer.empty() ? n.layer->type() == "Conv2D" : n.name == layer)) id = n.id;
  }
  CNN_CHECK(id >= 0, ConfigError,
            "model '{}' has no layer named '{}' (layers with feature maps: {})", model.name(),
            layer.empty() ? "Conv2D" : layer, spatial);
  const Node& node = model.nodes().at(static_cast<size_t>(id));
  CNN_CHECK(node.shape.rank() == 3, ConfigError,
            "layer '{}' ({}) outputs {}, not feature maps (layers with feature maps: {})",
            node.name, node.layer->type(), node.shape.str(), spatial);

  Backend& be = executor.backend();
  const Tensor host_in = image.reshape(batched);
  executor.forward(be.to_device(host_in), false);
  const Tensor maps = be.to_host(executor.activation(id));
  const int c = static_cast<int>(node.shape[0]), h = static_cast<int>(node.shape[1]),
            w = static_cast<int>(node.shape[2]);
  const bool image_like = in_shape.rank() == 3;
  const std::string title =
      fmt::format("{} ({}): {} feature maps {}x{}", node.name, node.layer->type(), c, h, w);
  write_png(path, render_feature_maps(maps.host(), c, h, w, image_like ? host_in.host() : nullptr,
                                      image_like ? static_cast<int>(in_shape[0]) : 0,
                                      image_like ? static_cast<int>(in_shape[1]) : 0,
                                      image_like ? static_cast<int>(in_shape[2]) : 0, title)
                      .image);
}

}  // namespace cnn::viz
