// PNG files: round trips of every channel layout, PNGs written by other tools (palette,
// 16-bit, interlaced), damaged files refused with the file's name, grayscale conversion,
// and the preparation of a picture for the model (inversion, resizing).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/png.h"
#include "engine/io/png_input.h"
#include "io/io_test_util.h"

namespace cnn {
namespace {

using iotest::Contains;
using iotest::error_message;
using iotest::ScratchDir;

// Deterministic samples for an image of the given shape.
Image8 pattern_image(int w, int h, int channels, uint32_t seed = 7) {
  Image8 img(w, h, channels);
  const iotest::Bytes b = iotest::pattern_bytes(img.pixels.size(), seed);
  img.pixels.assign(b.begin(), b.end());
  return img;
}

// ------------------------------------------------ a PNG writer for the odd formats
// The engine writes 8-bit images only; these build what other tools write, chunk by chunk.

void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put_be32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                            static_cast<uInt>(body.size()))));
}

// A PNG of `rows` (each already holding its filter byte), non-interlaced unless said.
std::string handmade_png(uint32_t w, uint32_t h, int bit_depth, int color_type,
                         const std::string& rows, const std::string& plte = "", int interlace = 0) {
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr += static_cast<char>(bit_depth);
  ihdr += static_cast<char>(color_type);
  ihdr += '\0';  // compression
  ihdr += '\0';  // filter method
  ihdr += static_cast<char>(interlace);
  put_chunk(out, "IHDR", ihdr);
  if (!plte.empty()) put_chunk(out, "PLTE", plte);
  uLongf size = compressBound(static_cast<uLong>(rows.size()));
  std::string z(size, '\0');
  EXPECT_EQ(compress(reinterpret_cast<Bytef*>(z.data()), &size,
                     reinterpret_cast<const Bytef*>(rows.data()), static_cast<uLong>(rows.size())),
            Z_OK);
  z.resize(size);
  put_chunk(out, "IDAT", z);
  put_chunk(out, "IEND", "");
  return out;
}

// ---------------------------------------------------------------------- round trips

TEST(Png, RoundTripsEveryChannelLayoutExactly) {
  for (int channels = 1; channels <= 4; ++channels) {
    const Image8 img = pattern_image(13, 7, channels, static_cast<uint32_t>(channels));
    const std::string bytes = encode_png(img);
    EXPECT_TRUE(is_png_signature(bytes));
    const Image8 back = decode_png(bytes);
    EXPECT_EQ(back.width, 13);
    EXPECT_EQ(back.height, 7);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, img.pixels) << channels << " channels";
  }
}

TEST(Png, WritesAtomicallyAndReadsBack) {
  ScratchDir dir;
  const Image8 img = pattern_image(31, 17, 3);
  write_png(dir.file("a.png"), img);
  write_png(dir.file("a.png"), img);  // replaces it
  const Image8 back = read_png(dir.file("a.png"));
  EXPECT_EQ(back.pixels, img.pixels);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u) << "no temporary left beside it";
  EXPECT_EQ(back.describe(), "31x17 RGB");
}

TEST(Png, WritingToAMissingDirectoryNamesThePath) {
  const std::string msg =
      error_message<Error>([] { write_png("/nonexistent-dir-cnn/x.png", pattern_image(2, 2, 1)); });
  EXPECT_TRUE(Contains(msg, "/nonexistent-dir-cnn/x.png"));
}

TEST(Png, RefusesToEncodeAnEmptyOrInconsistentImage) {
  Image8 empty;
  EXPECT_THROW(encode_png(empty), Error);
  Image8 bad = pattern_image(4, 4, 1);
  bad.pixels.pop_back();
  EXPECT_THROW(encode_png(bad), Error);
}

// ------------------------------------------------------- PNGs written by other tools

TEST(Png, ReadsPaletteImagesAsRgb) {
  // 2x1, 8-bit palette: entry 0 red, entry 1 blue.
  const std::string plte("\xff\x00\x00\x00\x00\xff", 6);
  const std::string rows("\x00\x00\x01", 3);
  const Image8 img = decode_png(handmade_png(2, 1, 8, 3, rows, plte));
  ASSERT_EQ(img.channels, 3);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 0, 255}));
}

TEST(Png, ReadsSixteenBitGrayAsSrgbBytes) {
  // 2x1, 16-bit gray without gamma information: 0xffff and 0x8080.
  const std::string rows("\x00\xff\xff\x80\x80", 5);
  const Image8 img = decode_png(handmade_png(2, 1, 16, 0, rows));
  ASSERT_EQ(img.channels, 1);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{255, 128}));
}

TEST(Png, ReadsOneBitGray) {
  // 8x1, 1 bit per pixel: 10110000.
  const std::string rows("\x00\xb0", 2);
  const Image8 img = decode_png(handmade_png(8, 1, 1, 0, rows));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{255, 0, 255, 255, 0, 0, 0, 0}));
}

TEST(Png, ReadsInterlacedImages) {
  // 1x1 Adam7: only pass 1 holds a pixel.
  const std::string rows("\x00\x2a", 2);
  const Image8 img = decode_png(handmade_png(1, 1, 8, 0, rows, "", 1));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{42}));
}

// ------------------------------------------------------------------- damaged files

TEST(Png, RefusesDamagedFilesNamingThem) {
  ScratchDir dir;
  const std::string good = encode_png(pattern_image(16, 16, 3));
  struct Case {
    const char* name;
    std::string bytes;
    const char* says;
  };
  std::string crc = good;
  crc[crc.size() - 20] = static_cast<char>(crc[crc.size() - 20] ^ 0x55);  // inside IDAT
  std::string ihdr = good;
  ihdr[16] = 0;  // width 0 ... its CRC no longer matches either
  ihdr[17] = 0;
  ihdr[18] = 0;
  ihdr[19] = 0;
  const std::vector<Case> cases = {
      {"empty.png", "", "is empty"},
      {"text.png", "hello, not a picture\n", "not a PNG image"},
      {"truncated.png", good.substr(0, good.size() / 2), "not a valid PNG"},
      {"header-only.png", good.substr(0, 8), "not a valid PNG"},
      {"crc.png", crc, "not a valid PNG"},
      {"ihdr.png", ihdr, "not a valid PNG"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.file(c.name);
    iotest::write_raw(path, iotest::Bytes(c.bytes.begin(), c.bytes.end()));
    const std::string msg = error_message<DataError>([&] { read_png(path); });
    EXPECT_TRUE(Contains(msg, path)) << c.name;
    EXPECT_TRUE(Contains(msg, c.says)) << c.name;
  }
  EXPECT_TRUE(Contains(error_message<DataError>([&] { read_png(dir.file("missing.png")); }),
                       "cannot open"));
}

// A chunk's claimed length is checked against the bytes that follow before libpng sees
// it, since libpng would allocate that much first (tests/io/test_fuzz_regressions.cpp has
// the fuzzer's 67-byte file whose tEXt chunk claims 2 GB).
TEST(Png, RefusesAChunkLongerThanTheFileBeforeLibpngAllocatesIt) {
  const std::string good = handmade_png(1, 1, 8, 0, std::string("\x00\x2a", 2));
  constexpr size_t kAfterIhdr = 8 + 25;
  // Any chunk, named with its non-letters escaped, and the message names the file.
  std::string odd = good.substr(0, kAfterIhdr);
  put_be32(odd, 100);
  const std::string odd_type(
      "I\x01"
      "A\xff",
      4);  // two literals: "\x01A" is one escape
  odd += odd_type + std::string(50, 'z');
  const std::string odd_msg = error_message<DataError>([&] { decode_png(odd, "odd.png"); });
  EXPECT_TRUE(Contains(odd_msg, "'odd.png' is not a valid PNG image")) << odd_msg;
  EXPECT_TRUE(
      Contains(odd_msg, "I\\x01A\\xff chunk at byte 33 claims 100 bytes of data, and 46 follow"))
      << odd_msg;
  // Cut inside IDAT's data.
  const std::string cut = good.substr(0, good.size() - 14);  // IEND and IDAT's CRC
  EXPECT_TRUE(
      Contains(error_message<DataError>([&] { decode_png(cut); }), "IDAT chunk at byte 33"));
}

// Text and ICC profile chunks are left out of what libpng reads: the pixels are the same
// with them as without, even when they are damaged.
TEST(Png, TextAndProfileChunksChangeNoPixel) {
  const std::string rows("\x00\x10\x20\x30\x00\x40\x50\x60", 8);
  const std::string plain = handmade_png(3, 2, 8, 0, rows);
  std::string extra;
  put_chunk(extra, "tEXt", std::string("Comment\0made by hand", 20));
  put_chunk(extra, "zTXt", std::string("Comment\0\0not zlib at all", 24));
  put_chunk(extra, "iTXt", std::string("Title\0\0\0en\0\0x", 13));
  put_chunk(extra, "iCCP", std::string("icc\0\0broken profile", 19));
  const std::string with = plain.substr(0, 33) + extra + plain.substr(33);
  const Image8 a = decode_png(plain), b = decode_png(with);
  EXPECT_EQ(b.width, 3);
  EXPECT_EQ(b.channels, 1);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(b.pixels, (std::vector<uint8_t>{0x10, 0x20, 0x30, 0x40, 0x50, 0x60}));
  // Bytes after IEND are not read.
  EXPECT_EQ(decode_png(with + "trailing junk").pixels, a.pixels);
}

TEST(Png, RefusesImagesTooLargeBeforeAllocating) {
  // A header claiming 100000 x 100000 RGBA pixels, an empty IDAT and IEND: libpng reads
  // the header, and the size is refused before the 40 GB of samples are allocated.
  std::string ihdr;
  put_be32(ihdr, 100000);
  put_be32(ihdr, 100000);
  ihdr += std::string("\x08\x06\x00\x00\x00", 5);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", "");
  put_chunk(png, "IEND", "");
  const std::string msg = error_message<DataError>([&] { decode_png(png, "huge.png"); });
  EXPECT_TRUE(Contains(msg, "'huge.png' is a 100000x100000 image with 4 channels: larger than"))
      << msg;
}

// ---------------------------------------------------------------- grayscale, input

TEST(Png, GrayscaleUsesBt601LumaAndCompositesAlphaOverWhite) {
  Image8 rgba(4, 1, 4);
  const uint8_t px[] = {255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128};
  rgba.pixels.assign(std::begin(px), std::end(px));
  const Image8 g = to_grayscale(rgba);
  ASSERT_EQ(g.channels, 1);
  EXPECT_EQ(g.pixels[0], 76);   // 0.299 * 255
  EXPECT_EQ(g.pixels[1], 150);  // 0.587 * 255
  EXPECT_EQ(g.pixels[2], 255);  // transparent: the white behind
  EXPECT_EQ(g.pixels[3], 127);  // black at half opacity over white
  Image8 gray = pattern_image(3, 3, 1);
  EXPECT_EQ(to_grayscale(gray).pixels, gray.pixels);
}

TEST(PngInput, TakesAModelSizedDarkImageAsItIs) {
  const Image8 img = pattern_image(28, 28, 1, 3);
  Image8 dark = img;
  for (int x = 0; x < 28; ++x) dark.at(x, 0) = dark.at(x, 27) = dark.at(0, x) = dark.at(27, x) = 0;
  const ModelInput in = prepare_model_input(dark, 28, 28, InvertMode::Auto);
  EXPECT_FALSE(in.inverted);
  EXPECT_FALSE(in.resized);
  ASSERT_EQ(in.pixels.size(), 784u);
  for (size_t i = 0; i < 784; ++i) ASSERT_EQ(in.pixels[i], dark.pixels[i] / 255.0f) << i;
}

TEST(PngInput, InvertsALightBackgroundWhenAutoAndWhenAsked) {
  Image8 paper(28, 28, 1, 250);
  paper.at(14, 14) = 0;
  const ModelInput a = prepare_model_input(paper, 28, 28, InvertMode::Auto);
  EXPECT_TRUE(a.inverted);
  EXPECT_NEAR(a.border_mean, 250.0, 1e-9);
  EXPECT_FLOAT_EQ(a.pixels[14 * 28 + 14], 1.0f);
  EXPECT_FLOAT_EQ(a.pixels[0], 5 / 255.0f);
  EXPECT_FALSE(prepare_model_input(paper, 28, 28, InvertMode::Never).inverted);
  const Image8 dark(28, 28, 1, 10);
  EXPECT_FALSE(prepare_model_input(dark, 28, 28, InvertMode::Auto).inverted);
  const ModelInput forced = prepare_model_input(dark, 28, 28, InvertMode::Always);
  EXPECT_TRUE(forced.inverted);
  EXPECT_FLOAT_EQ(forced.pixels[0], 245 / 255.0f);
}

TEST(PngInput, ShrinksByAveragingTheAreaEachPixelCovers) {
  // 56x56 of 2x2 blocks whose four values average to a known number.
  Image8 big(56, 56, 1);
  for (int y = 0; y < 56; ++y)
    for (int x = 0; x < 56; ++x)
      big.at(x, y) =
          static_cast<uint8_t>(((x / 2 + y / 2) % 2 ? 100 : 0) + (x % 2) * 20 + (y % 2) * 4);
  const ModelInput in = prepare_model_input(big, 28, 28, InvertMode::Never);
  EXPECT_TRUE(in.resized);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x)
      ASSERT_NEAR(in.pixels[static_cast<size_t>(y * 28 + x)] * 255.0f,
                  ((x + y) % 2 ? 100 : 0) + 10 + 2, 1e-3)
          << x << "," << y;
}

TEST(PngInput, FitsTheLongerSideAndCentresWithTheBorderValue) {
  // 56 wide, 28 high, dark border, a bright middle: scaled to 28x14, centred vertically.
  Image8 wide(56, 28, 1, 0);
  for (int y = 5; y < 23; ++y)
    for (int x = 7; x < 49; ++x) wide.at(x, y) = 200;
  const ModelInput in = prepare_model_input(wide, 28, 28, InvertMode::Auto);
  EXPECT_TRUE(in.resized);
  EXPECT_FALSE(in.inverted);
  const auto at = [&](int x, int y) { return in.pixels[static_cast<size_t>(y * 28 + x)] * 255.0f; };
  for (int x = 0; x < 28; ++x) {
    EXPECT_EQ(at(x, 0), 0.0f);  // margin above (rows 0..6)
    EXPECT_EQ(at(x, 6), 0.0f);
    EXPECT_EQ(at(x, 27), 0.0f);  // margin below (rows 21..27)
  }
  EXPECT_NEAR(at(14, 14), 200.0f, 1e-3);  // the middle of the picture
  EXPECT_NEAR(at(3, 9), 50.0f, 1e-3);     // a quarter of its source pixels bright
}

TEST(PngInput, EnlargesBilinearly) {
  Image8 two(2, 1, 1);
  two.pixels = {0, 100};
  const std::vector<float> four = resample_gray(two, 4, 1);
  ASSERT_EQ(four.size(), 4u);
  EXPECT_FLOAT_EQ(four[0], 0.0f);
  EXPECT_FLOAT_EQ(four[1], 25.0f);
  EXPECT_FLOAT_EQ(four[2], 75.0f);
  EXPECT_FLOAT_EQ(four[3], 100.0f);
}

TEST(PngInput, ColourPicturesBecomeGray) {
  Image8 rgb(28, 28, 3, 0);
  for (int c = 0; c < 3; ++c) rgb.at(5, 5, c) = 255;
  const ModelInput in = prepare_model_input(rgb, 28, 28, InvertMode::Auto);
  EXPECT_FLOAT_EQ(in.pixels[5 * 28 + 5], 1.0f);
  EXPECT_FLOAT_EQ(in.pixels[0], 0.0f);
}

TEST(PngInput, ParsesInvertModes) {
  EXPECT_EQ(parse_invert_mode("auto"), InvertMode::Auto);
  EXPECT_EQ(parse_invert_mode("yes"), InvertMode::Always);
  EXPECT_EQ(parse_invert_mode("no"), InvertMode::Never);
  EXPECT_THROW(parse_invert_mode("maybe"), ConfigError);
}

}  // namespace
}  // namespace cnn
