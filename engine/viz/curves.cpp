#include "engine/viz/curves.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "engine/core/error.h"
#include "engine/viz/canvas.h"
#include "engine/viz/font.h"

namespace cnn::viz {
namespace {

constexpr int kWidth = 1200, kHeight = 480;
constexpr int kScale = 2;  // font scale of every label

struct Series {
  std::string label;
  Rgb color;
  std::vector<Point> points;  // (epoch, value), finite values only
};

// A plot area in pixels and the data range it shows.
struct Frame {
  int left, top, width, height;
  double x_lo, x_hi, y_lo, y_hi;
  Point map(double x, double y) const {
    return {left + (x - x_lo) / (x_hi - x_lo) * width,
            top + height - (y - y_lo) / (y_hi - y_lo) * height};
  }
};

std::string format_fixed(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s == "-0" || s.rfind("-0.", 0) == 0) {
    // "-0.00" for a value that rounds to zero: drop the sign.
    if (std::stod(s) == 0.0) s.erase(0, 1);
  }
  return s;
}

void draw_panel(Canvas& cv, const Frame& f, const Ticks& yt, const std::string& title,
                const std::vector<Series>& series, int best_epoch) {
  // Grid and tick labels.
  for (double v : yt.values()) {
    const int y = static_cast<int>(std::lround(f.map(f.x_lo, v).y));
    cv.fill_rect(f.left, y, f.width, 1, colors::kGrid);
    cv.fill_rect(f.left - 6, y, 6, 1, colors::kAxis);
    cv.text(f.left - 10, y - text_height(kScale) / 2, format_fixed(v, yt.decimals), colors::kText,
            kScale, Align::Right);
  }
  for (int e : epoch_ticks(static_cast<int>(std::floor(f.x_hi)))) {
    const int x = static_cast<int>(std::lround(f.map(e, f.y_lo).x));
    cv.fill_rect(x, f.top, 1, f.height, colors::kGrid);
    cv.fill_rect(x, f.top + f.height, 1, 6, colors::kAxis);
    cv.text(x + 1, f.top + f.height + 12, fmt::format("{}", e), colors::kText, kScale,
            Align::Center);
  }
  if (best_epoch > 0) {
    const double x = f.map(best_epoch, f.y_lo).x;
    cv.line({x, static_cast<double>(f.top)}, {x, static_cast<double>(f.top + f.height)},
            {120, 120, 120}, 1.5, 5);
    // The label beside the line, on its left where the right would leave the frame.
    const std::string label = fmt::format("best: {}", best_epoch);
    const bool fits_right = x + 6 + text_width(label, kScale) <= f.left + f.width - 4;
    cv.text(static_cast<int>(x) + (fits_right ? 6 : -6), f.top + 6, label, {110, 110, 110}, kScale,
            fits_right ? Align::Left : Align::Right);
  }
  cv.outline_rect(f.left, f.top, f.width + 1, f.height + 1, colors::kAxis);
  cv.text(f.left + f.width / 2, f.top - 30, title, colors::kText, kScale, Align::Center);
  cv.text(f.left + f.width / 2, f.top + f.height + 40, "epoch", colors::kText, kScale,
          Align::Center);

  // The curves: a line through the points, and a dot on each when there are few.
  for (const Series& s : series) {
    std::vector<Point> px;
    for (const Point& p : s.points) px.push_back(f.map(p.x, p.y));
    if (px.size() >= 2) cv.polyline(px, s.color, 2.5);
    if (px.size() <= 40)
      for (const Point& p : px) cv.disc(p, px.size() == 1 ? 5.0 : 3.5, s.color);
  }
}

// The data range of some series, widened so that a flat line sits inside the frame.
std::pair<double, double> value_range(const std::vector<Series>& series) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (const Point& p : s.points) {
      lo = std::min(lo, p.y);
      hi = std::max(hi, p.y);
    }
  if (!(lo <= hi)) return {0.0, 1.0};  // no finite values at all
  const double span = hi - lo;
  const double pad = span > 0 ? span * 0.05 : std::max(std::abs(hi) * 0.05, 0.01);
  return {lo - pad, hi + pad};
}

std::optional<double> finite(double v) {
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  for (char ch : line) {
    if (ch == ',') {
      cells.push_back(cell);
      cell.clear();
    } else if (ch != '\r' && ch != '"') {
      cell += ch;
    }
  }
  cells.push_back(cell);
  for (std::string& c : cells) {
    const size_t b = c.find_first_not_of(" \t");
    const size_t e = c.find_last_not_of(" \t");
    c = b == std::string::npos ? "" : c.substr(b, e - b + 1);
  }
  return cells;
}

}  // namespace

std::vector<double> Ticks::values() const {
  std::vector<double> v;
  if (!(step > 0)) return v;
  const int n = static_cast<int>(std::lround((last - first) / step));
  for (int i = 0; i <= n; ++i) v.push_back(first + i * step);
  return v;
}

Ticks nice_ticks(double lo, double hi, int target) {
  Ticks t;
  if (!std::isfinite(lo) || !std::isfinite(hi)) return t;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  t.step = step;
  t.first = std::floor(lo / step + 1e-9) * step;
  t.last = std::ceil(hi / step - 1e-9) * step;
  // Decimals: enough for the step (2.5 x 10^k needs one more than 10^k).
  const double frac_digits = -std::floor(std::log10(step) + 1e-9);
  int d = std::max(0, static_cast<int>(frac_digits));
  if (std::abs(step / std::pow(10.0, -d) - std::round(step / std::pow(10.0, -d))) > 1e-6) ++d;
  t.decimals = d;
  return t;
}

std::vector<int> epoch_ticks(int last_epoch) {
  std::vector<int> ticks;
  if (last_epoch < 1) return ticks;
  // Steps of 1, 2, 5, 10, 20, 50, ...: the smallest that labels at most ten epochs.
  long long step = 1;
  for (long long base = 1; last_epoch / step > 10; base *= 10)
    for (int m : {1, 2, 5})
      if (last_epoch / (step = m * base) <= 10) break;
  for (long long e = step; e <= last_epoch; e += step) ticks.push_back(static_cast<int>(e));
  return ticks;
}

Image8 render_curves(const History& history, const std::string& title) {
  Series loss{"train", colors::kBlue, {}}, val_loss{"validation", colors::kOrange, {}};
  Series acc{"train", colors::kBlue, {}}, val_acc{"validation", colors::kOrange, {}};
  int last_epoch = 0;
  for (const EpochLog& e : history.epochs) {
    const double x = e.epoch;
    last_epoch = std::max(last_epoch, e.epoch);
    if (auto v = finite(e.loss)) loss.points.push_back({x, *v});
    if (auto v = finite(e.accuracy)) acc.points.push_back({x, *v});
    if (e.val_loss)
      if (auto v = finite(*e.val_loss)) val_loss.points.push_back({x, *v});
    if (e.val_accuracy)
      if (auto v = finite(*e.val_accuracy)) val_acc.points.push_back({x, *v});
  }
  const bool has_val = !val_loss.points.empty() || !val_acc.points.empty();

  Canvas cv(kWidth, kHeight, colors::kWhite);
  cv.text(kWidth / 2, 14, title, colors::kText, kScale, Align::Center);
  // The legend, shared by both panels, under the title.
  {
    std::vector<const Series*> items{&loss};
    if (has_val) items.push_back(&val_loss);
    int total = 0;
    for (const Series* s : items) total += 40 + 8 + text_width(s->label, kScale) + 28;
    int x = (kWidth - total) / 2;
    const int y = 44;
    for (const Series* s : items) {
      cv.line({x + 0.0, y + 9.0}, {x + 40.0, y + 9.0}, s->color, 2.5);
      cv.disc({x + 20.0, y + 9.0}, 3.5, s->color);
      x += 48;
      x += cv.text(x, y + 1, s->label, colors::kText, kScale) + 28;
    }
  }
  if (history.epochs.empty()) {
    cv.text(kWidth / 2, kHeight / 2, "no epochs recorded", colors::kText, kScale, Align::Center);
    return cv.image();
  }

  const double margin = std::max(0.25, (last_epoch - 1) * 0.03);
  const double x_lo = 1 - margin, x_hi = std::max(last_epoch, 1) + margin;
  const int top = 120, height = kHeight - top - 80;
  const int panel_w = 460;
  const int best = history.best_epoch;

  std::vector<Series> loss_series{loss}, acc_series{acc};
  if (has_val) {
    loss_series.push_back(val_loss);
    acc_series.push_back(val_acc);
  }
  auto [l_lo, l_hi] = value_range(loss_series);
  const Ticks lt = nice_ticks(l_lo, l_hi, 5);
  draw_panel(cv, Frame{100, top, panel_w, height, x_lo, x_hi, lt.first, lt.last}, lt, "loss",
             loss_series, best);
  auto [a_lo, a_hi] = value_range(acc_series);
  const Ticks at = nice_ticks(a_lo, a_hi, 5);
  draw_panel(cv, Frame{700, top, panel_w, height, x_lo, x_hi, at.first, at.last}, at, "accuracy",
             acc_series, best);
  return cv.image();
}

void write_curves_png(const History& history, const std::string& path, const std::string& title) {
  write_png(path, render_curves(history, title));
}

History history_from_csv(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  std::vector<std::string> header;
  while (header.empty() && std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") != std::string::npos) header = split_csv_line(line);
  }
  CNN_CHECK(!header.empty(), DataError, "'{}' is empty: no header row", name);
  const auto column = [&](const std::string& key) {
    const auto it = std::find(header.begin(), header.end(), key);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  };
  const int c_epoch = column("epoch"), c_loss = column("loss"), c_acc = column("accuracy"),
            c_vloss = column("val_loss"), c_vacc = column("val_accuracy");
  CNN_CHECK(c_loss >= 0, DataError, "'{}' has no 'loss' column (header: {})", name, line);

  History h;
  bool zero_based = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> cells = split_csv_line(line);
    CNN_CHECK(cells.size() == header.size(), DataError,
              "'{}' line {}: {} cells where the header has {}", name, line_no, cells.size(),
              header.size());
    const auto number = [&](int col) -> std::optional<double> {
      // Keras's CSVLogger writes NA where a metric is missing.
      if (col < 0 || cells[static_cast<size_t>(col)].empty() ||
          cells[static_cast<size_t>(col)] == "NA")
        return std::nullopt;
      const std::string& s = cells[static_cast<size_t>(col)];
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      // "nan" and "inf" parse; anything else that is not a whole number is an error.
      CNN_CHECK(used == s.size(), DataError, "'{}' line {}: '{}' in column '{}' is not a number",
                name, line_no, s, header[static_cast<size_t>(col)]);
      return v;
    };
    EpochLog e;
    const auto epoch = number(c_epoch);
    if (h.epochs.empty() && epoch && *epoch >= 1) zero_based = false;
    e.epoch = epoch ? static_cast<int>(*epoch) + (zero_based ? 1 : 0)
                    : static_cast<int>(h.epochs.size()) + 1;
    const auto loss = number(c_loss);
    CNN_CHECK(loss.has_value(), DataError, "'{}' line {}: the loss is empty", name, line_no);
    e.loss = *loss;
    e.accuracy = number(c_acc).value_or(NAN);
    e.val_loss = number(c_vloss);
    e.val_accuracy = number(c_vacc);
    h.epochs.push_back(e);
  }
  return h;
}

History read_history_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in.good(), DataError, "cannot open '{}'", path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return history_from_csv(text, path);
}

}  // namespace cnn::viz
