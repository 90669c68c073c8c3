#include "engine/core/shape.h"

#include "engine/core/error.h"

namespace cnn {

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

Shape Shape::with_batch(int64_t n) const {
  CNN_CHECK(!dims_.empty(), Error, "with_batch on a scalar shape");
  Shape s = *this;
  s.dims_[0] = n;
  return s;
}

int64_t Shape::per_item() const {
  CNN_CHECK(!dims_.empty() && dims_[0] > 0, Error, "per_item on shape {}", str());
  return numel() / dims_[0];
}

std::string Shape::str(bool batch_as_none) const {
  std::string s = "(";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += (i == 0 && batch_as_none) ? std::string("None") : std::to_string(dims_[i]);
  }
  if (dims_.size() == 1 && !batch_as_none) s += ",";
  return s + ")";
}

}  // namespace cnn
