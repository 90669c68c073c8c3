// Fuzz target: the PNG reader (engine/io/png.h, libpng's simplified API) and what
// `cnn predict` and `cnn filter` do with a picture next (engine/io/png_input.h).
//
// Any input must either decode, into an image that keeps the reader's promises, or be
// refused with cnn::DataError. A decoded image must survive an encode and decode
// unchanged, and must turn into a model input of 28 x 28 values in [0, 1]. Anything else
// (another exception, a sanitizer report, a failed invariant, an allocation past
// libFuzzer's -rss_limit_mb) is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/core/error.h"
#include "engine/io/png.h"
#include "engine/io/png_input.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  cnn::Image8 img;
  try {
    img = cnn::decode_png(bytes, "fuzz input");
  } catch (const cnn::DataError&) {
    return 0;
  }
  CNN_FUZZ_ASSERT(img.width >= 1 && img.height >= 1);
  CNN_FUZZ_ASSERT(img.channels >= 1 && img.channels <= 4);
  const uint64_t samples = uint64_t(img.width) * uint64_t(img.height) * uint64_t(img.channels);
  CNN_FUZZ_ASSERT(samples <= cnn::kPngMaxSamples);
  CNN_FUZZ_ASSERT(img.pixels.size() == samples);

  // Large pictures are valid but slow to resample and re-encode: the checks below are
  // for what a fuzzer can explore at speed.
  if (samples > (uint64_t{1} << 20)) return 0;
  const cnn::Image8 again = cnn::decode_png(cnn::encode_png(img), "round trip");
  CNN_FUZZ_ASSERT(again.width == img.width && again.height == img.height);
  CNN_FUZZ_ASSERT(again.channels == img.channels && again.pixels == img.pixels);

  const cnn::Image8 gray = cnn::to_grayscale(img);
  CNN_FUZZ_ASSERT(gray.channels == 1 && gray.width == img.width && gray.height == img.height);
  const cnn::ModelInput in = cnn::prepare_model_input(img, 28, 28, cnn::InvertMode::Auto);
  CNN_FUZZ_ASSERT(in.rows == 28 && in.cols == 28 && in.pixels.size() == 28u * 28u);
  CNN_FUZZ_ASSERT(in.resized == (img.width != 28 || img.height != 28));
  for (float v : in.pixels) CNN_FUZZ_ASSERT(std::isfinite(v) && v >= 0.f && v <= 1.f);
  return 0;
}
