// Transfer learning: frozen layers (Keras's trainable = False) and weights loaded by layer
// name from another model's file. A frozen layer's parameters move to the non-trainable
// buffer, get no gradient and no optimizer update (Adam's moments included), and a frozen
// batch norm runs in inference mode; the gradient still flows through frozen layers to
// the trainable ones before them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/graph/executor.h"
#include "engine/graph/layers.h"
#include "engine/graph/model_file.h"
#include "engine/graph/zoo.h"
#include "engine/io/weights_file.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;
using testing::quadrant_dataset;

std::vector<float> values_of(const Parameters& p, const std::string& name) {
  const auto& e = p.find(name);
  std::vector<float> v(static_cast<size_t>(e.value.numel()));
  p.read(e, v.data());
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// For the 1x8x8 quadrant task: a conv base (conv, batch norm) and a dense head.
Model quadrant_model(const std::string& name = "quadrants", int head_units = 4) {
  Model m(name);
  m.input(Shape{1, 8, 8});
  m.add(layers::conv2d(4, 3, "same", Activation::Relu), NodeRef{0}, "features");
  m.add(layers::batch_norm(), NodeRef{1}, "features_bn");
  m.add(layers::max_pool2d(2), NodeRef{2}, "pool");
  m.add(layers::flatten(), NodeRef{3}, "flatten");
  m.add(layers::dense(16, Activation::Relu), NodeRef{4}, "hidden");
  m.add(layers::dense(head_units, Activation::Softmax), NodeRef{5}, "head");
  m.finish();
  return m;
}

TEST(Freeze, FrozenLayersCountAsNonTrainableAsInKeras) {
  Model m = build_model("mnist-cnn");
  EXPECT_EQ(freeze_layers(m, {"conv2d*"}), (std::vector<std::string>{"conv2d", "conv2d_1"}));
  // conv 16@3x3 on 1: 160; conv 32@3x3 on 16: 4640.
  EXPECT_EQ(m.count_params(false), 160 + 4640);
  EXPECT_EQ(m.count_params(true), 30762 - 4800);
  const std::string s = summary(m);
  EXPECT_NE(s.find("Total params: 30,762"), std::string::npos) << s;
  EXPECT_NE(s.find("Trainable params: 25,962"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 4,800"), std::string::npos) << s;
  CpuBackend be;
  Parameters p(m, be);
  EXPECT_EQ(p.trainable_count(), 25962);
  EXPECT_FALSE(p.find("conv2d/kernel").trainable);
  EXPECT_FALSE(p.find("conv2d/kernel").grad.defined());
  EXPECT_TRUE(p.find("dense/kernel").grad.defined());

  // Unfreezing gives the parameters back, but batch norm's statistics stay non-trainable.
  Model q = quadrant_model();
  freeze_layers(q, {"features_bn", "head"});
  EXPECT_EQ(q.count_params(false), 16 + 16 * 4 + 4);
  q.set_trainable("features_bn", true);
  q.set_trainable("head", true);
  EXPECT_EQ(q.count_params(false), 8);  // moving mean and variance of 4 channels
  EXPECT_EQ(q.count_params(true), 40 + 8 + 64 * 16 + 16 + 68);
}

TEST(Freeze, UnknownNamesAndLateChangesAreRefused) {
  Model m = quadrant_model();
  try {
    freeze_layers(m, {"head", "feature"});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot freeze 'feature'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("features, features_bn, pool"), std::string::npos) << msg;
  }
  EXPECT_TRUE(m.nodes()[6].layer->trainable()) << "nothing frozen when a name fails";
  EXPECT_THROW(m.set_trainable("input_layer", false), ConfigError);
  EXPECT_EQ(freeze_layers(m, {"?ool", "*"}).size(), 6u);  // globs: '?' and '*'

  // Freezing after the parameters exist would desynchronise them: refused when bound.
  CpuBackend be;
  Model late = quadrant_model();
  Parameters p(late, be);
  late.set_trainable("hidden", false);
  EXPECT_THROW(Executor(late, p, be, 4), Error);
}

struct FrozenRun {
  Parameters::Snapshot before, after;
  std::vector<std::vector<float>> frozen_before, frozen_after, trained_before, trained_after;
  History history;
};

// Trains the quadrant model with `frozen` frozen and records the named tensors.
FrozenRun train_with_frozen(const std::vector<std::string>& frozen, const OptimizerConfig& opt,
                            const std::vector<std::string>& frozen_tensors,
                            const std::vector<std::string>& trained_tensors) {
  CpuBackend be;
  Model m = quadrant_model();
  freeze_layers(m, frozen);
  Trainer t(m, be, 5);
  FrozenRun r;
  for (const auto& n : frozen_tensors) r.frozen_before.push_back(values_of(t.parameters(), n));
  for (const auto& n : trained_tensors) r.trained_before.push_back(values_of(t.parameters(), n));
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.optimizer = opt;
  r.history = t.fit(quadrant_dataset(240, 2), o);
  for (const auto& n : frozen_tensors) r.frozen_after.push_back(values_of(t.parameters(), n));
  for (const auto& n : trained_tensors) r.trained_after.push_back(values_of(t.parameters(), n));
  return r;
}

TEST(Freeze, FrozenParametersStayBitIdenticalWithEveryOptimizer) {
  const std::vector<std::string> base{"features/kernel",         "features/bias",
                                      "features_bn/gamma",       "features_bn/beta",
                                      "features_bn/moving_mean", "features_bn/moving_variance"};
  const std::vector<std::string> head{"hidden/kernel", "hidden/bias", "head/kernel"};
  for (OptimizerKind kind : {OptimizerKind::Adam, OptimizerKind::Sgd, OptimizerKind::Rmsprop}) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig opt;
    opt.kind = kind;
    opt.momentum = kind == OptimizerKind::Sgd ? 0.9f : 0.0f;
    const FrozenRun r = train_with_frozen({"features", "features_bn"}, opt, base, head);
    for (size_t i = 0; i < base.size(); ++i)
      EXPECT_TRUE(same_bits(r.frozen_before[i], r.frozen_after[i])) << base[i];
    for (size_t i = 0; i < head.size(); ++i)
      EXPECT_FALSE(same_bits(r.trained_before[i], r.trained_after[i])) << head[i];
    EXPECT_LT(r.history.epochs.back().loss, r.history.epochs.front().loss);  // fine-tuning
  }
}

TEST(Freeze, TheGradientFlowsThroughAFrozenLayerToTheTrainableOnesBeforeIt) {
  OptimizerConfig adam;
  const FrozenRun r = train_with_frozen({"hidden", "features_bn"}, adam,
                                        {"hidden/kernel", "hidden/bias", "features_bn/moving_mean"},
                                        {"features/kernel", "features/bias", "head/kernel"});
  for (size_t i = 0; i < r.frozen_before.size(); ++i)
    EXPECT_TRUE(same_bits(r.frozen_before[i], r.frozen_after[i])) << i;
  for (size_t i = 0; i < r.trained_before.size(); ++i)
    EXPECT_FALSE(same_bits(r.trained_before[i], r.trained_after[i])) << i;
}

// The backward of frozen layers (a batch norm in inference mode with non-trivial running
// statistics, a conv that only passes the gradient on) against finite differences.
TEST(Freeze, GradientsThroughFrozenLayersMatchFiniteDifferences) {
  Model m("frozen-middle");
  NodeRef x = m.input(Shape{2, 6, 6});
  NodeRef a = m.add(layers::conv2d(3, 3, "same", Activation::Tanh), x, "a");
  NodeRef bn = m.add(layers::batch_norm(), a, "bn");
  NodeRef b = m.add(layers::conv2d(3, 3, "same", Activation::Sigmoid), bn, "b");
  NodeRef r = m.add(layers::add(), {bn, b}, "sum");
  NodeRef f = m.add(layers::flatten(), r, "f");
  NodeRef d = m.add(layers::dense(5, Activation::Softmax), f, "d");
  m.finish(d);
  freeze_layers(m, {"bn", "b"});

  CpuBackend be;
  Parameters params(m, be);
  params.initialize(7);
  const std::vector<float> mean{0.3f, -0.2f, 0.1f}, var{0.5f, 2.0f, 1.5f}, gamma{1.5f, 0.7f, -1.1f};
  params.write(params.find("bn/moving_mean"), mean.data());
  params.write(params.find("bn/moving_variance"), var.data());
  params.write(params.find("bn/gamma"), gamma.data());
  Executor exec(m, params, be, 3);
  EXPECT_FALSE(exec.has_gradient(0));
  EXPECT_TRUE(exec.has_gradient(m.find("bn")));  // "a" before it trains

  const int64_t n = 3;
  Tensor xs = Tensor::empty_host(Shape{n, 2, 6, 6});
  Tensor labels = Tensor::empty_host(Shape{n});
  Rng rng(11);
  for (int64_t i = 0; i < xs.numel(); ++i) xs.host()[i] = static_cast<float>(rng.uniform(-1, 1));
  for (int64_t i = 0; i < n; ++i) labels.host()[i] = static_cast<float>(i % 5);
  const auto loss = [&] {
    const Tensor logits = exec.forward(xs, true);
    be.metrics_reset();
    be.softmax_xent({n, 5}, logits.data(), labels.data(), true, 0.0f, nullptr);
    return be.metrics_read().mean_loss();
  };
  const Tensor logits = exec.forward(xs, true);
  Tensor dlogits = Tensor::empty_host(Shape{n, 5});
  be.softmax_xent({n, 5}, logits.data(), labels.data(), true, 1.0f / n, dlogits.data());
  std::fill_n(params.grads().host(), params.grads().numel(), std::nanf(""));
  exec.backward(dlogits);
  // The frozen batch norm ran in inference mode: its statistics did not move.
  EXPECT_TRUE(same_bits(values_of(params, "bn/moving_mean"), mean));

  // Only "a" and "d" have gradients, in one buffer: a/kernel, a/bias, d/kernel, d/bias.
  ASSERT_EQ(params.trainable_count(), 3 * 18 + 3 + 5 * 108 + 5);
  float* w = params.values().host();
  const float* g = params.grads().host();
  const double eps = 1e-3;
  const std::vector<int64_t> at = testing::flat_indices(params);
  double diff2 = 0, norm2 = 0;
  for (size_t k = 0; k < at.size(); k += (k < 60 ? 1 : 5)) {
    const int64_t i = at[k];
    ASSERT_TRUE(std::isfinite(g[i])) << "gradient " << i << " never assigned";
    const float saved = w[i];
    w[i] = static_cast<float>(saved + eps);
    const double up = loss();
    w[i] = static_cast<float>(saved - eps);
    const double down = loss();
    w[i] = saved;
    const double numeric = (up - down) / (2 * eps);
    EXPECT_NEAR(g[i], numeric, 2e-3 + 3e-2 * std::max(std::abs(double{g[i]}), std::abs(numeric)))
        << "parameter " << i;
    diff2 += (g[i] - numeric) * (g[i] - numeric);
    norm2 += numeric * numeric;
  }
  // Together, well inside what each element is allowed (float32's noise in the loss).
  ASSERT_GT(norm2, 1e-2);
  EXPECT_LT(std::sqrt(diff2 / norm2), 0.02);
}

TEST(Freeze, ANetworkFrozenUpToTheHeadSkipsTheBaseInBackward) {
  Model m = quadrant_model();
  freeze_layers(m, {"features", "features_bn", "hidden"});
  CpuBackend be;
  Parameters p(m, be);
  Executor exec(m, p, be, 2);
  for (const char* name : {"features", "features_bn", "pool", "flatten", "hidden"})
    EXPECT_FALSE(exec.has_gradient(m.find(name))) << name;
  EXPECT_TRUE(exec.has_gradient(m.find("head")));
}

TEST(Freeze, TrainableFalseInAModelFileFreezesToo) {
  const std::string text = R"({"input": [1, 8, 8], "layers": [
      {"type": "Conv2D", "name": "features", "filters": 4, "kernel_size": 3, "padding": "same",
       "activation": "relu", "trainable": false},
      {"type": "MaxPooling2D"}, {"type": "Flatten"},
      {"type": "Dense", "name": "head", "units": 4, "activation": "softmax"}]})";
  CpuBackend be;
  Model m = model_from_json_text(text, "frozen.json");
  Trainer t(m, be, 1);
  const auto before = values_of(t.parameters(), "features/kernel");
  const auto head = values_of(t.parameters(), "head/kernel");
  FitOptions o;
  o.batch_size = 16;
  t.fit(quadrant_dataset(64, 3), o);
  EXPECT_TRUE(same_bits(values_of(t.parameters(), "features/kernel"), before));
  EXPECT_FALSE(same_bits(values_of(t.parameters(), "head/kernel"), head));
}

class LoadByName : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  test::ScratchDir dir_{"cnn_transfer"};
  CpuBackend be_;
};

// Another model sharing the conv base ("features", "features_bn") with the donor, with
// a layer the donor lacks ("extra") and a head of another shape.
Model recipient() {
  Model m("recipient");
  m.input(Shape{1, 8, 8});
  m.add(layers::conv2d(4, 3, "same", Activation::Relu), NodeRef{0}, "features");
  m.add(layers::batch_norm(), NodeRef{1}, "features_bn");
  m.add(layers::flatten(), NodeRef{2}, "flatten");
  m.add(layers::dense(8, Activation::Relu), NodeRef{3}, "extra");
  m.add(layers::dense(3, Activation::Softmax), NodeRef{4}, "head");
  m.finish();
  return m;
}

TEST_F(LoadByName, LoadsTheSharedLayersAndRefusesAMismatchUnlessSkipped) {
  Model donor = quadrant_model("donor");
  Parameters pd(donor, be_);
  pd.initialize(1);
  for (int64_t i = 0; i < pd.state().numel(); ++i)
    pd.state().host()[i] = 0.25f * static_cast<float>(i + 1);
  save_weights(path("donor.safetensors"), donor, pd);

  Model m = recipient();
  Parameters p(m, be_);
  p.initialize(2);
  const Parameters::Snapshot fresh = p.snapshot();
  try {
    load_weights_by_name(path("donor.safetensors"), m, p);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("1 layer(s) differ"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head (Dense): 'kernel' has shape (4, 16) in the file, (3, 8) in the model"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("skip"), std::string::npos) << msg;
  }
  EXPECT_EQ(p.snapshot().values, fresh.values) << "a refused load writes nothing";
  EXPECT_EQ(p.snapshot().state, fresh.state);

  LoadByNameOptions skip;
  skip.skip_mismatch = true;
  const LoadReport r = load_weights_by_name(path("donor.safetensors"), m, p, skip);
  EXPECT_EQ(r.loaded, (std::vector<std::string>{"features", "features_bn"}));
  EXPECT_EQ(r.missing, (std::vector<std::string>{"extra"}));
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].rfind("head (Dense): ", 0), 0u) << r.mismatched[0];
  EXPECT_EQ(r.unused, (std::vector<std::string>{"hidden/bias", "hidden/kernel"}));
  for (const char* name : {"features/kernel", "features/bias", "features_bn/gamma",
                           "features_bn/moving_mean", "features_bn/moving_variance"})
    EXPECT_TRUE(same_bits(values_of(p, name), values_of(pd, name))) << name;
  // The skipped and missing layers keep their own initial values.
  Model fresh_model = recipient();
  Parameters initial(fresh_model, be_);
  initial.initialize(2);
  for (const char* name : {"head/kernel", "extra/kernel"})
    EXPECT_TRUE(same_bits(values_of(p, name), values_of(initial, name))) << name;
  const std::string text = r.str();
  EXPECT_NE(text.find("loaded 2 layer(s) by name: features, features_bn"), std::string::npos)
      << text;
  EXPECT_NE(text.find("not in the file, left as initialised: extra"), std::string::npos) << text;
  EXPECT_NE(text.find("skipped, does not match: head (Dense)"), std::string::npos) << text;
  EXPECT_NE(text.find("2 tensor(s) of the file unused: hidden/bias, hidden/kernel"),
            std::string::npos)
      << text;
}

TEST_F(LoadByName, ALayerInTheFileOnlyInPartIsAMismatch) {
  // The donor's conv has no bias; the recipient's has one.
  Model donor("donor");
  donor.input(Shape{1, 8, 8});
  Conv2dParams cp;
  cp.filters = 4;
  cp.padding = Padding::same();
  cp.use_bias = false;
  donor.add(layers::conv2d(cp, Activation::Relu), NodeRef{0}, "features");
  donor.finish();
  Parameters pd(donor, be_);
  save_weights(path("nobias.safetensors"), donor, pd);
  Model m = recipient();
  Parameters p(m, be_);
  LoadByNameOptions skip;
  skip.skip_mismatch = true;
  const LoadReport r = load_weights_by_name(path("nobias.safetensors"), m, p, skip);
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_NE(r.mismatched[0].find("'bias' is not in the file"), std::string::npos);
  EXPECT_TRUE(r.loaded.empty());
  // A prefix that nothing has: every layer is missing, nothing fails.
  LoadByNameOptions prefixed;
  prefixed.prefix = "model/";
  EXPECT_EQ(load_weights_by_name(path("nobias.safetensors"), m, p, prefixed).missing.size(), 4u);
  // A damaged file is refused as load_weights refuses it.
  std::ofstream(path("junk.safetensors")) << "not a weights file";
  EXPECT_THROW(load_weights_by_name(path("junk.safetensors"), m, p), DataError);
}

// A safetensors file from a header and data bytes.
void write_safetensors(const std::string& path, const std::string& header,
                       const std::string& data) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  std::ofstream(path, std::ios::binary) << bytes << header << data;
}

TEST_F(LoadByName, TensorFileChecksEveryEntry) {
  const auto error = [&](const std::string& header, const std::string& data) {
    write_safetensors(path("t"), header, data);
    try {
      TensorFile::read(path("t"));
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // Any dtype of the format is listed; its bytes must match the shape.
  write_safetensors(path("ok"),
                    R"({"a/kernel": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
                        "b/bias": {"dtype": "F32", "shape": [0, 3], "data_offsets": [16, 16]},
                        "__metadata__": {"model": "x"}})",
                    std::string(16, '\0'));
  const TensorFile ok = TensorFile::read(path("ok"));
  EXPECT_EQ(ok.tensors().size(), 2u);
  EXPECT_EQ(ok.tensors().at("a/kernel").dtype, "I64");
  EXPECT_EQ(ok.metadata()["model"], "x");
  EXPECT_THROW(ok.read_f32("a/kernel", nullptr), DataError);
  EXPECT_NE(error(R"({"a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}})", "x")
                .find("unknown dtype Q8"),
            std::string::npos);
  EXPECT_NE(error(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "xxxx")
                .find("negative dimension"),
            std::string::npos);
  // Dimensions whose product overflows int64 before a final zero.
  EXPECT_NE(error(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904,
                    0], "data_offsets": [0, 0]}})",
                  "")
                .find("too large"),
            std::string::npos);
  EXPECT_NE(error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", "xxxxxxxx")
                .find("data offsets"),
            std::string::npos);
  EXPECT_NE(error(R"({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 4]}})", "xxxx")
                .find("malformed"),
            std::string::npos);
}

// The whole fine-tuning flow: train a model, save it, load its base by name into a new
// model with another head, freeze the base, train: the base stays what was loaded, and
// the new head learns the task on top of it.
TEST_F(LoadByName, FineTuningANewHeadOnALoadedFrozenBase) {
  const Dataset data = quadrant_dataset(320, 4);
  {
    Model donor = quadrant_model("donor");
    Trainer t(donor, be_, 1);
    FitOptions o;
    o.epochs = 3;
    o.batch_size = 16;
    t.fit(data, o);
    save_weights(path("donor.safetensors"), donor, t.parameters());
  }
  Model m = quadrant_model("fine-tuned");
  m.set_trainable("features", false);
  m.set_trainable("features_bn", false);
  Trainer t(m, be_, 9);
  const LoadReport r = load_weights_by_name(path("donor.safetensors"), m, t.parameters());
  EXPECT_EQ(r.loaded.size(), 4u);
  const TensorFile file = TensorFile::read(path("donor.safetensors"));
  std::vector<float> saved(36);
  file.read_f32("features/kernel", saved.data());
  // Re-initialise the head so that it has to learn again.
  Parameters fresh(m, be_);
  fresh.initialize(9);
  for (const char* name : {"hidden/kernel", "head/kernel"})
    t.parameters().write(t.parameters().find(name), values_of(fresh, name).data());
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.validation_split = 0.25;
  const History h = t.fit(data, o);
  EXPECT_TRUE(same_bits(values_of(t.parameters(), "features/kernel"), saved));
  EXPECT_GT(*h.epochs.back().val_accuracy, 0.6);  // chance is 0.25
}

}  // namespace
}  // namespace cnn
