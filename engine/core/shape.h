// A tensor shape: up to a handful of int64 dimensions, NCHW for activations.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace cnn {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t operator[](int i) const { return dims_.at(static_cast<size_t>(i)); }
  int64_t& operator[](int i) { return dims_.at(static_cast<size_t>(i)); }
  int64_t numel() const;
  const std::vector<int64_t>& dims() const { return dims_; }

  // The same shape with dimension 0 replaced (the batch).
  Shape with_batch(int64_t n) const;
  // Elements per item of the batch: numel / dims[0].
  int64_t per_item() const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

  // "(2, 3, 4)"; with batch_as_none the first dimension prints as None (Keras style).
  std::string str(bool batch_as_none = false) const;

 private:
  std::vector<int64_t> dims_;
};

}  // namespace cnn
