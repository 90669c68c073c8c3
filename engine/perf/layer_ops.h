// The op behind a layer of a model, with its geometry at a batch size: what `cnn bench`
// times on its own and `cnn profile` divides a layer's time by. The geometry is rebuilt
// from the layer's Keras configuration and its input shape, through the same shape
// inference the layer uses, so it is the geometry the layer passes to the backend.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cnnk/geometry.h"
#include "engine/backend/backend.h"
#include "engine/graph/model.h"
#include "engine/perf/op_cost.h"

namespace cnn::perf {

struct LayerOp {
  int node = 0;        // the node's id in the model
  std::string layer;   // "conv2d_1"
  std::string type;    // "Conv2D"
  std::string family;  // "conv2d", "pool2d", "batchnorm", "dense"
  std::variant<cnnk::Conv2dGeometry, cnnk::Pool2dGeometry, cnnk::BatchNormGeometry,
               cnnk::DenseGeometry>
      geometry;
  bool bias = false;  // Conv2D and Dense

  // The passes of the op: forward, then the backward ones.
  std::vector<OpPass> passes() const;
  OpCost cost(OpPass pass) const;
  // "n32 c1 28x28 -> k64 28x28, 7x7 s1x1 pad 3,3 dil 1x1", as the backend logs it.
  std::string describe() const;
  int64_t batch() const;
};

// The op of node `id` at batch n, or nothing for a layer without one of these ops
// (activations, dropout, flatten, add, concatenate) and for the input.
std::optional<LayerOp> layer_op(const Model& model, int id, int64_t n);

// Every Conv2D, pooling and BatchNormalization layer of the model, in graph order.
std::vector<LayerOp> conv_pool_batchnorm_ops(const Model& model, int64_t n);

// The implementation that ran a pass of the op on `backend`: the backend's recorded
// choice for that op, pass and shape (a GPU backend records one per shape: "native",
// "cudnn (reason)"), else its name for the op family ("openblas", "reference").
std::string implementation_of(const Backend& backend, const LayerOp& op, OpPass pass);

// What ran each layer that has an op family, at batch n: its forward, and its backward
// passes ("openblas"; on a GPU "native", or "native + cudnn (reason)" where they differ).
struct LayerImplementation {
  std::string layer, type, family, forward, backward;
};
std::vector<LayerImplementation> layer_implementations(const Model& model, const Backend& backend,
                                                       int64_t n);

}  // namespace cnn::perf
