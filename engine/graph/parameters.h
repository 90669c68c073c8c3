// A model's parameters on a backend: one allocation for the trainable values, one for
// their gradients, one for the non-trainable state (batch-norm running statistics, and
// every parameter of a frozen layer, as Keras counts them);
// each layer's tensors are views carved from them, so the optimizer updates everything
// in one call over one flat buffer. Each view starts at a multiple of kAlignment floats
// (256 bytes, as cudaMalloc's blocks), so that cuDNN and cuBLAS get pointers as aligned
// as their own allocations would be; the gaps between views are zero, have zero
// gradients, and so stay zero under every optimizer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/model.h"

namespace cnn {

class Parameters {
 public:
  static constexpr int64_t kAlignment = 64;  // floats
  struct Entry {
    std::string name;  // "<layer>/<param>", e.g. "conv2d/kernel"
    int node = 0;
    bool trainable = true;
    Tensor value;
    Tensor grad;  // undefined when not trainable
    ParamSpec spec;
  };
  // Host copies of every value and state, for early stopping's best weights.
  struct Snapshot {
    std::vector<float> values, state;
  };

  Parameters(const Model& model, Backend& backend);

  // Keras initialisers from one seed: glorot_uniform kernels, zero biases, gamma 1,
  // beta 0, moving mean 0, moving variance 1. Each tensor draws from its own stream, so
  // adding a layer does not change the others' values.
  void initialize(uint64_t seed);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry& find(const std::string& name) const;
  const Tensor& values() const { return values_; }
  const Tensor& grads() const { return grads_; }
  const Tensor& state() const { return state_; }
  // The number of trainable parameters (as the summary counts them); values(), grads()
  // and the optimizer's slots are longer by the gaps.
  int64_t trainable_count() const { return trainable_count_; }

  // Host transfers of one entry's value (count = the entry's numel).
  void read(const Entry& e, float* host) const;
  void write(const Entry& e, const float* host);

  Snapshot snapshot() const;
  void restore(const Snapshot& s);
  // Binds every layer of `model` to its views.
  void bind(Model& model) const;

 private:
  Backend& backend_;
  Tensor values_, grads_, state_;
  std::vector<Entry> entries_;
  int64_t trainable_count_ = 0;
};

}  // namespace cnn
