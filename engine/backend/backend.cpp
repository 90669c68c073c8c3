#include "engine/backend/backend.h"

namespace cnn {

Tensor Backend::zeros(const Shape& shape) {
  Tensor t = empty(shape);
  fill(t, 0.0f);
  return t;
}

Tensor Backend::to_device(const Tensor& host) {
  Tensor t = empty(host.shape());
  upload(host.host(), t);
  return t;
}

void Backend::conv2d_forward_fused(const cnnk::Conv2dGeometry& g, const float* x, const float* w,
                                   const float* b, Activation act, float* y) {
  conv2d_forward(g, x, w, b, y);
  if (act == Activation::Linear) return;
  activation_forward(act, ActivationGeometry{g.n, g.k, int64_t(g.p) * g.q}, y, y);
}

void Backend::dense_forward_fused(const cnnk::DenseGeometry& g, const float* x, const float* w,
                                  const float* b, Activation act, float* y) {
  dense_forward(g, x, w, b, y);
  if (act == Activation::Linear) return;
  activation_forward(act, ActivationGeometry{g.n, g.out, 1}, y, y);
}

Tensor Backend::to_host(const Tensor& t) {
  Tensor h = Tensor::empty_host(t.shape());
  download(t, h.host());
  return h;
}

}  // namespace cnn
