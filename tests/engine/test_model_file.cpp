// Model files: the JSON description of a model (engine/graph/model_file.h). Every layer
// type with Keras's keys and defaults, branches by name, the round trip from a Model to
// its description and back, --model with a path, and errors that point to the layer.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "engine/core/error.h"
#include "engine/graph/layers.h"
#include "engine/graph/model_file.h"
#include "engine/graph/zoo.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

const Node& node(const Model& m, const std::string& name) {
  const int id = m.find(name);
  if (id < 0) throw std::runtime_error("no node " + name);
  return m.nodes()[static_cast<size_t>(id)];
}

int64_t params_of(const Model& m, const std::string& name) { return node(m, name).param_count(); }

// The message of the ConfigError that building `text` raises ("" when it builds).
std::string error_of(const std::string& text, const std::string& origin = "model.json") {
  try {
    model_from_json_text(text, origin);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// A one-layer description on a 1x8x8 input.
std::string one_layer(const std::string& layer) {
  return R"({"input": [1, 8, 8], "layers": [)" + layer + "]}";
}

TEST(ModelFile, EveryLayerTypeWithKerasDefaults) {
  const Model m = model_from_json_text(R"({
    "name": "all-types",
    "input": [3, 16, 16],
    "layers": [
      {"type": "Conv2D", "name": "c", "filters": 4, "kernel_size": 3},
      {"type": "BatchNormalization", "name": "bn"},
      {"type": "Activation", "name": "act", "activation": "relu"},
      {"type": "SpatialDropout2D", "name": "sd", "rate": 0.1},
      {"type": "MaxPooling2D", "name": "mp"},
      {"type": "Conv2D", "name": "c2", "filters": 4, "kernel_size": 1, "inputs": ["mp"]},
      {"type": "Add", "name": "sum", "inputs": ["mp", "c2"]},
      {"type": "Concatenate", "name": "cat", "inputs": ["sum", "mp"]},
      {"type": "AveragePooling2D", "name": "ap"},
      {"type": "Flatten", "name": "f"},
      {"type": "Dropout", "name": "d", "rate": 0.5},
      {"type": "Dense", "name": "out", "units": 10, "activation": "softmax"}
    ]
  })",
                                       "all.json");
  EXPECT_EQ(m.name(), "all-types");
  EXPECT_EQ(node(m, "c").shape, (Shape{4, 14, 14}));  // "valid", stride 1
  EXPECT_EQ(params_of(m, "c"), 4 * 27 + 4);           // use_bias true
  EXPECT_EQ(node(m, "bn").params.size(), 4u);
  EXPECT_EQ(node(m, "mp").shape, (Shape{4, 7, 7}));  // pool_size 2, strides = pool_size
  EXPECT_EQ(node(m, "cat").shape, (Shape{8, 7, 7}));
  EXPECT_EQ(node(m, "ap").shape, (Shape{8, 3, 3}));  // "valid" drops the last row: 7 -> 3
  EXPECT_EQ(node(m, "out").shape, (Shape{10}));
  EXPECT_TRUE(m.softmax_folded());
  // Keras's defaults, as each layer reports its configuration.
  const auto c = node(m, "c").layer->config();
  EXPECT_EQ(c["strides"], 1);
  EXPECT_EQ(c["padding"], "valid");
  EXPECT_EQ(c["dilation_rate"], 1);
  EXPECT_EQ(c["activation"], "linear");
  EXPECT_EQ(c["use_bias"], true);
  const auto bn = node(m, "bn").layer->config();
  EXPECT_EQ(bn["momentum"], 0.99);
  EXPECT_EQ(bn["epsilon"], 0.001);
  EXPECT_EQ(node(m, "mp").layer->config()["pool_size"], 2);
  EXPECT_TRUE(node(m, "mp").layer->config()["strides"].is_null());
  EXPECT_EQ(node(m, "out").layer->config()["activation"], "softmax");  // though folded
}

TEST(ModelFile, NonSquareKernelsStridesDilationAndExplicitPadding) {
  const Model m = model_from_json_text(R"({"input": [2, 20, 30], "layers": [
      {"type": "Conv2D", "name": "a", "filters": 3, "kernel_size": [3, 5], "strides": [1, 2],
       "padding": "same", "use_bias": false},
      {"type": "Conv2D", "name": "b", "filters": 2, "kernel_size": 3, "dilation_rate": [2, 1]},
      {"type": "Conv2D", "name": "c", "filters": 2, "kernel_size": 1,
       "padding": [[1, 2], [0, 3]]},
      {"type": "MaxPooling2D", "name": "p", "pool_size": [2, 3], "strides": [1, 3],
       "padding": "same"}
    ]})",
                                       "shapes.json");
  EXPECT_EQ(node(m, "a").shape, (Shape{3, 20, 15}));  // same: ceil(20/1), ceil(30/2)
  EXPECT_EQ(params_of(m, "a"), 3 * 2 * 15);           // no bias
  EXPECT_EQ(node(m, "b").shape, (Shape{2, 16, 13}));  // dilated 5x3 window, valid
  EXPECT_EQ(node(m, "c").shape, (Shape{2, 19, 16}));  // 16 + 1 + 2, 13 + 0 + 3
  EXPECT_EQ(node(m, "p").shape, (Shape{2, 19, 6}));   // same: ceil(19/1), ceil(16/3)
  EXPECT_EQ(m.name(), "shapes");                      // the file's stem
  // The round trip keeps every one of them.
  const std::string text = model_to_json(m);
  EXPECT_NE(text.find(R"("kernel_size": [3, 5], "strides": [1, 2])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("dilation_rate": [2, 1])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("padding": [[1, 2], [0, 3]])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("pool_size": [2, 3], "strides": [1, 3])"), std::string::npos) << text;
  EXPECT_EQ(model_to_json(model_from_json_text(text, "again")), text);
}

TEST(ModelFile, InputsDefaultToThePreviousLayerAndNameBranches) {
  const Model m = model_from_json_text(R"({"input": {"shape": [1, 8, 8], "name": "img"},
    "layers": [
      {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "same"},
      {"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "same", "inputs": "img"},
      {"type": "Conv2D", "filters": 2, "kernel_size": 1, "inputs": ["input"]},
      {"type": "Add", "inputs": ["conv2d", "conv2d_1", "conv2d_2"]},
      {"type": "Flatten"},
      {"type": "Dense", "units": 3},
      {"type": "Dense", "units": 4, "inputs": ["flatten"]}
    ],
    "output": "dense"})",
                                       "");
  EXPECT_EQ(m.name(), "model");
  EXPECT_EQ(m.nodes()[0].name, "img");
  EXPECT_EQ(node(m, "conv2d").inputs, (std::vector<int>{0}));  // the first layer: the input
  EXPECT_EQ(node(m, "conv2d_1").inputs, (std::vector<int>{0}));
  EXPECT_EQ(node(m, "conv2d_2").inputs, (std::vector<int>{0}));  // "input": the model input
  EXPECT_EQ(node(m, "add").inputs, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(node(m, "flatten").inputs, (std::vector<int>{4}));
  EXPECT_EQ(m.output_node().name, "dense");
  EXPECT_EQ(m.output_node().shape, (Shape{3}));
  // Written back: the input's name, the branches' inputs, the output.
  const auto j = model_to_json_value(m);
  EXPECT_EQ(j["input"]["name"], "img");
  EXPECT_EQ(j["layers"][1]["inputs"], nlohmann::ordered_json::array({"img"}));
  EXPECT_FALSE(j["layers"][0].contains("inputs"));
  EXPECT_EQ(j["output"], "dense");
  EXPECT_EQ(model_to_json(model_from_json(nlohmann::json(j), "again")), model_to_json(m));
}

TEST(ModelFile, EveryZooModelSurvivesTheRoundTrip) {
  for (const ZooEntry& e : model_zoo()) {
    SCOPED_TRACE(e.name);
    const Model m = build_model(e.name);
    const std::string text = model_to_json(m);
    const Model back = model_from_json_text(text, "x.json");
    EXPECT_EQ(model_to_json(back), text);
    EXPECT_EQ(summary(back), summary(m));
    ASSERT_EQ(back.nodes().size(), m.nodes().size());
    for (size_t i = 0; i < m.nodes().size(); ++i) {
      EXPECT_EQ(back.nodes()[i].shape, m.nodes()[i].shape);
      EXPECT_EQ(back.nodes()[i].inputs, m.nodes()[i].inputs);
    }
    // Valid JSON with one layer per line.
    EXPECT_NO_THROW(nlohmann::json::parse(text));
    const size_t layers = m.nodes().size() - 1;
    EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), layers + 6);
  }
}

TEST(ModelFile, KeysAtTheirDefaultsAreLeftOut) {
  Model m("defaults");
  m.input(Shape{1, 8, 8});
  m.add(layers::conv2d(4, 3, "valid", Activation::Relu));
  m.add(layers::max_pool2d(2, "valid", 2));  // strides given, equal to the pool size
  m.add(layers::batch_norm(0.9f, 1e-5f));
  m.add(layers::flatten());
  m.add(layers::dense(3));
  m.finish();
  const auto j = model_to_json_value(m);
  EXPECT_EQ(j["input"], nlohmann::ordered_json::array({1, 8, 8}));
  EXPECT_EQ(j["layers"][0].dump(),
            R"({"type":"Conv2D","name":"conv2d","filters":4,"kernel_size":3,"activation":"relu"})");
  EXPECT_EQ(j["layers"][1].dump(), R"({"type":"MaxPooling2D","name":"max_pooling2d"})");
  // Floats go out as their shortest decimals and read back to the same floats.
  EXPECT_EQ(
      j["layers"][2].dump(),
      R"({"type":"BatchNormalization","name":"batch_normalization","momentum":0.9,"epsilon":1e-05})");
  EXPECT_EQ(j["layers"][4].dump(), R"({"type":"Dense","name":"dense","units":3})");
  EXPECT_FALSE(j.contains("output"));
  const Model back = model_from_json(nlohmann::json(j), "");
  EXPECT_EQ(node(back, "batch_normalization").layer->config()["momentum"], 0.9);
  EXPECT_EQ(node(back, "batch_normalization").layer->config()["epsilon"], 1e-5);
}

TEST(ModelFile, TrainableFalseFreezesTheLayerAndIsWrittenBack) {
  const Model m = model_from_json_text(one_layer(R"(
      {"type": "Conv2D", "name": "c", "filters": 2, "kernel_size": 3, "trainable": false},
      {"type": "BatchNormalization", "name": "bn", "trainable": false},
      {"type": "Flatten"},
      {"type": "Dense", "name": "d", "units": 2})"),
                                       "");
  EXPECT_FALSE(node(m, "c").layer->trainable());
  for (const ParamSpec& p : node(m, "c").params) EXPECT_FALSE(p.trainable);
  for (const ParamSpec& p : node(m, "bn").params) EXPECT_FALSE(p.trainable);
  for (const ParamSpec& p : node(m, "d").params) EXPECT_TRUE(p.trainable);
  // conv 2*9+2 and batch norm 4*2 frozen; dense 2*72+2 trainable.
  EXPECT_EQ(m.count_params(false), 20 + 8);
  EXPECT_EQ(m.count_params(true), 146);
  const std::string text = model_to_json(m);
  EXPECT_NE(text.find(R"("name": "c", "filters": 2, "kernel_size": 3, "trainable": false)"),
            std::string::npos)
      << text;
  EXPECT_EQ(model_from_json_text(text, "").count_params(false), 28);
}

TEST(ModelFile, BuildModelTakesAPathAndModelFilesAreRecognised) {
  const test::ScratchDir scratch("cnn_model_file");
  const fs::path& dir = scratch.path();
  const fs::path file = dir / "tiny.json";
  std::ofstream(file) << one_layer(R"({"type": "Flatten"}, {"type": "Dense", "units": 10})");
  const Model m = build_model(file.string());
  EXPECT_EQ(m.name(), "tiny");
  EXPECT_EQ(m.count_params(), 64 * 10 + 10);
  try {
    build_model((dir / "missing.json").string());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos) << e.what();
  }
  // A broken file names itself and the line.
  std::ofstream(dir / "broken.json") << "{\n  \"input\": [1, 8, 8],\n  \"layers\": [\n}\n";
  try {
    build_model((dir / "broken.json").string());
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("broken.json: not valid JSON"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
  }

  EXPECT_TRUE(is_model_file("x.json", false));
  EXPECT_TRUE(is_model_file("models/lenet5", false));
  EXPECT_FALSE(is_model_file("lenet5", true));
  EXPECT_FALSE(is_model_file("no-such-model", false));
  // A zoo name wins over a file of that name in the working directory.
  EXPECT_FALSE(is_model_file(".", true));
}

// ---------------------------------------------------------------------------------------
// Errors: each names the origin and the layer (1-based, with its name and type).

TEST(ModelFileErrors, UnknownKeyWithASuggestion) {
  EXPECT_EQ(error_of(R"({"input": [1, 28, 28], "layers": [
      {"type": "Conv2D", "filters": 4, "kernel_size": 3},
      {"type": "MaxPooling2D"},
      {"type": "Conv2D", "filter": 8, "kernel_size": 3}]})"),
            "model.json: layer 3 ('conv2d_1', Conv2D): unknown key 'filter' (did you mean "
            "'filters'?)");
  EXPECT_EQ(error_of(one_layer(R"({"type": "Dense", "name": "d", "unit": 3})")),
            "model.json: layer 1 ('d', Dense): unknown key 'unit' (did you mean 'units'?)");
  // Nothing close: no suggestion.
  EXPECT_EQ(error_of(one_layer(R"({"type": "Flatten", "zzzzzzzz": 1})")),
            "model.json: layer 1 ('flatten', Flatten): unknown key 'zzzzzzzz'");
  EXPECT_EQ(error_of(R"({"input": [1], "layer": []})"),
            "model.json: unknown key 'layer' (did you mean 'layers'?)");
}

TEST(ModelFileErrors, UnknownLayerType) {
  const std::string msg = error_of(one_layer(R"({"type": "Conv2d", "filters": 3})"));
  EXPECT_EQ(msg.rfind("model.json: layer 1: unknown layer type 'Conv2d' (did you mean 'Conv2D'?); "
                      "the types are Conv2D, MaxPooling2D",
                      0),
            0u)
      << msg;
  EXPECT_NE(error_of(one_layer(R"({"filters": 3})")).find("missing required key 'type'"),
            std::string::npos);
  EXPECT_NE(error_of(one_layer(R"({"type": 3})")).find("'type' must be a string, got 3"),
            std::string::npos);
}

TEST(ModelFileErrors, WrongTypesAndValues) {
  const auto err = [](const std::string& layer) { return error_of(one_layer(layer)); };
  EXPECT_EQ(err(R"({"type": "Conv2D", "name": "c", "filters": "32", "kernel_size": 3})"),
            "model.json: layer 1 ('c', Conv2D): 'filters' must be an integer in [1, 1048576], "
            "got \"32\"");
  EXPECT_NE(err(R"({"type": "Conv2D", "filters": 2.5, "kernel_size": 3})").find("'filters'"),
            std::string::npos);
  EXPECT_NE(err(R"({"type": "Conv2D", "filters": 0, "kernel_size": 3})").find("got 0"),
            std::string::npos);
  EXPECT_NE(err(R"({"type": "Conv2D", "filters": 2, "kernel_size": [3, 3, 3]})")
                .find("'kernel_size' must be an integer in [1, 4096] or a pair"),
            std::string::npos);
  EXPECT_NE(err(R"({"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "full"})")
                .find("'padding' must be \"valid\", \"same\""),
            std::string::npos);
  EXPECT_NE(err(R"({"type": "Conv2D", "filters": 2, "kernel_size": 3, "use_bias": 1})")
                .find("'use_bias' must be true or false, got 1"),
            std::string::npos);
  const std::string act = err(R"({"type": "Dense", "units": 2, "activation": "gelu"})");
  EXPECT_NE(act.find("layer 1 ('dense', Dense): 'activation': "), std::string::npos) << act;
  EXPECT_NE(act.find("relu"), std::string::npos) << act;  // lists the accepted names
  EXPECT_NE(err(R"({"type": "Dropout", "rate": "half"})").find("'rate' must be a number"),
            std::string::npos);
  EXPECT_NE(err(R"({"type": "Dense", "units": 2, "trainable": "no"})")
                .find("'trainable' must be true or false"),
            std::string::npos);
  EXPECT_NE(
      err(R"({"type": "Flatten", "name": "f"}, {"type": "Flatten", "name": "g", "inputs": "input"},
                  {"type": "Concatenate", "axis": 1, "inputs": ["f", "g"]})")
          .find("'axis' must be -1"),
      std::string::npos);
  EXPECT_NE(err(R"({"type": "Flatten", "name": "a/b"})").find("must not contain '/'"),
            std::string::npos);
  EXPECT_NE(err(R"({"type": "Flatten", "name": ""})").find("'name' must have 1 to"),
            std::string::npos);
  EXPECT_NE(err(R"([1])").find("layer 1: a layer is a JSON object, not an array"),
            std::string::npos);
}

TEST(ModelFileErrors, MissingRequiredKeys) {
  EXPECT_EQ(error_of(one_layer(R"({"type": "Conv2D", "kernel_size": 3})")),
            "model.json: layer 1 ('conv2d', Conv2D): missing required key 'filters'");
  EXPECT_EQ(error_of(one_layer(R"({"type": "Dense"})")),
            "model.json: layer 1 ('dense', Dense): missing required key 'units'");
  EXPECT_NE(error_of(one_layer(R"({"type": "Dropout"})")).find("missing required key 'rate'"),
            std::string::npos);
  EXPECT_NE(error_of(one_layer(R"({"type": "Activation"})")).find("'activation'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"layers": [{"type": "Flatten"}]})").find("missing required key 'input'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [1, 8, 8]})").find("missing required key 'layers'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [1, 8, 8], "layers": []})").find("'layers' must be a non-empty"),
            std::string::npos);
}

TEST(ModelFileErrors, UnknownInputsForwardReferencesAndCycles) {
  EXPECT_EQ(error_of(one_layer(R"({"type": "Conv2D", "name": "conv", "filters": 2,
                                   "kernel_size": 3},
                                  {"type": "Flatten", "inputs": ["cnov"]})")),
            "model.json: layer 2 ('flatten', Flatten): unknown input 'cnov' (did you mean "
            "'conv'?)");
  EXPECT_EQ(error_of(one_layer(R"({"type": "Flatten", "inputs": ["d"]},
                                  {"type": "Dense", "name": "d", "units": 2})")),
            "model.json: layer 1 ('flatten', Flatten): input 'd' is layer 2, listed later: list "
            "every layer after its inputs (a graph with a cycle cannot be listed so)");
  EXPECT_EQ(error_of(one_layer(R"({"type": "Flatten", "name": "f", "inputs": ["f"]})")),
            "model.json: layer 1 ('f', Flatten): the layer takes its own output as input (a "
            "cycle)");
  // a -> b -> a: the first edge is already a reference to a later layer.
  EXPECT_NE(error_of(one_layer(R"({"type": "Add", "name": "a", "inputs": ["input", "b"]},
                                  {"type": "Add", "name": "b", "inputs": ["input", "a"]})"))
                .find("input 'b' is layer 2, listed later"),
            std::string::npos);
  EXPECT_NE(error_of(one_layer(R"({"type": "Add", "inputs": ["input"]})"))
                .find("takes two or more inputs"),
            std::string::npos);
  EXPECT_NE(error_of(one_layer(R"({"type": "Flatten", "inputs": ["input", "input"]})"))
                .find("input 'input' is listed twice"),
            std::string::npos);
  EXPECT_NE(error_of(one_layer(R"({"type": "Flatten", "name": "f"},
                                  {"type": "Flatten", "name": "f"})"))
                .find("layer 2 ('f', Flatten): the name 'f' is already taken by layer 1"),
            std::string::npos);
  EXPECT_EQ(error_of(R"({"input": [4], "layers": [{"type": "Flatten"}], "output": "flaten"})"),
            "model.json: 'output' names no layer: 'flaten' (did you mean 'flatten'?)");
}

TEST(ModelFileErrors, ShapeErrorsOfTheGraphCarryTheLayer) {
  EXPECT_EQ(error_of(R"({"input": [1, 5, 5], "layers": [
      {"type": "Flatten"},
      {"type": "Conv2D", "name": "big", "filters": 8, "kernel_size": 7}]})")
                .rfind("model.json: layer 2 ('big', Conv2D): Conv2D expects an input of rank 3", 0),
            0u);
  const std::string msg = error_of(R"({"input": [1, 5, 5], "layers": [
      {"type": "Conv2D", "name": "big", "filters": 8, "kernel_size": 7}]})");
  EXPECT_EQ(msg.rfind("model.json: layer 1 ('big', Conv2D): ", 0), 0u) << msg;
  EXPECT_EQ(msg.find("layer 'big'"), std::string::npos) << "said twice: " << msg;
  EXPECT_NE(error_of(one_layer(R"({"type": "Dense", "units": 3})")).find("add a Flatten layer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [1, 8, 8], "layers": [
      {"type": "Conv2D", "name": "a", "filters": 2, "kernel_size": 3},
      {"type": "Add", "inputs": ["a", "input"]}]})")
                .find("layer 2 ('add', Add): Add needs inputs of one shape"),
            std::string::npos);
  EXPECT_NE(error_of(one_layer(R"({"type": "Dropout", "rate": 1})")).find("rate must be in [0, 1)"),
            std::string::npos);
}

// Sizes that would overflow int64 arithmetic are refused before any is computed.
TEST(ModelFileErrors, HugeModelsAreRefusedNotOverflowed) {
  const std::string conv = error_of(R"({"input": [1048576, 1, 1], "layers": [
      {"type": "Conv2D", "filters": 1048576, "kernel_size": 4096, "padding": "same"}]})");
  EXPECT_NE(conv.find("layer 1 ('conv2d', Conv2D): Conv2D would have 1.84e+19 weights"),
            std::string::npos)
      << conv;
  // Each Concatenate doubles the channels: 2^20 * 2^21 passes 2^40 elements.
  std::string layers = R"({"type": "Activation", "name": "a0", "activation": "relu"},
                          {"type": "Concatenate", "name": "c0", "inputs": ["input", "a0"]})";
  for (int i = 1; i <= 24; ++i)
    layers += fmt::format(R"(, {{"type": "Activation", "name": "a{0}", "activation": "relu"}},
        {{"type": "Concatenate", "name": "c{0}", "inputs": ["c{1}", "a{0}"]}})",
                          i, i - 1);
  const std::string cat = error_of(R"({"input": [1048576, 1, 1], "layers": [)" + layers + "]}");
  EXPECT_NE(cat.find("('c20', Concatenate): output shape (2199023255552, 1, 1) has more than 2^40"),
            std::string::npos)
      << cat;
}

TEST(ModelFileErrors, TheDocumentItself) {
  EXPECT_EQ(error_of("[]"),
            "model.json: a model description is a JSON object with \"input\" and \"layers\", "
            "not an array");
  EXPECT_NE(error_of("{").find("model.json: not valid JSON: parse error at line 1"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(100, '[') + std::string(100, ']')).find("nest deeper than 64"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [1, 0, 8], "layers": [{"type": "Flatten"}]})")
                .find("'input': the shape must be"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [1, 8, 8, 8], "layers": [{"type": "Flatten"}]})").find("'input'"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"input": [65536, 65536, 2], "layers": [{"type": "Flatten"}]})").find("elements"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"name": 3, "input": [1], "layers": [{"type": "Flatten"}]})")
                .find("'name' must be a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"input": [4], "layers": [{"type": "Dense", "units": 2}],
                         "output": "input_layer"})")
                .find("'output' must be a layer"),
            std::string::npos);
  // Without an origin the messages still say what they are about.
  EXPECT_EQ(error_of("[]", "").rfind("model description: ", 0), 0u);
}

}  // namespace
}  // namespace cnn
