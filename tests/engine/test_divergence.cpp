// A NaN or an infinity in the loss stops training with a message that names the first
// layer whose output is not finite, on the failing batch; checks every step (the CPU)
// and deferred checks with a replay (as on a GPU) find the same step and layer; the last
// good checkpoint stays.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/train/checkpointing.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"
#include "support/scratch_dir.h"

namespace cnn {
namespace {

namespace fs = std::filesystem;

struct Stop {
  bool thrown = false;
  int epoch = 0;
  int64_t step = 0;
  std::string layer, message;
};

Stop fit_until_stop(Trainer& t, const Dataset& d, const FitOptions& o) {
  Stop s;
  try {
    t.fit(d, o);
  } catch (const TrainingDiverged& e) {
    s = {true, e.epoch(), e.step(), e.layer(), e.what()};
  }
  return s;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

FitOptions unshuffled(int64_t check_steps) {
  FitOptions o;
  o.epochs = 2;
  o.batch_size = 8;
  o.shuffle = false;  // sample i is in step i / 8 + 1, at position i % 8
  o.finite_check_steps = check_steps;
  return o;
}

// A model whose first layer passes a NaN on (a fused ReLU would turn it into a zero).
Model linear_first_model() {
  Model m("linear-first");
  m.input(Shape{1, 8, 8});
  m.add(layers::conv2d(4, 3, "same", Activation::Linear));
  m.add(layers::flatten());
  m.add(layers::dense(4, Activation::Softmax));
  m.finish();
  return m;
}

// Sample 37 of the data holds a NaN: step 5 (1-based) fails at its first layer.
TEST(Divergence, ANaNInTheInputStopsAtItsBatchNamingTheFirstLayer) {
  Dataset d = testing::quadrant_dataset(96, 4);
  d.images.host()[37 * 64 + 10] = std::numeric_limits<float>::quiet_NaN();
  for (const int64_t check : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{1000}}) {
    SCOPED_TRACE("finite_check_steps " + std::to_string(check));
    CpuBackend be;
    Model m = linear_first_model();
    Trainer t(m, be, 2);
    const Stop s = fit_until_stop(t, d, unshuffled(check));
    ASSERT_TRUE(s.thrown);
    EXPECT_EQ(s.epoch, 1);
    EXPECT_EQ(s.step, 5);
    EXPECT_EQ(s.layer, "conv2d");
    EXPECT_TRUE(contains(s.message, "training diverged in epoch 1 at step 5 of 12")) << s.message;
    EXPECT_TRUE(contains(s.message, "the loss is nan")) << s.message;
    EXPECT_TRUE(contains(s.message,
                         "the first layer whose output is not finite is 'conv2d' "
                         "(Conv2D)"))
        << s.message;
    EXPECT_TRUE(contains(s.message,
                         "the input batch itself holds 1 non-finite values (the first "
                         "in sample 5 of the batch)"))
        << s.message;
    EXPECT_FALSE(contains(s.message, "parameter '")) << "the weights were still finite";
  }
}

// Weights that overflow a later layer: the first non-finite output is that layer's, not
// the first layer's.
TEST(Divergence, AnOverflowDeepInTheModelNamesThatLayer) {
  const Dataset d = testing::quadrant_dataset(64, 4);
  for (const int64_t check : {int64_t{1}, int64_t{1000}}) {
    SCOPED_TRACE("finite_check_steps " + std::to_string(check));
    CpuBackend be;
    Model m = testing::small_stochastic_model();
    Trainer t(m, be, 2);
    const Parameters::Entry& k = t.parameters().find("dense/kernel");
    std::vector<float> huge(static_cast<size_t>(k.value.numel()), 3e38f);
    t.parameters().write(k, huge.data());
    const Stop s = fit_until_stop(t, d, unshuffled(check));
    ASSERT_TRUE(s.thrown);
    EXPECT_EQ(s.epoch, 1);
    EXPECT_EQ(s.step, 1);
    EXPECT_EQ(s.layer, "dense") << s.message;
    EXPECT_TRUE(contains(s.message, "'dense' (Dense)")) << s.message;
    EXPECT_FALSE(contains(s.message, "input batch")) << s.message;
  }
}

TEST(Divergence, AHugeLearningRateStopsWithAClearMessage) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 2);
  FitOptions o;
  o.epochs = 5;
  o.batch_size = 8;
  o.optimizer.kind = OptimizerKind::Sgd;
  o.optimizer.learning_rate = 1e30f;
  const Stop s = fit_until_stop(t, testing::quadrant_dataset(96, 4), o);
  ASSERT_TRUE(s.thrown);
  EXPECT_TRUE(contains(s.message, "training diverged in epoch 1 at step ")) << s.message;
  EXPECT_TRUE(contains(s.message, "try a lower one")) << s.message;
  EXPECT_FALSE(s.layer.empty()) << s.message;
  EXPECT_TRUE(contains(s.message, "'" + s.layer + "'")) << s.message;
}

TEST(Divergence, ANaNInValidationDataIsFoundToo) {
  Dataset d = testing::quadrant_dataset(80, 4);
  d.images.host()[75 * 64] = std::numeric_limits<float>::quiet_NaN();  // in the last 25%
  CpuBackend be;
  Model m = linear_first_model();
  Trainer t(m, be, 2);
  FitOptions o = unshuffled(0);
  o.validation_split = 0.25;  // samples 60..79 validate
  const Stop s = fit_until_stop(t, d, o);
  ASSERT_TRUE(s.thrown);
  EXPECT_EQ(s.epoch, 1);
  EXPECT_EQ(s.layer, "conv2d");
  EXPECT_TRUE(contains(s.message, "the validation loss is nan (validation samples 8 to 15)"))
      << s.message;
}

// A NaN that the loss never sees (the fused ReLU of the first layer maps it to 0) is
// caught in the weights at the end of the epoch.
TEST(Divergence, NonFiniteWeightsBehindAReluAreCaughtAtTheEpochsEnd) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 2);
  const Parameters::Entry& k = t.parameters().find("conv2d/kernel");
  std::vector<float> nan(static_cast<size_t>(k.value.numel()),
                         std::numeric_limits<float>::quiet_NaN());
  t.parameters().write(k, nan.data());
  FitOptions o;
  o.batch_size = 16;
  const Stop s = fit_until_stop(t, testing::quadrant_dataset(64, 4), o);
  ASSERT_TRUE(s.thrown);
  EXPECT_EQ(s.epoch, 1);
  EXPECT_EQ(s.layer, "conv2d");
  EXPECT_TRUE(contains(s.message, "parameter 'conv2d/kernel' holds 36 non-finite values of 36"))
      << s.message;
}

// A state that turns bad after epoch 2: the checkpoint of epoch 2 stays and loads.
TEST(Divergence, TheLastGoodCheckpointIsKept) {
  const test::ScratchDir scratch("cnn_diverge");
  const fs::path dir = scratch.path() / "checkpoints";  // the Checkpointer makes it
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 2);
  FitOptions o;
  o.epochs = 4;
  o.batch_size = 16;
  RunInfo run;
  run.model = ModelDescription::of(m, false);
  run.options = fit_options_to_json(o);
  Checkpointer cp(dir.string(), m, t.parameters(), run, "loss");
  Parameters::Snapshot good;
  struct Spoil : FitCallback {
    Trainer* t;
    Parameters::Snapshot* good;
    void on_epoch_end(const EpochEnd& e) override {
      if (e.log.epoch != 2) return;
      *good = t->parameters().snapshot();
      const Parameters::Entry& k = t->parameters().find("dense_1/kernel");
      std::vector<float> nan(static_cast<size_t>(k.value.numel()),
                             std::numeric_limits<float>::quiet_NaN());
      t->parameters().write(k, nan.data());
    }
  } spoil;
  spoil.t = &t;
  spoil.good = &good;
  o.callbacks = {&cp, &spoil};
  const Stop s = fit_until_stop(t, testing::quadrant_dataset(64, 4), o);
  ASSERT_TRUE(s.thrown);
  EXPECT_EQ(s.epoch, 3);
  EXPECT_EQ(s.step, 1);
  EXPECT_EQ(s.layer, "dense_1");
  EXPECT_TRUE(contains(s.message, "parameter 'dense_1/kernel' already holds")) << s.message;
  EXPECT_EQ(cp.last_epoch(), 2);
  const Checkpoint c = Checkpoint::read(cp.last_path());
  EXPECT_EQ(c.epoch(), 2);
  const TrainState st = c.state(m, t.parameters());
  EXPECT_EQ(st.weights.values, good.values);
}

}  // namespace
}  // namespace cnn
