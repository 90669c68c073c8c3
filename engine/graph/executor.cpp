#include "engine/graph/executor.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/core/error.h"
#include "engine/core/nvtx.h"
#include "engine/graph/layers/layer_util.h"
#include "engine/graph/memory_plan.h"

namespace cnn {

Executor::Executor(Model& model, Parameters& params, Backend& backend, int64_t max_batch,
                   ExecutorOptions options)
    : model_(model),
      backend_(backend),
      max_batch_(max_batch),
      options_(options),
      last_ctx_{backend} {
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
  plan_buffers();
  for (const Node& n : nodes) {
    if (!n.layer) continue;
    // Out of memory here names the layer whose scratch did not fit.
    with_context(
        fmt::format("allocating layer '{}' ({}) for batch {}", n.name, n.layer->type(), max_batch),
        [&] { n.layer->prepare(backend_, max_batch_); });
  }
}

// The schedule of one training step, in steps: the forward of node i at step i, the
// output gradient's arrival (the loss writing it, or backward's copy) at step `count` (the
// number of nodes), the backward of node i at step 2 * count - i. A buffer lives from the
// step that first writes it through the last that reads it; inference passes run a prefix
// of the same schedule, so the plan serves both. Lifetimes may only err long: a buffer
// that lives too short gets overwritten.
//
// A view layer (Flatten) gets no memory of its own: its activation is its input's storage
// under its own shape, and so is its gradient when it is its input's only reader (then its
// backward writes its input's gradient, which is the same memory). A view lives within its
// input's lifetime (it comes later in forward and earlier in backward), so sharing needs
// only the gradient's start moved to the view's.
void Executor::plan_buffers() {
  const auto& nodes = model_.nodes();
  const int count = static_cast<int>(nodes.size());
  const int out = model_.output_id();
  const auto bwd = [count](int id) { return 2 * count - id; };
  std::vector<std::vector<int>> readers(nodes.size());  // consumers, once per input slot
  for (const Node& n : nodes)
    for (int in : n.inputs) readers[static_cast<size_t>(in)].push_back(n.id);

  std::vector<BufferRequest> requests;
  struct Target {
    Tensor* tensor;
    Shape shape;
    size_t request;  // whose storage it views
  };
  std::vector<Target> targets;
  constexpr size_t kNone = SIZE_MAX;
  std::vector<size_t> act_request(nodes.size(), kNone), grad_request(nodes.size(), kNone);
  const auto request = [&](Tensor* t, const Shape& shape, std::string name, int first, int last) {
    // keep_all: every buffer lives for the whole step, so none shares memory.
    if (options_.keep_all) first = 0, last = 2 * count;
    requests.push_back({std::move(name), static_cast<size_t>(shape.numel()), first, last});
    targets.push_back({t, shape, requests.size() - 1});
    return requests.size() - 1;
  };
  for (const Node& n : nodes) {
    if (!n.layer) continue;  // the input node's tensor is the caller's
    const size_t i = static_cast<size_t>(n.id);
    const Shape full = detail::batched(max_batch_, n.shape);
    std::vector<int> r = readers[i];
    std::sort(r.begin(), r.end(), std::greater<int>());  // the order backward meets them
    // A view of a layer's output (not of the caller's input, whose memory is not planned).
    const int src = n.inputs.empty() ? 0 : n.inputs[0];
    const size_t s = static_cast<size_t>(src);
    const bool view = n.layer->is_view() && src != 0 && nodes[s].shape.numel() == n.shape.numel();
    // The activation: written by the node's forward, read by its consumers' forwards and
    // backwards and by its own backward, which comes last (consumers have higher ids).
    // Every activation is thus live at the end of forward: activation() reads them all.
    if (view) {
      act_request[i] = act_request[s];
      targets.push_back({&acts_[i], full, act_request[i]});
    } else {
      act_request[i] = request(&acts_[i], full, n.name + "/activation", n.id, bwd(n.id));
    }
    // The gradient: the output's arrives before any backward; another node's is assigned
    // by the first consumer whose backward runs (at the earliest the highest id) and read
    // by the node's own backward. A node with nothing trainable upstream gets none:
    // backward never touches it.
    if (n.id == out || needs_grad_[i]) {
      int first = n.id == out ? count : bwd(n.id);
      if (!r.empty()) first = std::min(first, bwd(r.front()));
      if (view && readers[s].size() == 1 && grad_request[s] != kNone) {
        grad_request[i] = grad_request[s];
        BufferRequest& shared = requests[grad_request[i]];
        shared.first_use = std::min(shared.first_use, first);
        targets.push_back({&grads_[i], full, grad_request[i]});
      } else {
        grad_request[i] = request(&grads_[i], full, n.name + "/gradient", first, bwd(n.id));
      }
    }
    // The scratch of a node read by several layers (or twice by one): each consumer after
    // the one that assigned the gradient writes its share here and accumulates it into the
    // gradient within the same step. The first consumer to run is at the earliest r[0], so
    // the scratch is live at most from r[1]'s backward through the last consumer's. (The
    // output's gradient is written before any consumer runs: then from r[0]'s.)
    if (r.size() > 1 && needs_grad_[i]) {
      const int first = bwd(n.id == out ? r[0] : r[1]);
      request(&scratch_[i], full, n.name + "/scratch", first, bwd(r.back()));
    }
  }

  const MemoryPlan plan = plan_memory(requests);
  memory_.planned_bytes = static_cast<int64_t>(plan.arena * sizeof(float));
  memory_.naive_bytes = static_cast<int64_t>(plan.naive * sizeof(float));
  memory_.buffers = static_cast<int>(requests.size());
  // At least one element, so that a backend never sees an empty allocation.
  const Shape arena_shape{std::max<int64_t>(1, static_cast<int64_t>(plan.arena))};
  // Out of memory here names the one allocation that did not fit, what it holds and its
  // largest part (the layer whose output a smaller batch shrinks most).
  const auto largest = std::max_element(
      requests.begin(), requests.end(),
      [](const BufferRequest& a, const BufferRequest& b) { return a.size < b.size; });
  with_context(fmt::format("allocating the activations and gradients of model '{}' for batch {} "
                           "({:.1f} MiB, the largest '{}')",
                           model_.name(), max_batch_,
                           static_cast<double>(memory_.planned_bytes) / (1024.0 * 1024.0),
                           largest == requests.end() ? "" : largest->name),
               [&] { arena_ = backend_.empty(arena_shape); });
  for (const Target& t : targets) *t.tensor = arena_.view(plan.offsets[t.request], t.shape);
}

Tensor Executor::forward(const Tensor& x, bool training, uint64_t seed, int64_t step,
                         const cnnk::StepScalars* live) {
  const Shape expected = detail::batched(x.shape().rank() ? x.shape()[0] : 0, model_.input_shape());
  CNN_CHECK(x.shape() == expected, Error, "model '{}' expects input {}, got {}", model_.name(),
            expected.str(), x.shape().str());
  n_ = x.shape()[0];
  CNN_CHECK(n_ >= 1 && n_ <= max_batch_, Error, "batch of {} outside [1, {}]", n_, max_batch_);
  input_ = x;
  phase_ = Phase::kForward;
  last_ctx_.training = training;
  last_ctx_.seed = seed;
  last_ctx_.step = step;
  last_ctx_.live = live;
  const auto& nodes = model_.nodes();
  for (const Node& node : nodes) {
    if (!node.layer) continue;
    std::vector<Tensor> in;
    for (int id : node.inputs)
      in.push_back(id == 0 ? input_ : acts_[static_cast<size_t>(id)].slice_batch(0, n_));
    CNN_NVTX_RANGE(node.name + "/forward");
    if (observer_) observer_->before(node, LayerPass::kForward);
    node.layer->forward(last_ctx_, in, acts_[static_cast<size_t>(node.id)].slice_batch(0, n_));
    if (observer_) observer_->after(node, LayerPass::kForward);
  }
  return acts_[static_cast<size_t>(model_.output_id())].slice_batch(0, n_);
}

void Executor::backward(const Tensor& dout) {
  const auto& nodes = model_.nodes();
  const int out = model_.output_id();
  CNN_CHECK(input_.defined(), Error, "backward without a forward since the input was released");
  CNN_CHECK(dout.shape() == acts_[static_cast<size_t>(out)].shape().with_batch(n_), Error,
            "output gradient {} does not match the last forward's output", dout.shape().str());
  // written[i]: node i's output gradient holds the sum of what its consumers sent so far.
  std::vector<bool> written(nodes.size(), false);
  phase_ = Phase::kBackward;
  const Tensor out_grad = grads_[static_cast<size_t>(out)].slice_batch(0, n_);
  if (dout.data() != out_grad.data()) backend_.copy(dout, out_grad);  // else written in place
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
    if (observer_) observer_->before(node, LayerPass::kBackward);
    node.layer->backward(last_ctx_, in, acts_[static_cast<size_t>(id)].slice_batch(0, n_),
                         grads_[static_cast<size_t>(id)].slice_batch(0, n_), din);
    if (observer_) observer_->after(node, LayerPass::kBackward);
    for (int src : pending) {
      const size_t s = static_cast<size_t>(src);
      backend_.accumulate(grads_[s].numel() / max_batch_ * n_, scratch_[s].data(),
                          grads_[s].data());
    }
  }
  phase_ = Phase::kBackwardDone;
}

Tensor Executor::output_gradient(int64_t n) const {
  CNN_CHECK(n >= 1 && n <= max_batch_, Error, "batch of {} outside [1, {}]", n, max_batch_);
  return grads_[static_cast<size_t>(model_.output_id())].slice_batch(0, n);
}

bool Executor::has_gradient(int id) const {
  return id >= 1 && id < static_cast<int>(needs_grad_.size()) &&
         needs_grad_[static_cast<size_t>(id)];
}

bool Executor::activations_readable() const {
  return n_ > 0 && (options_.keep_all || phase_ != Phase::kBackwardDone);
}

Tensor Executor::activation(int id) const {
  CNN_CHECK(id >= 1 && id < static_cast<int>(acts_.size()) && n_ > 0, Error,
            "no activation for node {}", id);
  CNN_CHECK(activations_readable(), Error,
            "the activations of model '{}' were reused by backward; build the executor with "
            "keep_all to read them after backward",
            model_.name());
  return acts_[static_cast<size_t>(id)].slice_batch(0, n_);
}

Tensor Executor::gradient(int id) const {
  CNN_CHECK(id >= 1 && id < static_cast<int>(grads_.size()) && n_ > 0, Error,
            "no gradient for node {}", id);
  CNN_CHECK(grads_[static_cast<size_t>(id)].defined(), Error,
            "node {} has no gradient: nothing upstream of it is trainable", id);
  CNN_CHECK(options_.keep_all || phase_ == Phase::kBackward, Error,
            "the gradients of model '{}' are reused within backward; build the executor with "
            "keep_all to read them after backward",
            model_.name());
  return grads_[static_cast<size_t>(id)].slice_batch(0, n_);
}

}  // namespace cnn
