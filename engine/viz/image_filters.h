// The classical image filters of the seeds, applied with the engine's own convolution
// (Backend::conv2d_forward, so on the CPU or the GPU): each channel of the picture is an
// image of the batch, one input channel, one filter, Keras's "same" padding (zeros
// outside the picture, so blurs darken the outermost pixels), stride 1.
//
// Taps are applied as written, as cross-correlation (Keras's and cuDNN's convolution):
// sobel-x is bright where the picture gets lighter from left to right. The taps are
// small integers and the divisor is applied after the sum, so every sum is exact in
// float32.
//
// Back to 0..255: a filter whose taps sum to zero (edges, lines, Laplacians, Sobel)
// answers with signed values; `auto` shows their magnitude, |y| scaled so that the
// largest one in the picture becomes 255 (every channel by the same factor). Filters
// whose taps sum to the divisor (identity, blurs, sharpen) keep the brightness, and
// `auto` clamps them to 0..255. `clamp` and `abs` force either rule. Values are rounded
// to the nearest integer. Alpha is kept as it is, never filtered.
#pragma once

#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/io/png.h"

namespace cnn::viz {

struct ImageKernel {
  std::string name;
  std::string description;
  int size = 3;           // size x size taps
  std::vector<int> taps;  // row-major, top row first
  int divisor = 1;        // the response is sum(taps * pixels) / divisor

  int tap_sum() const;
};

// Every kernel, in the order `cnn filter --list` shows them: identity, edge, laplacian,
// laplacian-diag, sharpen, box-blur, gaussian, sobel-x, sobel-y, line-horizontal,
// line-vertical, line-plus45, line-minus45, log5.
const std::vector<ImageKernel>& image_kernels();
// The kernel named `name`; ConfigError listing the names otherwise.
const ImageKernel& find_image_kernel(const std::string& name);

enum class FilterScale { Auto, Clamp, Abs };
FilterScale parse_filter_scale(const std::string& name);  // "auto", "clamp", "abs"
// The rule `Auto` picks for a kernel: Abs when its taps sum to zero, else Clamp.
FilterScale resolve_filter_scale(const ImageKernel& k, FilterScale requested);

// The responses before scaling: one plane per colour channel (alpha excluded), each
// width * height floats, computed on `backend`.
std::vector<std::vector<float>> filter_responses(Backend& backend, const ImageKernel& k,
                                                 const Image8& image);

// Filters `image` (gray, gray + alpha, RGB or RGBA) and scales the result back to
// 0..255; the result has the image's size and channels.
Image8 apply_image_kernel(Backend& backend, const ImageKernel& k, const Image8& image,
                          FilterScale scale = FilterScale::Auto);

}  // namespace cnn::viz
