// A float32 tensor: a shape, and a view into reference-counted storage on the host or
// on a CUDA device. Views (reshape, batch slices, carving from a flat buffer) share the
// storage; the storage is freed with its last view.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "engine/core/device.h"
#include "engine/core/shape.h"

namespace cnn {

// One allocation on one device. The deleter knows how to free it (host or CUDA).
class Storage {
 public:
  Storage(Device device, float* data, size_t elements, std::function<void(float*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device() const { return device_; }
  float* data() const { return data_; }
  size_t elements() const { return elements_; }

  // Host memory, 64-byte aligned, uninitialised.
  static std::shared_ptr<Storage> allocate_host(size_t elements);

 private:
  Device device_;
  float* data_;
  size_t elements_;
  std::function<void(float*)> deleter_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(Shape shape, std::shared_ptr<Storage> storage, size_t offset = 0);

  // New host tensors.
  static Tensor empty_host(const Shape& shape);
  static Tensor zeros_host(const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  Device device() const;

  // Raw pointer for a backend of the tensor's device.
  float* data() const;
  // Host pointer; throws if the tensor lives on a GPU (no hidden transfers).
  float* host() const;

  // A view of the same elements with another shape of equal numel.
  Tensor reshape(const Shape& shape) const;
  // A view of items [begin, begin + count) of dimension 0.
  Tensor slice_batch(int64_t begin, int64_t count) const;
  // A view of `shape` starting `offset` elements into this tensor (carving).
  Tensor view(size_t offset, const Shape& shape) const;

  const std::shared_ptr<Storage>& storage() const { return storage_; }

 private:
  Shape shape_;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
};

}  // namespace cnn
