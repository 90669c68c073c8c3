// A small bitmap font for the pictures: printable ASCII in 5 x 9 glyphs (capitals and
// digits 7 rows high, lower case with 2 rows of descenders), drawn on a 6 x 11 cell at
// scale 1. Characters outside printable ASCII draw as a hollow box.
#pragma once

#include <cstdint>
#include <string>

namespace cnn::viz {

constexpr int kGlyphWidth = 5, kGlyphHeight = 9;
constexpr int kCellWidth = 6;    // advance per character, at scale 1
constexpr int kLineHeight = 11;  // at scale 1

// The glyph of `c`: kGlyphHeight rows, bit (kGlyphWidth - 1 - x) of a row set where the
// pixel at column x is ink.
const uint8_t* glyph(char c);

inline int text_width(const std::string& text, int scale = 1) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kCellWidth - 1) * scale;
}
inline int text_height(int scale = 1) { return kGlyphHeight * scale; }

}  // namespace cnn::viz
