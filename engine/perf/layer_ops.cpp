#include "engine/perf/layer_ops.h"

#include <fmt/format.h>

#include <map>

#include "engine/core/error.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/ops/pool2d/pool2d.h"

namespace cnn::perf {
namespace {

using json = nlohmann::ordered_json;

// Keras's int-or-pair arguments, as Layer::config() writes them.
std::pair<int, int> pair_of(const json& v) {
  if (v.is_array()) return {v.at(0).get<int>(), v.at(1).get<int>()};
  return {v.get<int>(), v.get<int>()};
}

Padding padding_of(const json& v) {
  if (v.is_string()) return v.get<std::string>() == "same" ? Padding::same() : Padding::valid();
  return Padding::explicit_(v.at(0).at(0).get<int>(), v.at(0).at(1).get<int>(),
                            v.at(1).at(0).get<int>(), v.at(1).at(1).get<int>());
}

Shape batched(int64_t n, const Shape& item) {
  std::vector<int64_t> d{n};
  d.insert(d.end(), item.dims().begin(), item.dims().end());
  return Shape(std::move(d));
}

cnnk::Conv2dGeometry conv_geometry(const json& c, const Shape& input) {
  Conv2dParams p;
  p.filters = c.at("filters").get<int>();
  std::tie(p.kernel_h, p.kernel_w) = pair_of(c.at("kernel_size"));
  std::tie(p.stride_h, p.stride_w) = pair_of(c.at("strides"));
  std::tie(p.dilation_h, p.dilation_w) = pair_of(c.at("dilation_rate"));
  p.padding = padding_of(c.at("padding"));
  p.use_bias = c.at("use_bias").get<bool>();
  return conv2d_geometry(p, input);
}

cnnk::Pool2dGeometry pool_geometry(const json& c, cnnk::PoolMode mode, const Shape& input) {
  Pool2dParams p;
  p.mode = mode;
  std::tie(p.pool_h, p.pool_w) = pair_of(c.at("pool_size"));
  if (!c.at("strides").is_null()) std::tie(p.stride_h, p.stride_w) = pair_of(c.at("strides"));
  p.padding = padding_of(c.at("padding"));
  return pool2d_geometry(p, input);
}

// The CUDA backend's key for a batch-norm shape (cuda_backend.cpp's bn_key).
std::string batchnorm_key(const cnnk::BatchNormGeometry& g) {
  return fmt::format("n{} c{} spatial {}", g.n, g.c, g.spatial);
}

}  // namespace

std::vector<OpPass> LayerOp::passes() const {
  if (family == "conv2d") return {OpPass::Forward, OpPass::BackwardData, OpPass::BackwardFilter};
  if (family == "dense") return {OpPass::Forward, OpPass::BackwardData, OpPass::BackwardWeights};
  return {OpPass::Forward, OpPass::Backward};
}

OpCost LayerOp::cost(OpPass pass) const {
  if (const auto* g = std::get_if<cnnk::Conv2dGeometry>(&geometry))
    return conv2d_cost(*g, bias, pass);
  if (const auto* g = std::get_if<cnnk::Pool2dGeometry>(&geometry)) return pool2d_cost(*g, pass);
  if (const auto* g = std::get_if<cnnk::BatchNormGeometry>(&geometry))
    return batchnorm_cost(*g, pass);
  return dense_cost(std::get<cnnk::DenseGeometry>(geometry), bias, pass);
}

std::string LayerOp::describe() const {
  if (const auto* g = std::get_if<cnnk::Conv2dGeometry>(&geometry)) return cnn::describe(*g);
  if (const auto* g = std::get_if<cnnk::Pool2dGeometry>(&geometry)) return cnn::describe(*g);
  if (const auto* g = std::get_if<cnnk::BatchNormGeometry>(&geometry)) return batchnorm_key(*g);
  const auto& d = std::get<cnnk::DenseGeometry>(geometry);
  return fmt::format("n{} in{} -> out{}", d.n, d.in, d.out);
}

int64_t LayerOp::batch() const {
  return std::visit([](const auto& g) { return static_cast<int64_t>(g.n); }, geometry);
}

std::optional<LayerOp> layer_op(const Model& model, int id, int64_t n) {
  const Node& node = model.nodes().at(static_cast<size_t>(id));
  if (!node.layer || node.inputs.empty()) return std::nullopt;
  const Shape& item = model.nodes().at(static_cast<size_t>(node.inputs[0])).shape;
  const Shape input = batched(n, item);
  const std::string family = node.layer->op_family();
  const json config = node.layer->config();
  LayerOp op;
  op.node = id;
  op.layer = node.name;
  op.type = node.layer->type();
  op.family = family;
  return with_context(fmt::format("layer '{}' ({})", node.name, op.type), [&] {
    if (family == "conv2d") {
      op.geometry = conv_geometry(config, input);
      op.bias = config.at("use_bias").get<bool>();
    } else if (family == "pool2d") {
      const auto mode = op.type == "MaxPooling2D" ? cnnk::PoolMode::Max : cnnk::PoolMode::Average;
      op.geometry = pool_geometry(config, mode, input);
    } else if (family == "batchnorm") {
      cnnk::BatchNormGeometry g;
      g.n = static_cast<int>(n);
      g.c = static_cast<int>(item[0]);
      g.spatial = static_cast<int>(item.numel() / item[0]);
      op.geometry = g;
    } else if (family == "dense") {
      op.geometry = cnnk::DenseGeometry{static_cast<int>(n), static_cast<int>(item.numel()),
                                        config.at("units").get<int>()};
      op.bias = config.at("use_bias").get<bool>();
    } else {
      return std::optional<LayerOp>();
    }
    return std::optional<LayerOp>(op);
  });
}

std::vector<LayerOp> conv_pool_batchnorm_ops(const Model& model, int64_t n) {
  std::vector<LayerOp> ops;
  for (const Node& node : model.nodes()) {
    std::optional<LayerOp> op = layer_op(model, node.id, n);
    if (op && op->family != "dense") ops.push_back(std::move(*op));
  }
  return ops;
}

std::string implementation_of(const Backend& backend, const LayerOp& op, OpPass pass) {
  // The CUDA backend's keys: "<family> <pass> <shape>", the batch-norm forward recorded
  // as "forward-training" (the pass training runs).
  std::string pass_key = pass_name(pass);
  if (op.family == "batchnorm" && pass == OpPass::Forward) pass_key = "forward-training";
  const std::map<std::string, std::string> choices = backend.implementation_choices();
  const auto it = choices.find(op.family + " " + pass_key + " " + op.describe());
  return it != choices.end() ? it->second : backend.impl_name(op.family);
}

std::vector<LayerImplementation> layer_implementations(const Model& model, const Backend& backend,
                                                       int64_t n) {
  std::vector<LayerImplementation> out;
  for (const Node& node : model.nodes()) {
    const std::optional<LayerOp> op = layer_op(model, node.id, n);
    if (!op) continue;
    LayerImplementation li{op->layer, op->type, op->family, "", ""};
    for (OpPass pass : op->passes()) {
      std::string& into = pass == OpPass::Forward ? li.forward : li.backward;
      const std::string impl = implementation_of(backend, *op, pass);
      if (into.find(impl) == std::string::npos) into += (into.empty() ? "" : " + ") + impl;
    }
    out.push_back(std::move(li));
  }
  return out;
}

}  // namespace cnn::perf
