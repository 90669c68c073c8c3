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

Tensor Backend::to_host(const Tensor& t) {
  Tensor h = Tensor::empty_host(t.shape());
  download(t, h.host());
  return h;
}

}  // namespace cnn
