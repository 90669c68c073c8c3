// PNG files through libpng's simplified API (png_image): 8-bit grayscale, grayscale +
// alpha, RGB or RGBA images in memory, encoded and decoded whole. Every PNG that libpng
// reads is accepted (palette, 1/2/4/16-bit depths, interlaced, with or without alpha); it
// comes back as 8-bit samples, keeping whether it had colour and alpha. A damaged file
// (bad signature, CRC error, truncated data) is refused with a cnn::DataError that names
// the file and says what libpng found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnn {

// An 8-bit image: rows top to bottom, samples interleaved (G, GA, RGB or RGBA).
struct Image8 {
  int width = 0, height = 0;
  int channels = 0;  // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  std::vector<uint8_t> pixels;

  Image8() = default;
  // A width x height image of `channels` samples, every sample `fill`.
  Image8(int width, int height, int channels, uint8_t fill = 0);

  bool has_alpha() const { return channels == 2 || channels == 4; }
  bool has_color() const { return channels >= 3; }
  size_t index(int x, int y, int channel = 0) const {
    return (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) *
               static_cast<size_t>(channels) +
           static_cast<size_t>(channel);
  }
  uint8_t& at(int x, int y, int channel = 0) { return pixels[index(x, y, channel)]; }
  uint8_t at(int x, int y, int channel = 0) const { return pixels[index(x, y, channel)]; }
  std::string describe() const;  // "640x480 RGB"
};

// The largest image read_png / decode_png accept: 2^28 samples (a 16384 x 16384 gray
// image, 8192 x 8192 RGBA), checked from the header before anything is allocated.
constexpr uint64_t kPngMaxSamples = uint64_t{1} << 28;

// Encodes / decodes a whole PNG in memory. `name` names the source in messages.
std::string encode_png(const Image8& image);
Image8 decode_png(const std::string& bytes, const std::string& name = "PNG data");

// Writes atomically (a temporary beside it, then a rename); reads and decodes a file.
// Both throw cnn::DataError (read) or cnn::Error (write) naming the path.
void write_png(const std::string& path, const Image8& image);
Image8 read_png(const std::string& path);

// Whether `bytes` starts with the 8-byte PNG signature.
bool is_png_signature(const std::string& bytes);

// One channel of luminance: gray as it is; colour by ITU-R BT.601 luma
// (0.299 R + 0.587 G + 0.114 B, on the stored sRGB values, as PIL's convert("L") does).
// Alpha is composited over white first (a transparent background reads as paper).
Image8 to_grayscale(const Image8& image);

}  // namespace cnn
