#include "engine/ops/padding.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnn {

std::string Padding::str() const {
  switch (mode) {
    case PaddingMode::Valid:
      return "valid";
    case PaddingMode::Same:
      return "same";
    case PaddingMode::Explicit:
      return fmt::format("explicit({},{},{},{})", top, bottom, left, right);
  }
  return "?";
}

AxisPlan plan_axis(int in, int window, int stride, PaddingMode mode, int pad_before,
                   int pad_after) {
  AxisPlan a;
  switch (mode) {
    case PaddingMode::Valid:
      a.out = in >= window ? (in - window) / stride + 1 : 0;
      break;
    case PaddingMode::Same: {
      a.out = (in + stride - 1) / stride;
      const int total = std::max((a.out - 1) * stride + window - in, 0);
      a.pad_before = total / 2;
      a.pad_after = total - a.pad_before;
      break;
    }
    case PaddingMode::Explicit: {
      a.pad_before = pad_before;
      a.pad_after = pad_after;
      const int span = in + pad_before + pad_after;
      a.out = span >= window ? (span - window) / stride + 1 : 0;
      break;
    }
  }
  return a;
}

}  // namespace cnn
