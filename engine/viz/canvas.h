// An RGB canvas for the pictures: filled rectangles, anti-aliased lines and discs (the
// coverage of each pixel by the exact shape, blended once), text in the bitmap font
// (horizontal, or turned a quarter counter-clockwise), and colour maps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/io/png.h"

namespace cnn::viz {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

namespace colors {
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kText{34, 34, 34};
constexpr Rgb kAxis{80, 80, 80};
constexpr Rgb kGrid{226, 226, 226};
constexpr Rgb kPaper{250, 250, 250};
constexpr Rgb kBlue{31, 119, 180};    // train curves
constexpr Rgb kOrange{255, 127, 14};  // validation curves
}  // namespace colors

// Viridis (matplotlib's default colour map: dark purple through teal to yellow,
// perceptually uniform), t in [0, 1], clamped; interpolated between 11 stops.
Rgb viridis(double t);
// A gray level, t in [0, 1] (clamped) from black to white.
Rgb gray(double t);
// Relative luminance 0..255 (BT.601 weights), to pick text that stands out on a colour.
double luminance(Rgb c);

enum class Align { Left, Center, Right };

struct Point {
  double x = 0, y = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = colors::kWhite);

  int width() const { return image_.width; }
  int height() const { return image_.height; }
  const Image8& image() const { return image_; }
  Rgb pixel(int x, int y) const;

  // Blends c over the pixel with opacity alpha in [0, 1]; outside the canvas: nothing.
  void blend(int x, int y, Rgb c, double alpha = 1.0);
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void outline_rect(int x, int y, int w, int h, Rgb c, int thickness = 1);

  // A polyline `width` pixels wide with round joins and ends: each pixel takes the
  // colour with its coverage by the whole line, so joins are not drawn twice. Dashed
  // lines alternate `dash` pixels drawn and `dash` skipped (0: solid).
  void polyline(const std::vector<Point>& points, Rgb c, double width, double dash = 0);
  void line(Point a, Point b, Rgb c, double width, double dash = 0) {
    polyline({a, b}, c, width, dash);
  }
  // A filled disc of radius r, anti-aliased.
  void disc(Point centre, double r, Rgb c);

  // Text with its top-left at (x, y) for Align::Left; x is the centre or the right end
  // for the other alignments. Returns the width drawn.
  int text(int x, int y, const std::string& s, Rgb c, int scale = 1, Align align = Align::Left);
  // Text read bottom to top (turned 90 degrees counter-clockwise): x is the left edge of
  // the glyphs' tops, y the anchor along the text (the bottom end for Align::Left).
  void text_up(int x, int y, const std::string& s, Rgb c, int scale = 1, Align align = Align::Left);

  // Copies a block of gray (or RGB) samples, each magnified to a scale x scale square,
  // with its top-left at (x, y).
  void blit_scaled(int x, int y, const std::vector<Rgb>& block, int block_w, int block_h,
                   int scale);

 private:
  Image8 image_;
};

}  // namespace cnn::viz
