// Pool2D shape inference (Keras semantics through plan_axis).
#include "engine/ops/pool2d/pool2d.h"

#include <fmt/format.h>

#include <climits>
#include <string>

#include "engine/core/error.h"

namespace cnn {
namespace {

std::string describe(const Pool2dParams& p, const Shape& input) {
  return fmt::format("{} with input {} (NCHW), pool size {}x{}, strides {}x{}, padding {}",
                     p.mode == cnnk::PoolMode::Max ? "MaxPooling2D" : "AveragePooling2D",
                     input.str(), p.pool_h, p.pool_w, p.stride_h, p.stride_w, p.padding.str());
}

}  // namespace

cnnk::Pool2dGeometry pool2d_geometry(const Pool2dParams& p, const Shape& input) {
  check_nchw_input(input, [&] { return describe(p, input); });
  CNN_CHECK(p.pool_h > 0 && p.pool_w > 0, ConfigError, "{}: the pool size must be positive",
            describe(p, input));
  CNN_CHECK(p.stride_h >= 0 && p.stride_w >= 0, ConfigError,
            "{}: the strides must be positive (or 0 for the pool size)", describe(p, input));
  const Padding& pad = p.padding;
  if (pad.mode == PaddingMode::Explicit) {
    // Each window must hold at least one real input: padding never wins a max and an
    // average needs something to divide by.
    CNN_CHECK(pad.top >= 0 && pad.bottom >= 0 && pad.left >= 0 && pad.right >= 0 &&
                  pad.top < p.pool_h && pad.bottom < p.pool_h && pad.left < p.pool_w &&
                  pad.right < p.pool_w,
              ConfigError, "{}: explicit padding must be in [0, pool size) on every side",
              describe(p, input));
  }

  cnnk::Pool2dGeometry g;
  g.mode = p.mode;
  g.n = static_cast<int>(input[0]);
  g.c = static_cast<int>(input[1]);
  g.h = static_cast<int>(input[2]);
  g.w = static_cast<int>(input[3]);
  g.window_h = p.pool_h;
  g.window_w = p.pool_w;
  g.stride_h = p.stride_h > 0 ? p.stride_h : p.pool_h;
  g.stride_w = p.stride_w > 0 ? p.stride_w : p.pool_w;

  const AxisPlan ph = plan_axis(g.h, g.window_h, g.stride_h, pad.mode, pad.top, pad.bottom);
  const AxisPlan pw = plan_axis(g.w, g.window_w, g.stride_w, pad.mode, pad.left, pad.right);
  CNN_CHECK(ph.out > 0 && pw.out > 0, ConfigError,
            "{}: the {}x{} window does not fit the padded {}x{} input; the output would be {}x{}",
            describe(p, input), g.window_h, g.window_w, g.h + ph.pad_before + ph.pad_after,
            g.w + pw.pad_before + pw.pad_after, ph.out, pw.out);
  g.p = ph.out;
  g.q = pw.out;
  g.pad_top = ph.pad_before;
  g.pad_left = pw.pad_before;
  return g;
}

std::string describe(const cnnk::Pool2dGeometry& g) {
  return fmt::format("{} n{} c{} {}x{} -> {}x{}, {}x{} s{}x{} pad {},{}",
                     g.mode == cnnk::PoolMode::Max ? "max" : "avg", g.n, g.c, g.h, g.w, g.p, g.q,
                     g.window_h, g.window_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left);
}

}  // namespace cnn
