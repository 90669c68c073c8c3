#include "engine/io/png.h"

#include <png.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/byte_order.h"

namespace cnn {
namespace {

constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

png_uint_32 format_for(int channels) {
  switch (channels) {
    case 1:
      return PNG_FORMAT_GRAY;
    case 2:
      return PNG_FORMAT_GA;
    case 3:
      return PNG_FORMAT_RGB;
    case 4:
      return PNG_FORMAT_RGBA;
    default:
      throw Error(fmt::format("an image has 1 to 4 channels, not {}", channels));
  }
}

// A chunk type for a message: its four bytes, each that is not a letter as \xNN.
std::string chunk_type_text(const char* type) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    const unsigned char c = static_cast<unsigned char>(type[i]);
    out += std::isalpha(c) ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  return out;
}

// What libpng's simplified reader is given: the file's chunks up to IEND, each checked to
// lie within the file, without the text (tEXt, zTXt, iTXt) and ICC profile (iCCP)
// chunks. libpng allocates a chunk's buffer from the length the chunk claims before it
// reads the data (the fuzzer found a 67-byte file whose tEXt chunk claims 2 GB: 2 GB
// were allocated and touched), and inflates compressed text and profiles up to limits
// of its own; none of these chunks changes the pixels the simplified API returns as
// 8-bit sRGB. A partial chunk header at the end is passed on for libpng to refuse.
std::string chunks_to_decode(const std::string& bytes, const std::string& name) {
  std::string out = bytes.substr(0, sizeof(kSignature));
  size_t at = sizeof(kSignature);
  while (bytes.size() - at >= 8) {
    const uint32_t length = big_endian_u32(bytes.data() + at);
    const char* type = bytes.data() + at + 4;
    const size_t left = bytes.size() - at - 8;
    if (length > 0x7fffffffu || uint64_t{length} + 4 > left)
      throw DataError(fmt::format(
          "'{}' is not a valid PNG image: its {} chunk at byte {} claims {} bytes of data, and "
          "{} follow (truncated or damaged)",
          name, chunk_type_text(type), at, length, left < 4 ? 0 : left - 4));
    const size_t whole = 12 + size_t{length};
    const std::string t(type, 4);
    if (t != "tEXt" && t != "zTXt" && t != "iTXt" && t != "iCCP") out.append(bytes, at, whole);
    at += whole;
    if (t == "IEND") return out;
  }
  out.append(bytes, at, std::string::npos);
  return out;
}

int channels_for(png_uint_32 format) {
  return ((format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1) + ((format & PNG_FORMAT_FLAG_ALPHA) ? 1 : 0);
}

// Owns a png_image so that every path out, including a throw, frees libpng's state.
class PngImage {
 public:
  PngImage() {
    std::memset(&image_, 0, sizeof(image_));
    image_.version = PNG_IMAGE_VERSION;
  }
  ~PngImage() { png_image_free(&image_); }
  PngImage(const PngImage&) = delete;
  PngImage& operator=(const PngImage&) = delete;
  png_image* get() { return &image_; }
  png_image* operator->() { return &image_; }
  std::string message() const { return image_.message[0] ? image_.message : "unknown error"; }

 private:
  png_image image_;
};

}  // namespace

Image8::Image8(int w, int h, int c, uint8_t fill) : width(w), height(h), channels(c) {
  CNN_CHECK(w >= 0 && h >= 0 && c >= 1 && c <= 4, Error, "bad image shape {}x{}x{}", w, h, c);
  pixels.assign(static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(c), fill);
}

std::string Image8::describe() const {
  static const char* const kNames[] = {"?", "gray", "gray+alpha", "RGB", "RGBA"};
  return fmt::format("{}x{} {}", width, height,
                     kNames[channels >= 1 && channels <= 4 ? channels : 0]);
}

bool is_png_signature(const std::string& bytes) {
  return bytes.size() >= sizeof(kSignature) &&
         std::memcmp(bytes.data(), kSignature, sizeof(kSignature)) == 0;
}

std::string encode_png(const Image8& img) {
  CNN_CHECK(img.width >= 1 && img.height >= 1, Error, "cannot encode an empty {}x{} image",
            img.width, img.height);
  CNN_CHECK(img.pixels.size() == static_cast<size_t>(img.width) * static_cast<size_t>(img.height) *
                                     static_cast<size_t>(img.channels),
            Error, "image {} holds {} samples", img.describe(), img.pixels.size());
  PngImage png;
  png->width = static_cast<png_uint_32>(img.width);
  png->height = static_cast<png_uint_32>(img.height);
  png->format = format_for(img.channels);
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(*png.get(), size, 0, img.pixels.data(), 0, nullptr))
    throw Error(fmt::format("cannot encode a {} PNG: {}", img.describe(), png.message()));
  std::string out(size, '\0');
  if (!png_image_write_to_memory(png.get(), out.data(), &size, 0, img.pixels.data(), 0, nullptr))
    throw Error(fmt::format("cannot encode a {} PNG: {}", img.describe(), png.message()));
  out.resize(size);
  return out;
}

Image8 decode_png(const std::string& bytes, const std::string& name) {
  CNN_CHECK(!bytes.empty(), DataError, "'{}' is empty, not a PNG image", name);
  CNN_CHECK(is_png_signature(bytes), DataError,
            "'{}' is not a PNG image (it does not start with the PNG signature)", name);
  const std::string chunks = chunks_to_decode(bytes, name);
  PngImage png;
  if (!png_image_begin_read_from_memory(png.get(), chunks.data(), chunks.size()))
    throw DataError(fmt::format("'{}' is not a valid PNG image: {}", name, png.message()));
  const png_uint_32 w = png->width, h = png->height;
  // 8-bit sRGB samples; colour and alpha as the file has them, palettes expanded.
  const png_uint_32 format = png->format & (PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA);
  const int channels = channels_for(format);
  const uint64_t samples = uint64_t{w} * h * static_cast<uint64_t>(channels);
  CNN_CHECK(samples <= kPngMaxSamples, DataError,
            "'{}' is a {}x{} image with {} channels: larger than the {} samples accepted", name, w,
            h, channels, kPngMaxSamples);
  png->format = format;
  // 16-bit samples without gAMA or sRGB are taken as sRGB, as image viewers take them
  // (libpng would otherwise assume linear light and brighten the mid-tones).
  png->flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  Image8 img(static_cast<int>(w), static_cast<int>(h), channels);
  if (!png_image_finish_read(png.get(), nullptr, img.pixels.data(), 0, nullptr))
    throw DataError(fmt::format("'{}' is not a valid PNG image: {}", name, png.message()));
  return img;
}

void write_png(const std::string& path, const Image8& image) {
  with_context(fmt::format("writing '{}'", path),
               [&] { write_file_atomic(path, encode_png(image)); });
}

Image8 read_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CNN_CHECK(in.good(), DataError, "cannot open '{}': {}", path, std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CNN_CHECK(!in.bad(), DataError, "cannot read '{}'", path);
  return decode_png(bytes, path);
}

Image8 to_grayscale(const Image8& img) {
  Image8 out(img.width, img.height, 1);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      double v = 0;
      if (img.has_color())
        v = 0.299 * img.at(x, y, 0) + 0.587 * img.at(x, y, 1) + 0.114 * img.at(x, y, 2);
      else
        v = img.at(x, y, 0);
      if (img.has_alpha()) {
        const double a = img.at(x, y, img.channels - 1) / 255.0;
        v = v * a + 255.0 * (1.0 - a);
      }
      out.at(x, y) = static_cast<uint8_t>(v + 0.5);
    }
  return out;
}

}  // namespace cnn
