#include "engine/graph/zoo.h"

#include <fmt/format.h>

#include "engine/core/error.h"
#include "engine/graph/layers.h"
#include "engine/graph/model_file.h"

namespace cnn {
namespace {

using layers::avg_pool2d;
using layers::batch_norm;
using layers::conv2d;
using layers::dense;
using layers::dropout;
using layers::flatten;
using layers::max_pool2d;
constexpr Activation kLinear = Activation::Linear;
constexpr Activation kRelu = Activation::Relu;
constexpr Activation kTanh = Activation::Tanh;
constexpr Activation kSoftmax = Activation::Softmax;

// Fashion-MNIST CNN: three conv blocks (64@7x7, 2x128@3x3, 2x256@3x3, "same"), each
// followed by 2x2 max pooling, then Dense 128 / 64 with dropout 0.5, softmax over 10.
Model fashion_cnn() {
  Model m("fashion-cnn");
  m.input(Shape{1, 28, 28});
  m.add(conv2d(64, 7, "same", kRelu));
  m.add(max_pool2d(2));
  m.add(conv2d(128, 3, "same", kRelu));
  m.add(conv2d(128, 3, "same", kRelu));
  m.add(max_pool2d(2));
  m.add(conv2d(256, 3, "same", kRelu));
  m.add(conv2d(256, 3, "same", kRelu));
  m.add(max_pool2d(2));
  m.add(flatten());
  m.add(dense(128, kRelu));
  m.add(dropout(0.5f));
  m.add(dense(64, kRelu));
  m.add(dropout(0.5f));
  m.add(dense(10, kSoftmax));
  m.finish();
  return m;
}

// The small MNIST CNN: 98.9% on MNIST with Adam, batch 128, 10 epochs in the seeds.
Model mnist_cnn() {
  Model m("mnist-cnn");
  m.input(Shape{1, 28, 28});
  m.add(conv2d(16, 3, "valid", kRelu));
  m.add(max_pool2d(2));
  m.add(conv2d(32, 3, "valid", kRelu));
  m.add(max_pool2d(2));
  m.add(flatten());
  m.add(dense(32, kRelu));
  m.add(dense(10, kSoftmax));
  m.finish();
  return m;
}

// The functional-API MNIST CNN of the seeds, written with explicit node references.
Model mnist_functional() {
  Model m("mnist-functional");
  NodeRef x = m.input(Shape{1, 28, 28});
  x = m.add(conv2d(32, 3, "valid", kRelu), x);
  x = m.add(max_pool2d(2), x);
  x = m.add(conv2d(64, 3, "valid", kRelu), x);
  x = m.add(max_pool2d(2), x);
  x = m.add(conv2d(128, 3, "valid", kRelu), x);
  x = m.add(flatten(), x);
  x = m.add(dense(10, kSoftmax), x);
  m.finish(x);
  return m;
}

// The same without pooling: the flattened 22x22x128 map makes the Dense layer large.
Model mnist_nopool() {
  Model m("mnist-nopool");
  NodeRef x = m.input(Shape{1, 28, 28});
  x = m.add(conv2d(32, 3, "valid", kRelu), x);
  x = m.add(conv2d(64, 3, "valid", kRelu), x);
  x = m.add(conv2d(128, 3, "valid", kRelu), x);
  x = m.add(flatten(), x);
  x = m.add(dense(10, kSoftmax), x);
  m.finish(x);
  return m;
}

// LeNet-5 as Keras tutorials adapt it to 28x28 inputs: "same" padding on the first
// convolution stands in for the original 32x32 input, tanh activations, average pooling
// for the subsampling layers (without their trainable coefficients), C3 connected to all
// six maps (not LeCun's sparse table), and a softmax output in place of the RBF units.
Model lenet5() {
  Model m("lenet5");
  m.input(Shape{1, 28, 28});
  m.add(conv2d(6, 5, "same", kTanh));    // 28x28x6
  m.add(avg_pool2d(2));                  // 14x14x6
  m.add(conv2d(16, 5, "valid", kTanh));  // 10x10x16
  m.add(avg_pool2d(2));                  // 5x5x16
  m.add(flatten());                      // 400
  m.add(dense(120, kTanh));
  m.add(dense(84, kTanh));
  m.add(dense(10, kSoftmax));
  m.finish();
  return m;
}

// A VGG-style stack: two blocks of two 3x3 "same" convolutions (32, then 64 filters), each
// followed by batch normalization, closed by 2x2 max pooling and dropout 0.25; then
// Dense 128 with batch normalization and dropout 0.5.
Model vgg_small() {
  Model m("vgg-small");
  m.input(Shape{1, 28, 28});
  for (int filters : {32, 64}) {
    for (int i = 0; i < 2; ++i) {
      m.add(conv2d(filters, 3, "same", kRelu));
      m.add(batch_norm());
    }
    m.add(max_pool2d(2));  // 14x14, then 7x7
    m.add(dropout(0.25f));
  }
  m.add(flatten());
  m.add(dense(128, kRelu));
  m.add(batch_norm());
  m.add(dropout(0.5f));
  m.add(dense(10, kSoftmax));
  m.finish();
  return m;
}

LayerPtr conv(int filters, int kernel, int stride, const std::string& padding,
              Activation act = kLinear, bool bias = true) {
  Conv2dParams p;
  p.filters = filters;
  p.kernel_h = p.kernel_w = kernel;
  p.stride_h = p.stride_w = stride;
  p.padding = layers::parse_padding(padding);
  p.use_bias = bias;
  return conv2d(p, act);
}

// A basic residual block (He et al.): conv-BN-ReLU-conv-BN plus the shortcut, then ReLU.
// The convolutions have no bias (batch norm's beta plays its part). When the shape
// changes, the shortcut is a 1x1 convolution of the same stride with batch norm.
NodeRef residual_block(Model& m, NodeRef x, int filters, int stride, const std::string& name) {
  // A copy, taken before add() grows the node list.
  const int64_t in_channels = m.nodes()[static_cast<size_t>(x.id)].shape[0];
  NodeRef y = m.add(conv(filters, 3, stride, "same", kLinear, false), x, name + "_conv1");
  y = m.add(batch_norm(), y, name + "_bn1");
  y = m.add(layers::activation(kRelu), y, name + "_relu1");
  y = m.add(conv(filters, 3, 1, "same", kLinear, false), y, name + "_conv2");
  y = m.add(batch_norm(), y, name + "_bn2");
  NodeRef shortcut = x;
  if (stride != 1 || in_channels != filters) {
    shortcut = m.add(conv(filters, 1, stride, "valid", kLinear, false), x, name + "_proj");
    shortcut = m.add(batch_norm(), shortcut, name + "_proj_bn");
  }
  y = m.add(layers::add(), {y, shortcut}, name + "_add");
  return m.add(layers::activation(kRelu), y, name + "_out");
}

// A small ResNet: a 16-filter stem, three residual blocks (16 filters at 28x28, 32 at
// 14x14, 64 at 7x7; the last two with projection shortcuts), global average pooling as
// a 7x7 AveragePooling2D, and the classifier.
Model resnet_small() {
  Model m("resnet-small");
  NodeRef x = m.input(Shape{1, 28, 28});
  x = m.add(conv(16, 3, 1, "same", kLinear, false), x, "stem_conv");
  x = m.add(batch_norm(), x, "stem_bn");
  x = m.add(layers::activation(kRelu), x, "stem_relu");
  x = residual_block(m, x, 16, 1, "block1");
  x = residual_block(m, x, 32, 2, "block2");
  x = residual_block(m, x, 64, 2, "block3");
  x = m.add(avg_pool2d(7), x, "global_pool");  // 7x7x64 -> 1x1x64
  x = m.add(flatten(), x, "flatten");
  x = m.add(dense(10, kSoftmax), x, "classifier");
  m.finish(x);
  return m;
}

// A small Inception-style network: a conv stem and pooling to 14x14, one Inception block
// (parallel 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pooling then 1x1, joined by
// Concatenate into 16 + 24 + 8 + 8 = 56 channels), pooling to 7x7, the classifier.
Model inception_small() {
  Model m("inception-small");
  NodeRef x = m.input(Shape{1, 28, 28});
  x = m.add(conv(32, 3, 1, "same", kRelu), x, "stem_conv");
  x = m.add(max_pool2d(2), x, "stem_pool");  // 14x14x32
  const NodeRef b1 = m.add(conv(16, 1, 1, "valid", kRelu), x, "mixed_1x1");
  NodeRef b2 = m.add(conv(16, 1, 1, "valid", kRelu), x, "mixed_3x3_reduce");
  b2 = m.add(conv(24, 3, 1, "same", kRelu), b2, "mixed_3x3");
  NodeRef b3 = m.add(conv(8, 1, 1, "valid", kRelu), x, "mixed_5x5_reduce");
  b3 = m.add(conv(8, 5, 1, "same", kRelu), b3, "mixed_5x5");
  NodeRef b4 = m.add(max_pool2d(3, "same", 1), x, "mixed_pool");
  b4 = m.add(conv(8, 1, 1, "valid", kRelu), b4, "mixed_pool_proj");
  x = m.add(layers::concatenate(), {b1, b2, b3, b4}, "mixed");  // 14x14x56
  x = m.add(max_pool2d(2), x, "pool");                          // 7x7x56
  x = m.add(flatten(), x, "flatten");
  x = m.add(dense(10, kSoftmax), x, "classifier");
  m.finish(x);
  return m;
}

struct Builder {
  ZooEntry entry;
  Model (*build)();
};

const std::vector<Builder>& builders() {
  static const std::vector<Builder> list = {
      {{"fashion-cnn", "Fashion-MNIST CNN: conv 64@7x7, 2x128@3x3, 2x256@3x3, dense 128/64",
        1413834},
       fashion_cnn},
      {{"mnist-cnn", "small MNIST CNN: conv 16@3x3, 32@3x3, dense 32", 30762}, mnist_cnn},
      {{"mnist-functional", "functional MNIST CNN: conv 32, 64, 128 @3x3 with pooling", 104202},
       mnist_functional},
      {{"mnist-nopool", "the functional MNIST CNN without pooling", 712202}, mnist_nopool},
      {{"lenet5",
        "LeNet-5 for 28x28: conv 6@5x5 same, avgpool, 16@5x5, avgpool, dense 120/84, tanh", 61706},
       lenet5},
      {{"vgg-small", "VGG-style: 2x conv 32, pool, 2x conv 64, pool, batch norm, dense 128",
        469098},
       vgg_small},
      {{"resnet-small", "small ResNet: stem 16, residual blocks 16/32/64, global average pool",
        78426},
       resnet_small},
      {{"inception-small", "small Inception: stem 32, one block of 1x1/3x3/5x5/pool branches",
        34442},
       inception_small},
  };
  return list;
}

}  // namespace

const std::vector<ZooEntry>& model_zoo() {
  static const std::vector<ZooEntry> entries = [] {
    std::vector<ZooEntry> e;
    for (const Builder& b : builders()) e.push_back(b.entry);
    return e;
  }();
  return entries;
}

Model build_model(const std::string& name) {
  std::string known;
  const Builder* found = nullptr;
  for (const Builder& b : builders()) {
    if (b.entry.name == name) found = &b;
    known += (known.empty() ? "" : ", ") + b.entry.name;
  }
  if (is_model_file(name, found != nullptr)) return load_model_file(name);
  if (found) return found->build();
  throw ConfigError(fmt::format(
      "unknown model '{}': known models are {}, or give a model file (a path ending in .json)",
      name, known));
}

}  // namespace cnn
