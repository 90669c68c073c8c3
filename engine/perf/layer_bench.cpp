#include "engine/perf/layer_bench.h"

#include <algorithm>
#include <functional>

#include "engine/core/error.h"
#include "engine/core/rng.h"

namespace cnn::perf {
namespace {

// The inputs of a pass: values in [-1, 1), so max pooling has no ties and nothing
// overflows.
Tensor random_tensor(Backend& be, const Shape& shape, Rng& rng) {
  Tensor host = Tensor::empty_host(shape);
  float* p = host.host();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = static_cast<float>(rng.uniform(-1.0, 1.0));
  return be.to_device(host);
}

Tensor filled(Backend& be, const Shape& shape, float value) {
  Tensor t = be.empty(shape);
  be.fill(t, value);
  return t;
}

float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// The body that runs one pass of the op, over tensors it owns.
using PassBody = std::function<void(OpPass)>;

PassBody conv_body(Backend& be, const cnnk::Conv2dGeometry& g, bool bias, Rng& rng) {
  const Shape xs{g.n, g.c, g.h, g.w}, ws{g.k, g.c, g.r, g.s}, ys{g.n, g.k, g.p, g.q};
  const Tensor x = random_tensor(be, xs, rng), w = random_tensor(be, ws, rng),
               b = bias ? random_tensor(be, Shape{g.k}, rng) : Tensor(), y = be.empty(ys),
               dy = random_tensor(be, ys, rng), dx = be.empty(xs), dw = be.empty(ws),
               db = bias ? be.empty(Shape{g.k}) : Tensor();
  return [&be, g, x, w, b, y, dy, dx, dw, db](OpPass pass) {
    if (pass == OpPass::Forward)
      be.conv2d_forward(g, x.data(), w.data(), data_or_null(b), y.data());
    else if (pass == OpPass::BackwardData)
      be.conv2d_backward_data(g, dy.data(), w.data(), dx.data());
    else
      be.conv2d_backward_filter(g, x.data(), dy.data(), dw.data(), data_or_null(db));
  };
}

PassBody pool_body(Backend& be, const cnnk::Pool2dGeometry& g, Rng& rng) {
  const Shape xs{g.n, g.c, g.h, g.w}, ys{g.n, g.c, g.p, g.q};
  const Tensor x = random_tensor(be, xs, rng), y = be.empty(ys), dy = random_tensor(be, ys, rng),
               dx = be.empty(xs);
  // The backward reads the forward's output (cuDNN's max pooling finds the maximum by it),
  // whichever pass is timed first.
  be.pool2d_forward(g, x.data(), y.data());
  return [&be, g, x, y, dy, dx](OpPass pass) {
    if (pass == OpPass::Forward)
      be.pool2d_forward(g, x.data(), y.data());
    else
      be.pool2d_backward(g, x.data(), y.data(), dy.data(), dx.data());
  };
}

PassBody batchnorm_body(Backend& be, const cnnk::BatchNormGeometry& g, Rng& rng) {
  const Shape xs{g.n, g.c, g.spatial}, cs{g.c};
  const Tensor x = random_tensor(be, xs, rng), dy = random_tensor(be, xs, rng), y = be.empty(xs),
               dx = be.empty(xs), gamma = filled(be, cs, 1.0f), beta = filled(be, cs, 0.0f),
               mean = filled(be, cs, 0.0f), var = filled(be, cs, 1.0f), save_mean = be.empty(cs),
               save_invstd = be.empty(cs), dgamma = be.empty(cs), dbeta = be.empty(cs);
  // Keras's defaults; the values do not change the work.
  constexpr float kMomentum = 0.99f, kEpsilon = 1e-3f;
  return [&be, g, x, dy, y, dx, gamma, beta, mean, var, save_mean, save_invstd, dgamma,
          dbeta](OpPass pass) {
    if (pass == OpPass::Forward)
      be.batchnorm_forward_training(g, x.data(), gamma.data(), beta.data(), kMomentum, kEpsilon,
                                    mean.data(), var.data(), y.data(), save_mean.data(),
                                    save_invstd.data());
    else
      be.batchnorm_backward(g, x.data(), dy.data(), gamma.data(), save_mean.data(),
                            save_invstd.data(), kEpsilon, dx.data(), dgamma.data(), dbeta.data());
  };
}

}  // namespace

double median(std::vector<double> values) {
  CNN_CHECK(!values.empty(), Error, "the median of no values");
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

std::vector<TimedPass> time_layer_op(Backend& backend, const LayerOp& op, const BenchTiming& t) {
  Rng rng = Rng::stream(t.seed, static_cast<uint64_t>(op.node));
  PassBody body;
  if (const auto* conv = std::get_if<cnnk::Conv2dGeometry>(&op.geometry))
    body = conv_body(backend, *conv, op.bias, rng);
  else if (const auto* pool = std::get_if<cnnk::Pool2dGeometry>(&op.geometry))
    body = pool_body(backend, *pool, rng);
  else if (const auto* bn = std::get_if<cnnk::BatchNormGeometry>(&op.geometry))
    body = batchnorm_body(backend, *bn, rng);
  else
    throw Error(fmt::format("layer '{}' ({}): no benchmark for {}", op.layer, op.type, op.family));

  std::vector<TimedPass> out;
  for (OpPass pass : op.passes()) {
    TimedPass tp;
    tp.pass = pass;
    tp.ms = with_context(
        fmt::format("timing {} of layer '{}' ({})", pass_name(pass), op.layer, op.describe()),
        [&] { return backend.time_ms([&] { body(pass); }, t.warmup, t.repeats); });
    tp.median_ms = median(tp.ms);
    tp.impl = implementation_of(backend, op, pass);
    out.push_back(std::move(tp));
  }
  return out;
}

}  // namespace cnn::perf
