#include "engine/graph/parameters.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"
#include "engine/core/rng.h"

namespace cnn {

Parameters::Parameters(const Model& model, Backend& backend) : backend_(backend) {
  CNN_CHECK(model.finished(), Error, "model '{}' is not finished", model.name());
  // Each view at a multiple of kAlignment floats: the buffers' lengths are the last
  // view's end.
  auto aligned = [](int64_t offset) { return (offset + kAlignment - 1) / kAlignment * kAlignment; };
  int64_t n_train = 0, n_state = 0;
  for (const Node& n : model.nodes())
    for (const ParamSpec& p : n.params) {
      int64_t& end = p.trainable ? n_train : n_state;
      end = aligned(end) + p.shape.numel();
      if (p.trainable) trainable_count_ += p.shape.numel();
    }
  // Buffers of at least one element, so views of an empty model stay valid.
  values_ = backend.zeros(Shape{std::max<int64_t>(n_train, 1)}).view(0, Shape{n_train});
  grads_ = backend.zeros(Shape{std::max<int64_t>(n_train, 1)}).view(0, Shape{n_train});
  state_ = backend.zeros(Shape{std::max<int64_t>(n_state, 1)}).view(0, Shape{n_state});
  int64_t off_train = 0, off_state = 0;
  for (const Node& n : model.nodes()) {
    for (const ParamSpec& p : n.params) {
      Entry e;
      e.name = n.name + "/" + p.name;
      e.node = n.id;
      e.trainable = p.trainable;
      e.spec = p;
      const int64_t count = p.shape.numel();
      if (p.trainable) {
        off_train = aligned(off_train);
        e.value = values_.view(static_cast<size_t>(off_train), p.shape);
        e.grad = grads_.view(static_cast<size_t>(off_train), p.shape);
        off_train += count;
      } else {
        off_state = aligned(off_state);
        e.value = state_.view(static_cast<size_t>(off_state), p.shape);
        off_state += count;
      }
      entries_.push_back(std::move(e));
    }
  }
}

const Parameters::Entry& Parameters::find(const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return e;
  throw Error(fmt::format("no parameter named '{}'", name));
}

void Parameters::initialize(uint64_t seed) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    Tensor host = Tensor::empty_host(e.value.shape());
    float* h = host.host();
    const int64_t count = host.numel();
    const ParamSpec& spec = e.spec;
    switch (spec.init) {
      case Init::Zeros:
        std::fill_n(h, count, 0.0f);
        break;
      case Init::Ones:
        std::fill_n(h, count, 1.0f);
        break;
      case Init::GlorotUniform: {
        const double limit = std::sqrt(6.0 / static_cast<double>(spec.fan_in + spec.fan_out));
        Rng rng = Rng::stream(seed, 0x1217, i);
        for (int64_t k = 0; k < count; ++k) h[k] = static_cast<float>(rng.uniform(-limit, limit));
        break;
      }
    }
    backend_.upload(h, e.value);
  }
}

void Parameters::read(const Entry& e, float* host) const { backend_.download(e.value, host); }

void Parameters::write(const Entry& e, const float* host) { backend_.upload(host, e.value); }

Parameters::Snapshot Parameters::snapshot() const {
  Snapshot s;
  s.values.resize(static_cast<size_t>(values_.numel()));
  s.state.resize(static_cast<size_t>(state_.numel()));
  if (!s.values.empty()) backend_.download(values_, s.values.data());
  if (!s.state.empty()) backend_.download(state_, s.state.data());
  return s;
}

void Parameters::restore(const Snapshot& s) {
  CNN_CHECK(s.values.size() == static_cast<size_t>(values_.numel()) &&
                s.state.size() == static_cast<size_t>(state_.numel()),
            Error, "snapshot does not match the parameters");
  if (!s.values.empty()) backend_.upload(s.values.data(), values_);
  if (!s.state.empty()) backend_.upload(s.state.data(), state_);
}

void Parameters::bind(Model& model) const {
  size_t i = 0;
  for (Node& n : model.nodes()) {
    if (!n.layer) continue;
    std::vector<Tensor> values, grads;
    for (size_t k = 0; k < n.params.size(); ++k, ++i) {
      CNN_CHECK(i < entries_.size() && entries_[i].name == n.name + "/" + n.params[k].name &&
                    entries_[i].trainable == n.params[k].trainable,
                Error,
                "model '{}': layer '{}' was changed (frozen or unfrozen?) after its parameters "
                "were created; freeze layers before training starts",
                model.name(), n.name);
      values.push_back(entries_.at(i).value);
      grads.push_back(entries_.at(i).grad);
    }
    n.layer->bind(std::move(values), std::move(grads));
  }
}

}  // namespace cnn
