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
  ActivationGeometry ag;
  ag.n = g.n;
  ag.c = g.k;
  ag.spatial = int64_t(g.p) * g.q;
  activation_forward(act, ag, y, y);
}

void Backend::dense_forward_fused(const cnnk::DenseGeometry& g, const float* x, const float* w,
                                  const float* b, Activation act, float* y) {
  dense_forward(g, x, w, b, y);
  if (act == Activation::Linear) return;
  ActivationGeometry ag;
  ag.n = g.n;
  ag.c = g.out;
  activation_forward(act, ag, y, y);
}

Tensor Backend::to_host(const Tensor& t) {
  Tensor h = Tensor::empty_host(t.shape());
  download(t, h.host());
  return h;
}

}  // namespace cnn
