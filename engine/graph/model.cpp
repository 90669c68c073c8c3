#include "engine/graph/model.h"

#include <fmt/format.h>

#include <map>

#include "engine/core/error.h"

namespace cnn {

namespace {

// No tensor of a model may have more elements than this (4 TiB of float32): beyond
// anything a device holds, and far from overflowing the int64 sizes of later layers.
constexpr double kMaxElements = 1099511627776.0;  // 2^40

// The element count in floating point, which cannot overflow.
double elements(const Shape& s) {
  double e = 1.0;
  for (int64_t d : s.dims()) e *= static_cast<double>(d);
  return e;
}

}  // namespace

Model::Model(std::string name) : name_(std::move(name)) {}

std::string Model::next_auto_name(const std::string& base) const {
  int count = 0;
  for (const Node& n : nodes_)
    if (n.layer && n.layer->default_name() == base) ++count;
  return count == 0 ? base : fmt::format("{}_{}", base, count);
}

NodeRef Model::input(const Shape& item_shape, const std::string& name) {
  CNN_CHECK(nodes_.empty(), ConfigError, "model '{}' already has an input", name_);
  CNN_CHECK(item_shape.rank() >= 1, ConfigError,
            "model '{}': input shape {} must have positive dimensions", name_, item_shape.str());
  for (int64_t d : item_shape.dims())
    CNN_CHECK(d > 0, ConfigError, "model '{}': input shape {} must have positive dimensions", name_,
              item_shape.str());
  CNN_CHECK(elements(item_shape) <= kMaxElements, ConfigError,
            "model '{}': input shape {} has more than 2^40 elements", name_, item_shape.str());
  Node n;
  n.id = 0;
  n.name = name;
  n.shape = item_shape;
  nodes_.push_back(std::move(n));
  return {0};
}

NodeRef Model::add(LayerPtr layer, const std::vector<NodeRef>& inputs, const std::string& name) {
  CNN_CHECK(!nodes_.empty(), ConfigError, "model '{}': add an input before layers", name_);
  CNN_CHECK(!finished(), ConfigError, "model '{}' is finished; no more layers", name_);
  const std::string node_name = name.empty() ? next_auto_name(layer->default_name()) : name;
  for (const Node& n : nodes_)
    CNN_CHECK(n.name != node_name, ConfigError, "model '{}': two layers named '{}'", name_,
              node_name);
  const std::string where = fmt::format("layer '{}' ({})", node_name, layer->type());

  std::vector<Shape> shapes;
  std::vector<int> ids;
  for (NodeRef r : inputs) {
    CNN_CHECK(r.id >= 0 && r.id < static_cast<int>(nodes_.size()), ConfigError,
              "{}: input refers to no layer of this model", where);
    for (int seen : ids)
      CNN_CHECK(seen != r.id, ConfigError, "{}: the same input ('{}') appears twice", where,
                nodes_[static_cast<size_t>(seen)].name);
    shapes.push_back(nodes_[static_cast<size_t>(r.id)].shape);
    ids.push_back(r.id);
  }
  const int arity = layer->arity();
  if (arity == 0)
    CNN_CHECK(inputs.size() >= 2, ConfigError, "{} takes two or more inputs, got {}", where,
              inputs.size());
  else
    CNN_CHECK(static_cast<int>(inputs.size()) == arity, ConfigError, "{} takes {} input(s), got {}",
              where, arity, inputs.size());

  Node n;
  n.id = static_cast<int>(nodes_.size());
  n.name = node_name;
  n.inputs = ids;
  try {
    n.shape = layer->infer(shapes);
    n.params = layer->param_specs();
    if (!layer->trainable())
      for (ParamSpec& p : n.params) p.trainable = false;
  } catch (Error& e) {
    e.with_context(where);
    throw;
  }
  for (int64_t d : n.shape.dims())
    CNN_CHECK(d > 0, ConfigError, "{}: output shape {} from input {} is empty", where,
              n.shape.str(), shapes[0].str());
  CNN_CHECK(elements(n.shape) <= kMaxElements, ConfigError,
            "{}: output shape {} has more than 2^40 elements", where, n.shape.str());
  for (const ParamSpec& p : n.params)
    CNN_CHECK(elements(p.shape) <= kMaxElements, ConfigError,
              "{}: parameter '{}' of shape {} has more than 2^40 elements", where, p.name,
              p.shape.str());
  layer->set_name(node_name);
  n.layer = std::move(layer);
  nodes_.push_back(std::move(n));
  return {nodes_.back().id};
}

void Model::finish(NodeRef output) {
  CNN_CHECK(nodes_.size() >= 2, ConfigError, "model '{}' has no layers", name_);
  output_ = output.id < 0 ? last_id() : output.id;
  CNN_CHECK(output_ > 0 && output_ < static_cast<int>(nodes_.size()), ConfigError,
            "model '{}': output refers to no layer", name_);
  softmax_folded_ = nodes_[static_cast<size_t>(output_)].layer->fold_softmax();
}

int Model::find(const std::string& name) const {
  for (const Node& n : nodes_)
    if (n.name == name) return n.id;
  return -1;
}

void Model::set_trainable(const std::string& layer, bool trainable) {
  const int id = find(layer);
  CNN_CHECK(id > 0, ConfigError, "model '{}' has no layer named '{}'", name_, layer);
  Node& n = nodes_[static_cast<size_t>(id)];
  n.layer->set_trainable(trainable);
  // What the layer declares (running statistics stay non-trainable), then the flag.
  const std::vector<ParamSpec> declared = n.layer->param_specs();
  for (size_t i = 0; i < n.params.size(); ++i)
    n.params[i].trainable = trainable && declared.at(i).trainable;
}

namespace {

// Glob match with '*' (any run) and '?' (one character), iterative with one backtrack
// point, so no pattern can make it slow.
bool glob_match(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

std::vector<std::string> freeze_layers(Model& model, const std::vector<std::string>& patterns) {
  std::vector<bool> hit(model.nodes().size(), false);
  for (const std::string& pattern : patterns) {
    bool any = false;
    for (const Node& n : model.nodes())
      if (n.layer && glob_match(pattern, n.name)) hit[static_cast<size_t>(n.id)] = any = true;
    if (!any) {
      std::string names;
      for (const Node& n : model.nodes())
        if (n.layer) names += (names.empty() ? "" : ", ") + n.name;
      throw ConfigError(
          fmt::format("cannot freeze '{}': model '{}' has no such layer; its layers "
                      "are {}",
                      pattern, model.name(), names));
    }
  }
  std::vector<std::string> frozen;
  for (const Node& n : model.nodes())
    if (hit[static_cast<size_t>(n.id)]) frozen.push_back(n.name);
  for (const std::string& name : frozen) model.set_trainable(name, false);
  return frozen;
}

bool Model::is_chain() const {
  for (size_t i = 1; i < nodes_.size(); ++i)
    if (nodes_[i].inputs.size() != 1 || nodes_[i].inputs[0] != static_cast<int>(i) - 1)
      return false;
  return true;
}

int64_t Model::count_params(bool trainable) const {
  int64_t total = 0;
  for (const Node& n : nodes_)
    for (const ParamSpec& p : n.params)
      if (p.trainable == trainable) total += p.shape.numel();
  return total;
}

}  // namespace cnn
