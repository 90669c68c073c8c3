// Keras padding rules, shared by convolution and pooling shape inference.
#pragma once

#include <climits>
#include <string>

#include "engine/core/error.h"
#include "engine/core/shape.h"

namespace cnn {

enum class PaddingMode { Valid, Same, Explicit };

struct Padding {
  PaddingMode mode = PaddingMode::Valid;
  // Explicit only: rows/columns of zeros before and after, per spatial dimension.
  int top = 0, bottom = 0, left = 0, right = 0;

  static Padding valid() { return {}; }
  static Padding same() { return {PaddingMode::Same}; }
  static Padding explicit_(int top, int bottom, int left, int right) {
    return {PaddingMode::Explicit, top, bottom, left, right};
  }
  std::string str() const;  // "valid", "same", "explicit(1,2,1,2)"
};

// One spatial dimension: output size and padding before, for an input of `in`, a window
// of `window` (already dilated), `stride`, and the mode. Keras "valid":
// out = floor((in - window) / stride) + 1. Keras "same": out = ceil(in / stride), total
// padding max((out - 1) * stride + window - in, 0), the smaller half before.
struct AxisPlan {
  int out = 0;
  int pad_before = 0;
  int pad_after = 0;
};
// Returns out <= 0 when the window does not fit; the caller reports it with context.
AxisPlan plan_axis(int in, int window, int stride, PaddingMode mode, int pad_before, int pad_after);

// The input checks convolution and pooling share: rank 4 (N, C, H, W), positive C, H, W
// (the batch may be 0), each dimension within int. `what` describes the layer for the
// message; it is called only on failure, since geometries are computed every step.
template <class Describe>
void check_nchw_input(const Shape& input, Describe what) {
  CNN_CHECK(input.rank() == 4, ConfigError, "{}: the input must have rank 4 (N, C, H, W), not {}",
            what(), input.rank());
  CNN_CHECK(input[0] >= 0 && input[1] > 0 && input[2] > 0 && input[3] > 0, ConfigError,
            "{}: every input dimension must be positive (the batch may be 0)", what());
  for (int i = 0; i < 4; ++i)
    CNN_CHECK(input[i] <= INT_MAX, ConfigError, "{}: dimension {} is too large", what(), i);
}

}  // namespace cnn
