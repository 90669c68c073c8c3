#include "engine/viz/canvas.h"

#include <algorithm>
#include <cmath>

#include "engine/viz/font.h"

namespace cnn::viz {
namespace {

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0))); }

// Distance from p to the segment ab, and the parameter of the closest point along it.
double segment_distance(Point p, Point a, Point b, double* t_out) {
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  if (t_out) *t_out = t;
  const double cx = a.x + t * dx - p.x, cy = a.y + t * dy - p.y;
  return std::sqrt(cx * cx + cy * cy);
}

}  // namespace

Rgb viridis(double t) {
  // matplotlib's viridis at t = 0, 0.1, ..., 1.
  static const Rgb kStops[] = {{68, 1, 84},    {72, 36, 117},  {65, 68, 135},  {53, 95, 141},
                               {42, 120, 142}, {33, 145, 140}, {34, 168, 132}, {68, 191, 112},
                               {122, 209, 81}, {189, 223, 38}, {253, 231, 37}};
  if (!std::isfinite(t)) t = 0;
  const double u = std::clamp(t, 0.0, 1.0) * 10.0;
  const int i = std::min(static_cast<int>(u), 9);
  const double f = u - i;
  const Rgb a = kStops[i], b = kStops[i + 1];
  return {to_byte(a.r + (b.r - a.r) * f), to_byte(a.g + (b.g - a.g) * f),
          to_byte(a.b + (b.b - a.b) * f)};
}

Rgb gray(double t) {
  if (!std::isfinite(t)) t = 0;
  const uint8_t v = to_byte(std::clamp(t, 0.0, 1.0) * 255.0);
  return {v, v, v};
}

double luminance(Rgb c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

Canvas::Canvas(int width, int height, Rgb background) : image_(width, height, 3) {
  fill_rect(0, 0, width, height, background);
}

Rgb Canvas::pixel(int x, int y) const {
  return {image_.at(x, y, 0), image_.at(x, y, 1), image_.at(x, y, 2)};
}

void Canvas::blend(int x, int y, Rgb c, double alpha) {
  if (x < 0 || y < 0 || x >= image_.width || y >= image_.height || alpha <= 0) return;
  alpha = std::min(alpha, 1.0);
  uint8_t* p = &image_.at(x, y, 0);
  p[0] = to_byte(p[0] + (c.r - p[0]) * alpha);
  p[1] = to_byte(p[1] + (c.g - p[1]) * alpha);
  p[2] = to_byte(p[2] + (c.b - p[2]) * alpha);
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(x, 0), y0 = std::max(y, 0);
  const int x1 = std::min(x + w, image_.width), y1 = std::min(y + h, image_.height);
  for (int j = y0; j < y1; ++j)
    for (int i = x0; i < x1; ++i) {
      uint8_t* p = &image_.at(i, j, 0);
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
}

void Canvas::outline_rect(int x, int y, int w, int h, Rgb c, int t) {
  fill_rect(x, y, w, t, c);
  fill_rect(x, y + h - t, w, t, c);
  fill_rect(x, y, t, h, c);
  fill_rect(x + w - t, y, t, h, c);
}

void Canvas::polyline(const std::vector<Point>& pts, Rgb c, double width, double dash) {
  if (pts.empty()) return;
  const double half = width / 2;
  const int pad = static_cast<int>(std::ceil(half)) + 1;
  // The coverage of every pixel by the whole line: the largest over its segments.
  std::vector<float> coverage(image_.pixels.size() / 3, 0.0f);
  int cx0 = image_.width, cy0 = image_.height, cx1 = -1, cy1 = -1;
  double along = 0;  // arc length at the start of the segment, for dashes
  const size_t segments = pts.size() == 1 ? 1 : pts.size() - 1;
  for (size_t i = 0; i < segments; ++i) {
    const Point a = pts[i], b = pts.size() == 1 ? pts[i] : pts[i + 1];
    const double len = std::hypot(b.x - a.x, b.y - a.y);
    const int x0 = std::max(0, static_cast<int>(std::floor(std::min(a.x, b.x))) - pad);
    const int y0 = std::max(0, static_cast<int>(std::floor(std::min(a.y, b.y))) - pad);
    const int x1 =
        std::min(image_.width - 1, static_cast<int>(std::ceil(std::max(a.x, b.x))) + pad);
    const int y1 =
        std::min(image_.height - 1, static_cast<int>(std::ceil(std::max(a.y, b.y))) + pad);
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        double t = 0;
        const double d = segment_distance({x + 0.5, y + 0.5}, a, b, &t);
        if (dash > 0 && std::fmod(along + t * len, 2 * dash) >= dash) continue;
        // The coverage of a pixel by a band of half-width `half`, from the distance of
        // its centre (exact for edges parallel to the pixel grid).
        const float cov = static_cast<float>(std::clamp(half + 0.5 - d, 0.0, 1.0));
        float& slot = coverage[static_cast<size_t>(y) * static_cast<size_t>(image_.width) +
                               static_cast<size_t>(x)];
        slot = std::max(slot, cov);
      }
    cx0 = std::min(cx0, x0);
    cy0 = std::min(cy0, y0);
    cx1 = std::max(cx1, x1);
    cy1 = std::max(cy1, y1);
    along += len;
  }
  for (int y = cy0; y <= cy1; ++y)
    for (int x = cx0; x <= cx1; ++x)
      blend(x, y, c,
            coverage[static_cast<size_t>(y) * static_cast<size_t>(image_.width) +
                     static_cast<size_t>(x)]);
}

void Canvas::disc(Point centre, double r, Rgb c) {
  const int x0 = static_cast<int>(std::floor(centre.x - r - 1));
  const int x1 = static_cast<int>(std::ceil(centre.x + r + 1));
  const int y0 = static_cast<int>(std::floor(centre.y - r - 1));
  const int y1 = static_cast<int>(std::ceil(centre.y + r + 1));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double d = std::hypot(x + 0.5 - centre.x, y + 0.5 - centre.y);
      blend(x, y, c, std::clamp(r + 0.5 - d, 0.0, 1.0));
    }
}

int Canvas::text(int x, int y, const std::string& s, Rgb c, int scale, Align align) {
  const int w = text_width(s, scale);
  if (align == Align::Center) x -= w / 2;
  if (align == Align::Right) x -= w;
  for (size_t i = 0; i < s.size(); ++i) {
    const uint8_t* g = glyph(s[i]);
    const int gx = x + static_cast<int>(i) * kCellWidth * scale;
    for (int row = 0; row < kGlyphHeight; ++row)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (g[row] & (1u << (kGlyphWidth - 1 - col)))
          fill_rect(gx + col * scale, y + row * scale, scale, scale, c);
  }
  return w;
}

void Canvas::text_up(int x, int y, const std::string& s, Rgb c, int scale, Align align) {
  const int w = text_width(s, scale);
  if (align == Align::Center) y += w / 2;
  if (align == Align::Right) y += w;
  // Turned counter-clockwise: the glyph's column runs up the canvas, its rows run right.
  for (size_t i = 0; i < s.size(); ++i) {
    const uint8_t* g = glyph(s[i]);
    const int gy = y - static_cast<int>(i) * kCellWidth * scale;
    for (int row = 0; row < kGlyphHeight; ++row)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (g[row] & (1u << (kGlyphWidth - 1 - col)))
          fill_rect(x + row * scale, gy - (col + 1) * scale, scale, scale, c);
  }
}

void Canvas::blit_scaled(int x, int y, const std::vector<Rgb>& block, int bw, int bh, int scale) {
  for (int j = 0; j < bh; ++j)
    for (int i = 0; i < bw; ++i)
      fill_rect(x + i * scale, y + j * scale, scale, scale,
                block[static_cast<size_t>(j) * static_cast<size_t>(bw) + static_cast<size_t>(i)]);
}

}  // namespace cnn::viz
