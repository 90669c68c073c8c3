// Conv2D shape inference (Keras semantics through plan_axis).
#include "engine/ops/conv2d/conv2d.h"

#include <fmt/format.h>

#include <climits>
#include <string>

#include "engine/core/error.h"

namespace cnn {
namespace {

std::string describe(const Conv2dParams& p, const Shape& input) {
  return fmt::format(
      "Conv2D with input {} (NCHW), {} filters, kernel {}x{}, strides {}x{}, dilation {}x{}, "
      "padding {}",
      input.str(), p.filters, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h,
      p.dilation_w, p.padding.str());
}

}  // namespace

cnnk::Conv2dGeometry conv2d_geometry(const Conv2dParams& p, const Shape& input) {
  check_nchw_input(input, [&] { return describe(p, input); });
  CNN_CHECK(p.filters > 0, ConfigError, "{}: the number of filters must be positive",
            describe(p, input));
  CNN_CHECK(p.kernel_h > 0 && p.kernel_w > 0, ConfigError, "{}: the kernel size must be positive",
            describe(p, input));
  CNN_CHECK(p.stride_h > 0 && p.stride_w > 0, ConfigError, "{}: the strides must be positive",
            describe(p, input));
  CNN_CHECK(p.dilation_h > 0 && p.dilation_w > 0, ConfigError,
            "{}: the dilation rate must be positive", describe(p, input));
  const Padding& pad = p.padding;
  if (pad.mode == PaddingMode::Explicit) {
    CNN_CHECK(pad.top >= 0 && pad.bottom >= 0 && pad.left >= 0 && pad.right >= 0, ConfigError,
              "{}: explicit padding must not be negative", describe(p, input));
  }

  cnnk::Conv2dGeometry g;
  g.n = static_cast<int>(input[0]);
  g.c = static_cast<int>(input[1]);
  g.h = static_cast<int>(input[2]);
  g.w = static_cast<int>(input[3]);
  g.k = p.filters;
  g.r = p.kernel_h;
  g.s = p.kernel_w;
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.dil_h = p.dilation_h;
  g.dil_w = p.dilation_w;

  const int window_h = (p.kernel_h - 1) * p.dilation_h + 1;
  const int window_w = (p.kernel_w - 1) * p.dilation_w + 1;
  const AxisPlan ph = plan_axis(g.h, window_h, p.stride_h, pad.mode, pad.top, pad.bottom);
  const AxisPlan pw = plan_axis(g.w, window_w, p.stride_w, pad.mode, pad.left, pad.right);
  CNN_CHECK(ph.out > 0 && pw.out > 0, ConfigError,
            "{}: the (dilated) {}x{} window does not fit the padded {}x{} input; the output "
            "would be {}x{}",
            describe(p, input), window_h, window_w, g.h + ph.pad_before + ph.pad_after,
            g.w + pw.pad_before + pw.pad_after, ph.out, pw.out);
  g.p = ph.out;
  g.q = pw.out;
  g.pad_top = ph.pad_before;
  g.pad_left = pw.pad_before;
  return g;
}

std::string describe(const cnnk::Conv2dGeometry& g) {
  return fmt::format("n{} c{} {}x{} -> k{} {}x{}, {}x{} s{}x{} pad {},{} dil {}x{}", g.n, g.c, g.h,
                     g.w, g.k, g.p, g.q, g.r, g.s, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                     g.dil_h, g.dil_w);
}

}  // namespace cnn
