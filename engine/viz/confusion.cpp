#include "engine/viz/confusion.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"
#include "engine/viz/canvas.h"
#include "engine/viz/font.h"

namespace cnn::viz {
namespace {

constexpr int kMargin = 20;
constexpr int kScale = 2;

std::vector<std::string> labels_for(const ConfusionMatrix& m,
                                    const std::vector<std::string>& names) {
  CNN_CHECK(names.empty() || static_cast<int>(names.size()) == m.classes, ConfigError,
            "{} class names for a confusion matrix of {} classes", names.size(), m.classes);
  if (!names.empty()) return names;
  std::vector<std::string> ids;
  for (int i = 0; i < m.classes; ++i) ids.push_back(std::to_string(i));
  return ids;
}

// Where everything of the picture lies.
struct Layout {
  int cell = 0;
  int grid_x = 0, grid_y = 0;  // top-left of cell (0, 0)
  int label_w = 0;             // the longest class name, in pixels
  int width = 0, height = 0;
};

Layout layout_for(const ConfusionMatrix& m, const std::vector<std::string>& labels) {
  Layout l;
  l.cell = m.classes <= 12 ? 56 : std::max(20, 672 / m.classes);
  for (const std::string& s : labels) l.label_w = std::max(l.label_w, text_width(s, kScale));
  const int axis_title = text_height(kScale);
  l.grid_x = kMargin + axis_title + 14 + l.label_w + 12;
  l.grid_y = kMargin + text_height(kScale) + 30;
  const int grid = l.cell * m.classes;
  l.width = l.grid_x + grid + 24 + 18 + 10 + text_width("100%", kScale) + kMargin;
  l.height = l.grid_y + grid + 12 + l.label_w + 14 + axis_title + kMargin;
  return l;
}

}  // namespace

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t c : counts) t += c;
  return t;
}

int64_t ConfusionMatrix::correct() const {
  int64_t t = 0;
  for (int i = 0; i < classes; ++i) t += at(i, i);
  return t;
}

int64_t ConfusionMatrix::row_total(int truth) const {
  int64_t t = 0;
  for (int p = 0; p < classes; ++p) t += at(truth, p);
  return t;
}

double ConfusionMatrix::accuracy() const {
  const int64_t t = total();
  return t ? static_cast<double>(correct()) / static_cast<double>(t) : 0.0;
}

const std::vector<std::string>& class_names(const std::string& dataset) {
  static const std::vector<std::string> kFashion = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  static const std::vector<std::string> kDigits = {"0", "1", "2", "3", "4",
                                                   "5", "6", "7", "8", "9"};
  if (dataset == "fashion-mnist") return kFashion;
  if (dataset == "mnist") return kDigits;
  throw ConfigError(fmt::format("no class names for dataset '{}' (fashion-mnist, mnist)", dataset));
}

ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& predicted,
                                 int classes) {
  CNN_CHECK(classes >= 1, ConfigError, "a confusion matrix needs at least one class, not {}",
            classes);
  CNN_CHECK(truth.size() == predicted.size(), ConfigError, "{} true labels but {} predictions",
            truth.size(), predicted.size());
  ConfusionMatrix m;
  m.classes = classes;
  m.counts.assign(static_cast<size_t>(classes) * static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    const int t = truth[i], p = predicted[i];
    CNN_CHECK(t >= 0 && t < classes && p >= 0 && p < classes, ConfigError,
              "item {}: class ids {} (true) and {} (predicted) must lie in [0, {})", i, t, p,
              classes);
    ++m.counts[static_cast<size_t>(t) * static_cast<size_t>(classes) + static_cast<size_t>(p)];
  }
  return m;
}

std::vector<int> argmax_rows(const Tensor& scores) {
  CNN_CHECK(scores.defined() && scores.shape().rank() == 2 && scores.shape()[1] >= 1, ConfigError,
            "scores must be [N, classes], not {}",
            scores.defined() ? scores.shape().str() : "undefined");
  const int64_t n = scores.shape()[0], k = scores.shape()[1];
  const float* s = scores.host();
  std::vector<int> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = s + i * k;
    int best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[best]) best = static_cast<int>(j);
    out[static_cast<size_t>(i)] = best;
  }
  return out;
}

ConfusionMatrix confusion_matrix(const Tensor& labels, const Tensor& scores) {
  const std::vector<int> predicted = argmax_rows(scores);
  CNN_CHECK(labels.defined() && labels.numel() == static_cast<int64_t>(predicted.size()),
            ConfigError, "{} labels for {} rows of scores", labels.defined() ? labels.numel() : 0,
            predicted.size());
  std::vector<int> truth(predicted.size());
  for (size_t i = 0; i < truth.size(); ++i)
    truth[i] = static_cast<int>(std::lround(labels.host()[i]));
  return confusion_matrix(truth, predicted, static_cast<int>(scores.shape()[1]));
}

CellRect confusion_cell(const ConfusionMatrix& m, const std::vector<std::string>& names, int truth,
                        int predicted) {
  const Layout l = layout_for(m, labels_for(m, names));
  return {l.grid_x + predicted * l.cell, l.grid_y + truth * l.cell, l.cell};
}

Image8 render_confusion(const ConfusionMatrix& m, const std::vector<std::string>& names,
                        const std::string& title_in) {
  CNN_CHECK(m.classes >= 1 &&
                m.counts.size() == static_cast<size_t>(m.classes) * static_cast<size_t>(m.classes),
            ConfigError, "a confusion matrix of {} classes holds {} counts", m.classes,
            m.counts.size());
  const std::vector<std::string> labels = labels_for(m, names);
  const Layout l = layout_for(m, labels);
  const std::string title =
      title_in.empty()
          ? fmt::format("confusion matrix: {} images, accuracy {:.4f}", m.total(), m.accuracy())
          : title_in;
  Canvas cv(std::max(l.width, text_width(title, kScale) + 2 * kMargin), l.height, colors::kWhite);
  const int grid = l.cell * m.classes;
  cv.text(cv.width() / 2, kMargin, title, colors::kText, kScale, Align::Center);

  for (int t = 0; t < m.classes; ++t) {
    const int64_t row = m.row_total(t);
    for (int p = 0; p < m.classes; ++p) {
      const int64_t n = m.at(t, p);
      const double share = row ? static_cast<double>(n) / static_cast<double>(row) : 0.0;
      const Rgb c = viridis(share);
      const int x = l.grid_x + p * l.cell, y = l.grid_y + t * l.cell;
      cv.fill_rect(x, y, l.cell, l.cell, c);
      const std::string count = std::to_string(n);
      const int scale = text_width(count, kScale) <= l.cell - 6 ? kScale : 1;
      if (text_width(count, scale) <= l.cell - 2)
        cv.text(x + l.cell / 2 + 1, y + (l.cell - text_height(scale)) / 2, count,
                luminance(c) > 128 ? colors::kText : colors::kWhite, scale, Align::Center);
    }
  }
  // Thin white lines between cells, a frame around the grid.
  for (int i = 1; i < m.classes; ++i) {
    cv.fill_rect(l.grid_x + i * l.cell, l.grid_y, 1, grid, colors::kWhite);
    cv.fill_rect(l.grid_x, l.grid_y + i * l.cell, grid, 1, colors::kWhite);
  }
  cv.outline_rect(l.grid_x - 1, l.grid_y - 1, grid + 2, grid + 2, colors::kAxis);

  // Class names: true classes left of the rows, predicted ones under the columns.
  for (int i = 0; i < m.classes; ++i) {
    const int cy = l.grid_y + i * l.cell + (l.cell - text_height(kScale)) / 2;
    cv.text(l.grid_x - 12, cy, labels[static_cast<size_t>(i)], colors::kText, kScale, Align::Right);
    const int cx = l.grid_x + i * l.cell + (l.cell - text_height(kScale)) / 2;
    cv.text_up(cx, l.grid_y + grid + 12, labels[static_cast<size_t>(i)], colors::kText, kScale,
               Align::Right);
  }
  cv.text_up(kMargin, l.grid_y + grid / 2, "true class", colors::kText, kScale, Align::Center);
  cv.text(l.grid_x + grid / 2, l.grid_y + grid + 12 + l.label_w + 14, "predicted class",
          colors::kText, kScale, Align::Center);

  // The colour key: share of the true class, 0% at the bottom, 100% at the top.
  const int bar_x = l.grid_x + grid + 24;
  for (int y = 0; y < grid; ++y)
    cv.fill_rect(bar_x, l.grid_y + y, 18, 1, viridis(1.0 - static_cast<double>(y) / (grid - 1)));
  cv.outline_rect(bar_x - 1, l.grid_y - 1, 20, grid + 2, colors::kAxis);
  for (int pct : {0, 50, 100}) {
    const int y = l.grid_y + (grid - 1) - (grid - 1) * pct / 100;
    cv.fill_rect(bar_x + 19, y, 5, 1, colors::kAxis);
    cv.text(bar_x + 28, y - text_height(kScale) / 2, fmt::format("{}%", pct), colors::kText,
            kScale);
  }
  return cv.image();
}

void write_confusion_png(const ConfusionMatrix& m, const std::vector<std::string>& names,
                         const std::string& path, const std::string& title) {
  write_png(path, render_confusion(m, names, title));
}

}  // namespace cnn::viz
