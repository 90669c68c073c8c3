#include "engine/graph/executor.h"

#include "engine/core/error.h"
#include "engine/core/nvtx.h"
#include "engine/graph/layers/layer_util.h"

namespace cnn {

Executor::Executor(Model& model, Parameters& params, Backend& backend, int64_t max_batch)
    : model_(model), backend_(backend), max_batch_(max_batch), last_ctx_{backend} {
  CNN_CHECK(model.finished(), Error, "model '{}' is not finished", model.name());
  CNN_CHECK(max_batch > 0, ConfigError, "batch size must be positive, got {}", max_batch);
  params.bind(model);
  const auto& nodes = model.nodes();
  acts_.resize(nodes.size());
  grads_.resize(nodes.size());
  scratch_.resize(nodes.size());
  consumers_.assign(nodes.size(), 0);
  needs_grad_.assign(nodes.size(), false);
  for (const Node& n : nodes) {
    for (int in : n.inputs) ++consumers_[static_cast<size_t>(in)];
    // Nodes come in topological order: inputs are decided before their consumers.
    bool needs = false;
    for (const ParamSpec& p : n.params) needs = needs || p.trainable;
    for (int in : n.inputs) needs = needs || needs_grad_[static_cast<size_t>(in)];
    needs_grad_[static_cast<size_t>(n.id)] = needs;
  }
  for (const Node& n : nodes) {
    if (!n.layer) continue;  // the input node's tensor is the caller's
    const Shape full = detail::batched(max_batch, n.shape);
    // Out of memory here names the layer whose buffers did not fit.
    with_context(fmt::format("allocating layer '{}' ({}) for batch {}", n.name, n.layer->type(),
                             max_batch),
                 [&] {
                   acts_[static_cast<size_t>(n.id)] = backend.empty(full);
                   grads_[static_cast<size_t>(n.id)] = backend.empty(full);
                   // A tensor read by several layers sums their gradients: all but the
                   // first go here.
                   if (consumers_[static_cast<size_t>(n.id)] > 1)
                     scratch_[static_cast<size_t>(n.id)] = backend.empty(full);
                   n.layer->prepare(backend, max_batch);
                 });
  }
}

Tensor Executor::forward(const Tensor& x, bool training, uint64_t seed, int64_t step) {
  const Shape expected = detail::batched(x.shape().rank() ? x.shape()[0] : 0, model_.input_shape());
  CNN_CHECK(x.shape() == expected, Error, "model '{}' expects input {}, got {}", model_.name(),
            expected.str(), x.shape().str());
  n_ = x.shape()[0];
  CNN_CHECK(n_ >= 1 && n_ <= max_batch_, Error, "batch of {} outside [1, {}]", n_, max_batch_);
  input_ = x;
  last_ctx_.training = training;
  last_ctx_.seed = seed;
  last_ctx_.step = step;
  const auto& nodes = model_.nodes();
  for (const Node& node : nodes) {
    if (!node.layer) continue;
    std::vector<Tensor> in;
    for (int id : node.inputs)
      in.push_back(id == 0 ? input_ : acts_[static_cast<size_t>(id)].slice_batch(0, n_));
    CNN_NVTX_RANGE(node.name + "/forward");
    node.layer->forward(last_ctx_, in, acts_[static_cast<size_t>(node.id)].slice_batch(0, n_));
  }
  return acts_[static_cast<size_t>(model_.output_id())].slice_batch(0, n_);
}

void Executor::backward(const Tensor& dout) {
  const auto& nodes = model_.nodes();
  const int out = model_.output_id();
  CNN_CHECK(dout.shape() == acts_[static_cast<size_t>(out)].shape().with_batch(n_), Error,
            "output gradient {} does not match the last forward's output", dout.shape().str());
  // written[i]: node i's output gradient holds the sum of what its consumers sent so far.
  std::vector<bool> written(nodes.size(), false);
  backend_.copy(dout, grads_[static_cast<size_t>(out)].slice_batch(0, n_));
  written[static_cast<size_t>(out)] = true;
  for (int id = out; id >= 1; --id) {
    const Node& node = nodes[static_cast<size_t>(id)];
    // Skipped: nodes that do not reach the output, and those with nothing to train upstream.
    if (!written[static_cast<size_t>(id)] || !needs_grad_[static_cast<size_t>(id)]) continue;
    std::vector<Tensor> in, din;
    std::vector<int> pending;  // inputs whose gradient went to scratch
    for (int src : node.inputs) {
      const size_t s = static_cast<size_t>(src);
      in.push_back(src == 0 ? input_ : acts_[s].slice_batch(0, n_));
      if (src == 0 || !needs_grad_[s]) {
        din.emplace_back();  // no gradient for the data, or for a frozen base
      } else if (!written[s]) {
        din.push_back(grads_[s].slice_batch(0, n_));
        written[s] = true;
      } else {
        din.push_back(scratch_[s].slice_batch(0, n_));
        pending.push_back(src);
      }
    }
    CNN_NVTX_RANGE(node.name + "/backward");
    node.layer->backward(last_ctx_, in, acts_[static_cast<size_t>(id)].slice_batch(0, n_),
                         grads_[static_cast<size_t>(id)].slice_batch(0, n_), din);
    for (int src : pending) {
      const size_t s = static_cast<size_t>(src);
      backend_.accumulate(grads_[s].numel() / max_batch_ * n_, scratch_[s].data(),
                          grads_[s].data());
    }
  }
}

bool Executor::has_gradient(int id) const {
  return id >= 1 && id < static_cast<int>(needs_grad_.size()) &&
         needs_grad_[static_cast<size_t>(id)];
}

Tensor Executor::activation(int id) const {
  CNN_CHECK(id >= 1 && id < static_cast<int>(acts_.size()) && n_ > 0, Error,
            "no activation for node {}", id);
  return acts_[static_cast<size_t>(id)].slice_batch(0, n_);
}

Tensor Executor::gradient(int id) const {
  CNN_CHECK(id >= 1 && id < static_cast<int>(grads_.size()) && n_ > 0, Error,
            "no gradient for node {}", id);
  return grads_[static_cast<size_t>(id)].slice_batch(0, n_);
}

}  // namespace cnn
