// Model building: shape inference, parameter counts, the summary, and the errors an
// impossible configuration must give.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/graph/layers.h"
#include "engine/graph/model.h"
#include "engine/graph/zoo.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

using testing::layer_params;

TEST(Zoo, SeedModelsHaveTheSeedsParameterCounts) {
  // The counts DESIGN.md gives for the seed models of the Keras lectures.
  const std::vector<std::pair<std::string, int64_t>> seeds{{"fashion-cnn", 1413834},
                                                           {"mnist-cnn", 30762},
                                                           {"mnist-functional", 104202},
                                                           {"mnist-nopool", 712202}};
  for (const auto& [name, params] : seeds) {
    const Model m = build_model(name);
    EXPECT_EQ(m.count_params(), params) << name;
    EXPECT_EQ(m.count_params(false), 0) << name;
  }
  for (const ZooEntry& e : model_zoo())
    EXPECT_EQ(build_model(e.name).count_params(), e.params) << e.name;
}

TEST(Zoo, FashionCnnPerLayerCountsAndShapes) {
  const Model m = build_model("fashion-cnn");
  const std::vector<int64_t> expected{3200, 0, 73856,  147584, 0,    295168, 590080,
                                      0,    0, 295040, 0,      8256, 0,      650};
  EXPECT_EQ(layer_params(m), expected);
  // "same" convolutions keep 28, 14, 7; "valid" pooling takes 7 to 3.
  EXPECT_EQ(m.nodes()[1].shape, (Shape{64, 28, 28}));
  EXPECT_EQ(m.nodes()[8].shape, (Shape{256, 3, 3}));
  EXPECT_EQ(m.nodes()[9].shape, (Shape{2304}));
  EXPECT_TRUE(m.softmax_folded());
}

TEST(Zoo, SmallModelsPerLayerCounts) {
  EXPECT_EQ(layer_params(build_model("mnist-cnn")),
            (std::vector<int64_t>{160, 0, 4640, 0, 0, 25632, 330}));
  EXPECT_EQ(layer_params(build_model("mnist-functional")),
            (std::vector<int64_t>{320, 0, 18496, 0, 73856, 0, 11530}));
  EXPECT_EQ(layer_params(build_model("mnist-nopool")),
            (std::vector<int64_t>{320, 18496, 73856, 0, 619530}));
}

TEST(Zoo, UnknownModelListsKnownOnes) {
  try {
    build_model("resnet-9000");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mnist-cnn"), std::string::npos) << e.what();
  }
}

TEST(Summary, PrintsTheKerasTable) {
  const std::string s = summary(build_model("mnist-cnn"));
  EXPECT_NE(s.find("Model: \"mnist-cnn\""), std::string::npos);
  EXPECT_NE(s.find("Layer (type)"), std::string::npos);
  EXPECT_NE(s.find("Output Shape"), std::string::npos);
  EXPECT_NE(s.find("Param #"), std::string::npos);
  EXPECT_NE(s.find("conv2d (Conv2D)"), std::string::npos);
  EXPECT_NE(s.find("conv2d_1 (Conv2D)"), std::string::npos);
  EXPECT_NE(s.find("(None, 26, 26, 16)"), std::string::npos);
  EXPECT_NE(s.find("25632"), std::string::npos);
  EXPECT_NE(s.find("Total params: 30,762"), std::string::npos);
  EXPECT_NE(s.find("Trainable params: 30,762"), std::string::npos);
  EXPECT_NE(s.find("Non-trainable params: 0"), std::string::npos);
  EXPECT_EQ(s.find("Connected to"), std::string::npos);  // a chain: Sequential's table
}

// A functional model with a residual Add and a channel Concatenate.
Model branchy() {
  Model m("branchy");
  NodeRef x = m.input(Shape{3, 8, 8});
  NodeRef a = m.add(layers::conv2d(4, 3, "same", Activation::Relu), x);
  NodeRef b = m.add(layers::conv2d(4, 3, "same"), a);
  NodeRef r = m.add(layers::add(), {a, b});
  NodeRef bn = m.add(layers::batch_norm(), r);
  NodeRef c = m.add(layers::conv2d(2, 1, "valid", Activation::Tanh), x);
  NodeRef cat = m.add(layers::concatenate(), {bn, c});
  NodeRef p = m.add(layers::avg_pool2d(2, "same"), cat);
  NodeRef f = m.add(layers::flatten(), p);
  NodeRef d = m.add(layers::dense(5, Activation::Softmax), f);
  m.finish(d);
  return m;
}

TEST(Functional, BranchesInferShapesAndCountBatchNormStateAsNonTrainable) {
  const Model m = branchy();
  EXPECT_EQ(m.nodes()[6].shape, (Shape{6, 8, 8}));  // 4 + 2 channels
  EXPECT_EQ(m.nodes()[7].shape, (Shape{6, 4, 4}));
  EXPECT_EQ(m.count_params(false), 8);  // moving mean and variance of 4 channels
  // conv 4*3*9+4, conv 4*4*9+4, bn 4+4, conv 2*3+2, dense 96*5+5
  EXPECT_EQ(m.count_params(true), 112 + 148 + 8 + 8 + 485);
  const std::string s = summary(m);
  EXPECT_NE(s.find("Connected to"), std::string::npos);
  EXPECT_NE(s.find("input_layer (InputLayer)"), std::string::npos);
  EXPECT_NE(s.find("conv2d, conv2d_1"), std::string::npos);
  EXPECT_NE(s.find("Non-trainable params: 8"), std::string::npos);
}

// Builds a one-layer model on `input` and returns the ConfigError message.
std::string build_error(const Shape& input, LayerPtr layer) {
  Model m("bad");
  m.input(input);
  try {
    m.add(std::move(layer));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ShapeErrors, KernelLargerThanInputUnderValidNamesLayerAndShapes) {
  const std::string msg = build_error(Shape{1, 5, 5}, layers::conv2d(8, 7, "valid"));
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("conv2d"), std::string::npos) << msg;
  EXPECT_NE(msg.find("5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("7"), std::string::npos) << msg;
}

TEST(ShapeErrors, SameHandlesTheKernelThatValidCannot) {
  Model m("ok");
  m.input(Shape{1, 5, 5});
  m.add(layers::conv2d(8, 7, "same"));
  EXPECT_EQ(m.nodes()[1].shape, (Shape{8, 5, 5}));
}

TEST(ShapeErrors, PoolingLargerThanInput) {
  EXPECT_FALSE(build_error(Shape{3, 2, 2}, layers::max_pool2d(3)).empty());
}

TEST(ShapeErrors, DenseOnImageAsksForFlatten) {
  const std::string msg = build_error(Shape{3, 4, 4}, layers::dense(10));
  EXPECT_NE(msg.find("Flatten"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dense"), std::string::npos) << msg;
}

TEST(ShapeErrors, BadRatesAndCounts) {
  EXPECT_FALSE(build_error(Shape{10}, layers::dropout(1.0f)).empty());
  EXPECT_FALSE(build_error(Shape{10}, layers::dense(0)).empty());
  EXPECT_FALSE(build_error(Shape{10}, layers::spatial_dropout2d(0.5f)).empty());
  EXPECT_FALSE(build_error(Shape{1, 8, 8}, layers::conv2d(0, 3)).empty());
  EXPECT_THROW(layers::conv2d(4, 3, "full"), ConfigError);
}

TEST(ShapeErrors, ConcatAndAddOfMismatchedShapes) {
  Model m("mismatch");
  NodeRef x = m.input(Shape{1, 8, 8});
  NodeRef a = m.add(layers::conv2d(4, 3, "same"), x);
  NodeRef b = m.add(layers::conv2d(4, 3, "valid"), x);
  try {
    m.add(layers::concatenate(), {a, b});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("concatenate"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(4, 8, 8)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(4, 6, 6)"), std::string::npos) << msg;
  }
  EXPECT_THROW(m.add(layers::add(), {a, b}), ConfigError);
  EXPECT_THROW(m.add(layers::add(), {a}), ConfigError);  // Add takes two or more
  EXPECT_THROW(m.add(layers::add(), {a, a}), ConfigError);
}

TEST(ModelBuilding, KerasAutomaticNamesAndDuplicates) {
  Model m("names");
  m.input(Shape{1, 8, 8});
  m.add(layers::conv2d(2, 3));
  m.add(layers::conv2d(2, 3));
  EXPECT_EQ(m.nodes()[1].name, "conv2d");
  EXPECT_EQ(m.nodes()[2].name, "conv2d_1");
  EXPECT_THROW(m.add(layers::flatten(), NodeRef{2}, "conv2d"), ConfigError);
}

}  // namespace
}  // namespace cnn
