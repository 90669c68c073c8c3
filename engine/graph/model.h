// A model: a graph of layers built the Keras way, Sequential or Functional (branches
// joined by Add or Concatenate). Shapes are inferred as each layer is added, so an
// impossible configuration fails at once with the layer's name and the shapes.
#pragma once

#include <string>
#include <vector>

#include "engine/graph/layer.h"

namespace cnn {

// A handle to a node of the model's graph (the functional API's symbolic tensor).
struct NodeRef {
  int id = -1;
};

struct Node {
  int id = 0;
  std::string name;
  LayerPtr layer;                 // null for the input node
  std::vector<int> inputs;        // node ids
  Shape shape;                    // per-item output shape (no batch dimension)
  std::vector<ParamSpec> params;  // trainable false for every parameter of a frozen layer

  // The layer's parameter count, trainable or not (the summary's "Param #").
  int64_t param_count() const {
    int64_t total = 0;
    for (const ParamSpec& p : params) total += p.shape.numel();
    return total;
  }
};

class Model {
 public:
  explicit Model(std::string name = "model");
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;

  // Functional API. Names default to Keras's automatic ones (conv2d, conv2d_1, ...).
  NodeRef input(const Shape& item_shape, const std::string& name = "input_layer");
  NodeRef add(LayerPtr layer, const std::vector<NodeRef>& inputs, const std::string& name = "");
  NodeRef add(LayerPtr layer, NodeRef input, const std::string& name = "") {
    return add(std::move(layer), std::vector<NodeRef>{input}, name);
  }
  // Sequential API: appends to the last node (the input must exist).
  NodeRef add(LayerPtr layer) { return add(std::move(layer), NodeRef{last_id()}); }

  // Ends building: the output is the given node (default: the last one added). A final
  // softmax is folded into the loss, so the graph then produces logits.
  void finish(NodeRef output = {});

  const std::string& name() const { return name_; }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& output_node() const { return nodes_.at(static_cast<size_t>(output_)); }
  int output_id() const { return output_; }
  const Shape& input_shape() const { return nodes_.front().shape; }
  bool finished() const { return output_ >= 0; }
  // Whether the output's softmax was folded into the loss (predict applies it).
  bool softmax_folded() const { return softmax_folded_; }
  // The node named `name` (the input included), or -1.
  int find(const std::string& name) const;
  // The name a layer whose default_name() is `base` gets when added without one now.
  std::string next_auto_name(const std::string& base) const;

  // Freezes (false) or unfreezes a layer, as Keras's `layer.trainable = ...`: its
  // parameters move between the trainable and the non-trainable counts. Call it before
  // the model's Parameters (or a Trainer) are created; Parameters refuses to bind a model
  // changed afterwards. Throws ConfigError for a name that is not a layer.
  void set_trainable(const std::string& layer, bool trainable);
  // A chain without branches prints as Keras's Sequential summary.
  bool is_chain() const;

  int64_t count_params(bool trainable) const;
  int64_t count_params() const { return count_params(true) + count_params(false); }

 private:
  int last_id() const { return static_cast<int>(nodes_.size()) - 1; }

  std::string name_;
  std::vector<Node> nodes_;
  int output_ = -1;
  bool softmax_folded_ = false;
};

// Freezes every layer whose name matches one of `patterns` (exact names, or globs with
// '*' and '?': "block1_*"), as a --freeze flag does; returns the frozen layers' names in
// model order. A pattern that matches no layer throws ConfigError (listing the
// layers). Call it before the model's Parameters are created.
std::vector<std::string> freeze_layers(Model& model, const std::vector<std::string>& patterns);

// The Keras summary table: Layer (type) | Output Shape | Param # (and Connected to, for
// models with branches), then total, trainable and non-trainable parameters. Output
// shapes print as Keras prints them: (None, H, W, C) for images, though the engine
// stores NCHW.
std::string summary(const Model& m);

}  // namespace cnn
