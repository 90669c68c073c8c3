#include "engine/core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/core/error.h"

namespace cnn {

Storage::Storage(Device device, float* data, size_t elements, std::function<void(float*)> deleter)
    : device_(device), data_(data), elements_(elements), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (data_ && deleter_) deleter_(data_);
}

std::shared_ptr<Storage> Storage::allocate_host(size_t elements) {
  constexpr size_t kAlign = 64;
  size_t bytes = (elements * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  if (bytes == 0) bytes = kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) throw Error(fmt::format("out of host memory: {} bytes requested", bytes));
  return std::make_shared<Storage>(Device::host(), static_cast<float*>(p), elements,
                                   [](float* q) { std::free(q); });
}

Tensor::Tensor(Shape shape, std::shared_ptr<Storage> storage, size_t offset)
    : shape_(std::move(shape)), storage_(std::move(storage)), offset_(offset) {
  CNN_CHECK(storage_, Error, "tensor without storage");
  CNN_CHECK(offset_ + static_cast<size_t>(shape_.numel()) <= storage_->elements(), Error,
            "view of shape {} at offset {} exceeds storage of {} elements", shape_.str(), offset_,
            storage_->elements());
}

Tensor Tensor::empty_host(const Shape& shape) {
  return Tensor(shape, Storage::allocate_host(static_cast<size_t>(shape.numel())));
}

Tensor Tensor::zeros_host(const Shape& shape) {
  Tensor t = empty_host(shape);
  std::memset(t.data(), 0, static_cast<size_t>(t.numel()) * sizeof(float));
  return t;
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::host(); }

float* Tensor::data() const {
  CNN_CHECK(storage_, Error, "data() of an undefined tensor");
  return storage_->data() + offset_;
}

float* Tensor::host() const {
  CNN_CHECK(device().is_host(), Error, "host access to a tensor on {}", device().str());
  return data();
}

Tensor Tensor::reshape(const Shape& shape) const {
  CNN_CHECK(shape.numel() == shape_.numel(), Error, "cannot reshape {} to {}", shape_.str(),
            shape.str());
  return Tensor(shape, storage_, offset_);
}

Tensor Tensor::slice_batch(int64_t begin, int64_t count) const {
  CNN_CHECK(shape_.rank() >= 1 && begin >= 0 && count >= 0 && begin + count <= shape_[0], Error,
            "batch slice [{}, {}) out of range for {}", begin, begin + count, shape_.str());
  const int64_t per = shape_[0] ? shape_.per_item() : 0;
  return Tensor(shape_.with_batch(count), storage_, offset_ + static_cast<size_t>(begin * per));
}

Tensor Tensor::view(size_t offset, const Shape& shape) const {
  CNN_CHECK(offset + static_cast<size_t>(shape.numel()) <= static_cast<size_t>(numel()), Error,
            "view of {} at {} exceeds tensor {}", shape.str(), offset, shape_.str());
  return Tensor(shape, storage_, offset_ + offset);
}

}  // namespace cnn
