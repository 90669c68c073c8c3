// Turning any picture into what a Fashion-MNIST (or MNIST) model reads: one channel of
// rows x cols floats in [0, 1], a light object on a dark background.
//
// The rule, in order:
//  1. Grayscale: BT.601 luma of the stored values; alpha composited over white
//     (to_grayscale in engine/io/png.h).
//  2. Inversion: Fashion-MNIST has light objects on black. With InvertMode::Auto the
//     image is inverted (255 - v) when its background is light: when the mean of its
//     outermost ring of pixels is above 127.5. Always / Never force the choice.
//  3. Size: an image of exactly rows x cols is used as it is. Any other size is scaled,
//     keeping its aspect ratio, so that its longer side fills the frame (as
//     Fashion-MNIST's own preparation did), and centred; the uncovered margin takes the
//     mean border value of the (inverted) image. Shrinking averages the source pixels
//     each target pixel covers (area filter, no aliasing); enlarging is bilinear.
//  4. Values: byte / 255, as the IDX datasets are loaded (engine/io/dataset.h), so a
//     rows x cols PNG holding an IDX image's bytes gives that image's exact input.
#pragma once

#include <string>
#include <vector>

#include "engine/io/png.h"

namespace cnn {

enum class InvertMode { Auto, Always, Never };
// "auto", "yes", "no"; anything else throws ConfigError.
InvertMode parse_invert_mode(const std::string& name);

struct ModelInput {
  std::vector<float> pixels;  // rows * cols, row-major, in [0, 1]
  int rows = 0, cols = 0;
  bool inverted = false;
  bool resized = false;
  double border_mean = 0;  // of the grayscale image before inversion, 0..255
};

// Applies the rule above. Throws ConfigError when rows or cols is not positive.
ModelInput prepare_model_input(const Image8& image, int rows, int cols, InvertMode invert);

// Resamples one 8-bit channel to out_w x out_h (area filter when shrinking an axis,
// bilinear when enlarging it); the result is not rounded.
std::vector<float> resample_gray(const Image8& gray, int out_w, int out_h);

}  // namespace cnn
