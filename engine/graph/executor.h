// Runs a model's graph on a backend: forward in node order, backward in reverse.
// Every activation and gradient buffer is allocated once, for the largest batch, when
// the executor is built; a smaller batch (the last of an epoch) uses views of them.
#pragma once

#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"

namespace cnn {

class Executor {
 public:
  Executor(Model& model, Parameters& params, Backend& backend, int64_t max_batch);

  // x: [n, input shape...], n <= max_batch, on the backend's device. Returns the output
  // node's tensor (logits when the model's softmax is folded), a view valid until the
  // next forward.
  Tensor forward(const Tensor& x, bool training, uint64_t seed = 0, int64_t step = 0);
  // Backpropagates dout (the output's gradient, same batch as the last forward) and
  // assigns every trainable parameter's gradient. Gradients are computed only where a
  // trainable parameter lies upstream: behind a frozen base, backward stops early.
  void backward(const Tensor& dout);

  int64_t max_batch() const { return max_batch_; }
  // The last pass's output and output gradient of node `id` (a layer, not the input),
  // as views of the current batch.
  Tensor activation(int id) const;
  Tensor gradient(int id) const;
  // Whether backward computes node `id`'s output gradient: it or a node upstream of it has
  // a trainable parameter.
  bool has_gradient(int id) const;
  Backend& backend() { return backend_; }

 private:
  Model& model_;
  Backend& backend_;
  int64_t max_batch_;
  std::vector<Tensor> acts_, grads_, scratch_;  // per node
  std::vector<int> consumers_;                  // per node: how many nodes read it
  std::vector<bool> needs_grad_;                // per node: see has_gradient
  Tensor input_;                                // the last forward's input
  RunContext last_ctx_;
  int64_t n_ = 0;
};

}  // namespace cnn
