// fit / evaluate / predict on the CPU backend: learning happens, runs repeat bit for bit,
// early stopping and the validation split follow Keras.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/zoo.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

using testing::quadrant_dataset;
using testing::small_stochastic_model;

struct RunResult {
  History history;
  Parameters::Snapshot weights;
};

RunResult train_small(uint64_t seed, OptimizerConfig opt, int epochs = 2, int threads = 1) {
  CpuBackend be(false, threads);
  Model m = small_stochastic_model();
  Trainer t(m, be, seed);
  FitOptions o;
  o.epochs = epochs;
  o.batch_size = 16;
  o.validation_split = 0.25;
  o.optimizer = opt;
  RunResult r{t.fit(quadrant_dataset(400, 1), o), {}};
  r.weights = t.parameters().snapshot();
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Each parameter view starts at a multiple of Parameters::kAlignment floats in its flat
// buffer, and the gaps between views (the small model's 3x3 kernels leave some) stay zero,
// values and gradients, through training with every optimizer.
TEST(Training, ParameterViewsAreAlignedAndTheGapsStayZero) {
  for (OptimizerKind kind : {OptimizerKind::Adam, OptimizerKind::Sgd, OptimizerKind::Rmsprop}) {
    SCOPED_TRACE(static_cast<int>(kind));
    OptimizerConfig opt;
    opt.kind = kind;
    opt.momentum = 0.9f;
    CpuBackend be(false, 1);
    Model m = small_stochastic_model();
    Trainer t(m, be, 3);
    FitOptions o;
    o.epochs = 1;
    o.batch_size = 16;
    o.optimizer = opt;
    t.fit(quadrant_dataset(64, 1), o);
    const Parameters& p = t.parameters();
    int64_t trainable = 0, gaps = 0;
    for (const Parameters::Entry& e : p.entries()) {
      const Tensor& flat = e.trainable ? p.values() : p.state();
      EXPECT_EQ((e.value.data() - flat.data()) % Parameters::kAlignment, 0) << e.name;
      if (e.trainable) trainable += e.value.numel();
    }
    EXPECT_EQ(p.trainable_count(), trainable);
    for (const bool tr : {true, false}) {
      const Tensor& flat = tr ? p.values() : p.state();
      std::vector<bool> used(static_cast<size_t>(flat.numel()), false);
      for (const int64_t i : testing::flat_indices(p, tr)) used[static_cast<size_t>(i)] = true;
      for (int64_t i = 0; i < flat.numel(); ++i) {
        if (used[static_cast<size_t>(i)]) continue;
        ++gaps;
        EXPECT_EQ(flat.host()[i], 0.0f) << (tr ? "value" : "state") << " gap at " << i;
        if (tr) {
          EXPECT_EQ(p.grads().host()[i], 0.0f) << "gradient gap at " << i;
        }
      }
    }
    EXPECT_GT(gaps, 0);  // the model has entries whose sizes leave gaps
  }
}

TEST(Training, EveryOptimizerLearnsTheQuadrantTask) {
  for (OptimizerKind kind : {OptimizerKind::Adam, OptimizerKind::Sgd, OptimizerKind::Rmsprop}) {
    OptimizerConfig opt;
    opt.kind = kind;
    if (kind == OptimizerKind::Sgd) {
      opt.learning_rate = 0.05f;
      opt.momentum = 0.9f;
      opt.nesterov = true;
    }
    const RunResult r = train_small(3, opt, 4);
    const auto& h = r.history.epochs;
    ASSERT_EQ(h.size(), 4u);
    EXPECT_LT(h.back().loss, h.front().loss) << optimizer_name(kind);
    EXPECT_GT(*h.back().val_accuracy, 0.6) << optimizer_name(kind);  // chance is 0.25
  }
}

TEST(Training, SameSeedIsBitIdenticalDifferentSeedIsNot) {
  OptimizerConfig adam;
  const RunResult a = train_small(9, adam), b = train_small(9, adam), c = train_small(10, adam);
  ASSERT_EQ(a.history.epochs.size(), b.history.epochs.size());
  for (size_t i = 0; i < a.history.epochs.size(); ++i) {
    EXPECT_EQ(a.history.epochs[i].loss, b.history.epochs[i].loss);
    EXPECT_EQ(*a.history.epochs[i].val_loss, *b.history.epochs[i].val_loss);
  }
  EXPECT_TRUE(same_bits(a.weights.values, b.weights.values));
  EXPECT_TRUE(same_bits(a.weights.state, b.weights.state));  // batch-norm running stats
  EXPECT_FALSE(same_bits(a.weights.values, c.weights.values));
}

TEST(Training, AnyThreadCountGivesTheSameBits) {
  // The CPU backend splits convolutions between threads in a way that never changes a
  // sum's order (engine/core/parallel.h): a checkpoint from one machine resumes alike on
  // another with a different number of cores.
  OptimizerConfig adam;
  const RunResult one = train_small(9, adam, 2, 1);
  for (int threads : {2, 3, 7}) {
    const RunResult many = train_small(9, adam, 2, threads);
    ASSERT_EQ(many.history.epochs.size(), one.history.epochs.size());
    for (size_t i = 0; i < one.history.epochs.size(); ++i)
      EXPECT_EQ(many.history.epochs[i].loss, one.history.epochs[i].loss) << threads;
    EXPECT_TRUE(same_bits(many.weights.values, one.weights.values)) << threads;
    EXPECT_TRUE(same_bits(many.weights.state, one.weights.state)) << threads;
  }
}

TEST(Training, ValidationSplitTakesTheLastFractionAsKeras) {
  EXPECT_EQ(validation_split_index(60000, 0.2), 48000);
  EXPECT_EQ(validation_split_index(10, 0.25), 7);
  EXPECT_EQ(validation_split_index(7, 0.5), 3);
  EXPECT_EQ(validation_split_index(100, 0.0), 100);
}

TEST(Training, ValidationUsesOnlyTheHeldOutTail) {
  // Labels of the tail are flipped to a class the head never shows: validation accuracy
  // must then be ~0 while training accuracy rises, proving the split and no leakage.
  Dataset d = quadrant_dataset(400, 2);
  for (int64_t i = 300; i < 400; ++i) d.labels.host()[i] = 3.0f - d.labels.host()[i];
  for (int64_t i = 0; i < 300; ++i)
    if (d.labels.host()[i] == 3.0f) d.labels.host()[i] = 2.0f;
  CpuBackend be;
  Model m = small_stochastic_model();
  Trainer t(m, be, 1);
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.validation_split = 0.25;
  const History h = t.fit(d, o);
  EXPECT_GT(h.epochs.back().accuracy, 0.5);
  EXPECT_LT(*h.epochs.back().val_accuracy, 0.35);
}

TEST(EarlyStopper, FollowsKerasPatienceRules) {
  EarlyStopping cfg;
  cfg.enabled = true;
  cfg.monitor = "val_loss";
  cfg.patience = 2;
  EarlyStopper s(cfg);
  EXPECT_FALSE(s.update(1, 1.0));
  EXPECT_FALSE(s.update(2, 0.8));
  EXPECT_FALSE(s.update(3, 0.9));  // wait 1
  EXPECT_FALSE(s.update(4, 0.7));  // improves: wait 0
  EXPECT_FALSE(s.update(5, 0.7));  // equal is no improvement: wait 1
  EXPECT_TRUE(s.update(6, 0.75));  // wait 2: stop
  EXPECT_EQ(s.best_epoch(), 4);

  cfg.monitor = "val_accuracy";
  cfg.patience = 0;
  EarlyStopper acc(cfg);
  EXPECT_FALSE(acc.update(1, 0.5));
  EXPECT_FALSE(acc.update(2, 0.6));
  EXPECT_TRUE(acc.update(3, 0.6));  // patience 0: the first epoch without improvement stops

  cfg.monitor = "val_loss";
  cfg.patience = 1;
  cfg.min_delta = 0.1;
  EarlyStopper delta(cfg);
  EXPECT_FALSE(delta.update(1, 1.0));
  EXPECT_TRUE(delta.update(2, 0.95));  // better, but not by min_delta
  cfg.monitor = "val_f1";
  EXPECT_THROW(EarlyStopper{cfg}, ConfigError);
}

// Stopped early with epoch 1 the best: its weights restored, or with
// restore_best_weights = false (Keras's default, `--no-restore-best`) the last epoch's kept.
TEST(Training, EarlyStoppingRestoresTheBestEpochsWeightsUnlessToldNot) {
  for (const bool restore : {true, false}) {
    SCOPED_TRACE(restore ? "restore" : "keep");
    CpuBackend be;
    Model m = small_stochastic_model();
    Trainer t(m, be, 4);
    FitOptions o;
    o.epochs = 6;
    o.batch_size = 16;
    o.validation_split = 0.25;
    o.early_stopping.enabled = true;
    o.early_stopping.monitor = "val_accuracy";
    o.early_stopping.patience = 1;
    o.early_stopping.min_delta = 1.0;  // nothing beats epoch 1 by a whole unit of accuracy
    o.early_stopping.restore_best_weights = restore;
    std::vector<Parameters::Snapshot> per_epoch;
    o.on_epoch_end = [&](const EpochLog&, int) { per_epoch.push_back(t.parameters().snapshot()); };
    const History h = t.fit(quadrant_dataset(200, 5), o);
    ASSERT_EQ(h.epochs.size(), 2u);
    EXPECT_TRUE(h.stopped_early);
    EXPECT_EQ(h.restored_best, restore);
    EXPECT_EQ(h.best_epoch, 1);
    const Parameters::Snapshot now = t.parameters().snapshot();
    const Parameters::Snapshot& kept = per_epoch[restore ? 0 : 1];
    const Parameters::Snapshot& other = per_epoch[restore ? 1 : 0];
    EXPECT_TRUE(same_bits(now.values, kept.values));
    EXPECT_FALSE(same_bits(now.values, other.values));
    if (restore) {
      EXPECT_TRUE(same_bits(now.state, kept.state));
    }
  }
}

TEST(Training, ImpossibleOptionsAreRefused) {
  CpuBackend be;
  Model m = small_stochastic_model();
  Trainer t(m, be, 1);
  const Dataset d = quadrant_dataset(50, 1);
  FitOptions o;
  o.batch_size = 0;
  EXPECT_THROW(t.fit(d, o), ConfigError);
  o = {};
  o.validation_split = 1.0;
  EXPECT_THROW(t.fit(d, o), ConfigError);
  o = {};
  o.early_stopping.enabled = true;  // monitors val_loss, but no validation split
  EXPECT_THROW(t.fit(d, o), ConfigError);
  o = {};
  o.optimizer.learning_rate = 0.0f;
  EXPECT_THROW(t.fit(d, o), ConfigError);
  o = {};
  o.epochs = 0;
  EXPECT_THROW(t.fit(d, o), ConfigError);
}

TEST(Training, PredictGivesProbabilitiesThatAgreeWithEvaluate) {
  CpuBackend be;
  Model m = small_stochastic_model();
  Trainer t(m, be, 2);
  FitOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  const Dataset d = quadrant_dataset(200, 8);
  t.fit(d, o);
  const Tensor probs = t.predict(d.images, 64);
  ASSERT_EQ(probs.shape(), (Shape{200, 4}));
  int64_t correct = 0;
  for (int64_t i = 0; i < 200; ++i) {
    const float* p = probs.host() + i * 4;
    double sum = 0;
    int best = 0;
    for (int k = 0; k < 4; ++k) {
      sum += p[k];
      EXPECT_GE(p[k], 0.0f);
      if (p[k] > p[best]) best = k;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    correct += best == static_cast<int>(d.labels.host()[i]);
  }
  const EvalResult e = t.evaluate(d, 50);
  EXPECT_EQ(e.count, 200);
  EXPECT_DOUBLE_EQ(e.accuracy, static_cast<double>(correct) / 200.0);
}

// The end-to-end check: a few hundred steps of mnist-cnn on a slice of the real
// Fashion-MNIST lower the loss and lift accuracy far above chance, twice identically (on
// one thread, then on two).
TEST(EndToEnd, MnistCnnLearnsFashionMnistSliceAndRepeatsExactly) {
  const std::string dir = testing::real_fashion_mnist_dir();
  if (dir.empty()) GTEST_SKIP() << "Fashion-MNIST not found under " << CNN_TEST_SHARED_DATA;
  const DatasetSplits data = load_dataset_dir(dir);
  const Dataset train = take_first(data.train, 3000);
  const Dataset test = take_first(data.test, 1000);
  auto run = [&](RunResult& out, int threads) {
    CpuBackend be(false, threads);
    Model m = build_model("mnist-cnn");
    Trainer t(m, be, 42);
    FitOptions o;
    o.epochs = 3;  // 3 x 94 = 282 steps
    o.batch_size = 32;
    out.history = t.fit(train, o);
    out.weights = t.parameters().snapshot();
    return t.evaluate(test);
  };
  RunResult a, b;
  const EvalResult ea = run(a, 1), eb = run(b, 2);
  const auto& h = a.history.epochs;
  EXPECT_LT(h.back().loss, 0.75 * h.front().loss);
  EXPECT_GT(h.back().accuracy, 0.6);
  EXPECT_GT(ea.accuracy, 0.6);  // chance is 0.1
  EXPECT_TRUE(same_bits(a.weights.values, b.weights.values));
  EXPECT_EQ(ea.loss, eb.loss);
  EXPECT_EQ(ea.accuracy, eb.accuracy);
}

}  // namespace
}  // namespace cnn
