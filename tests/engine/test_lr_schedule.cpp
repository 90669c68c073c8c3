// Learning-rate schedules against values computed by hand from the formulas of Keras
// (CosineDecay with warmup, ReduceLROnPlateau) and PyTorch (OneCycleLR), and the
// schedule inside fit: the optimizer's rate changes per step and the history records it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/optimizer.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

const double kPi = std::acos(-1.0);

LrScheduleConfig config(LrScheduleKind kind) {
  LrScheduleConfig c;
  c.kind = kind;
  return c;
}

TEST(LrSchedule, ConstantIsTheBaseRate) {
  const LrSchedule s(config(LrScheduleKind::Constant), 0.01, 7, 3);
  for (int64_t step : {0, 1, 6, 7, 100}) EXPECT_EQ(s.lr(step), 0.01);
}

TEST(LrSchedule, StepDecayDropsByTheFactorEveryStepEpochs) {
  LrScheduleConfig c = config(LrScheduleKind::Step);
  c.step_epochs = 2;
  c.factor = 0.5;
  const LrSchedule s(c, 0.1, /*steps_per_epoch=*/3, /*run_epochs=*/10);
  // Epochs 0-1 (steps 0-5): 0.1; epochs 2-3 (steps 6-11): 0.05; epochs 4-5: 0.025.
  const std::vector<double> expected = {0.1,  0.1,  0.1,  0.1,  0.1,   0.1,   0.05, 0.05,
                                        0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025};
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_DOUBLE_EQ(s.lr(static_cast<int64_t>(i)), expected[i]) << "step " << i;
}

TEST(LrSchedule, CosineWarmsUpLinearlyFromZeroThenDecaysToTheMinimum) {
  LrScheduleConfig c = config(LrScheduleKind::Cosine);
  c.warmup_epochs = 1;
  c.schedule_epochs = 3;
  // 4 steps per epoch: 4 warmup steps, then 8 of cosine decay (Keras's decay_steps).
  const LrSchedule s(c, 1.0, 4, 5);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(s.lr(1), 0.25);
  EXPECT_DOUBLE_EQ(s.lr(2), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(3), 0.75);
  EXPECT_DOUBLE_EQ(s.lr(4), 1.0);
  EXPECT_NEAR(s.lr(6), 0.5 * (1.0 + std::cos(kPi / 4.0)), 1e-15);  // 0.8535533905932737
  EXPECT_NEAR(s.lr(8), 0.5, 1e-15);
  EXPECT_NEAR(s.lr(10), 0.5 * (1.0 + std::cos(3.0 * kPi / 4.0)), 1e-15);
  EXPECT_NEAR(s.lr(12), 0.0, 1e-15);
  EXPECT_NEAR(s.lr(40), 0.0, 1e-15);  // past the schedule: its final value

  c.min_lr = 0.1;  // Keras's alpha = 0.1: min + (base - min) * cosine
  const LrSchedule m(c, 1.0, 4, 5);
  EXPECT_NEAR(m.lr(8), 0.1 + 0.9 * 0.5, 1e-15);
  EXPECT_NEAR(m.lr(12), 0.1, 1e-15);
  EXPECT_DOUBLE_EQ(m.lr(2), 0.5);  // the warmup goes to the base rate
}

TEST(LrSchedule, CosineWithoutWarmupStartsAtTheBaseRate) {
  LrScheduleConfig c = config(LrScheduleKind::Cosine);
  const LrSchedule s(c, 0.2, 10, /*run_epochs=*/2);  // schedule_epochs 0: the run's 2
  EXPECT_DOUBLE_EQ(s.lr(0), 0.2);
  EXPECT_NEAR(s.lr(10), 0.1, 1e-15);
  EXPECT_NEAR(s.lr(20), 0.0, 1e-15);
}

TEST(LrSchedule, OneCycleFollowsPyTorchsTwoCosinePhases) {
  LrScheduleConfig c = config(LrScheduleKind::OneCycle);
  // 10 steps in all; PyTorch: phase 1 ends at pct_start * 10 - 1 = 2, phase 2 at 9.
  const LrSchedule s(c, 1.0, 5, 2);
  const double initial = 1.0 / 25.0, final_lr = initial / 1e4;
  const auto anneal = [](double start, double end, double pct) {
    return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
  };
  EXPECT_NEAR(s.lr(0), 0.04, 1e-15);
  EXPECT_NEAR(s.lr(1), 0.52, 1e-15);                              // halfway up: (0.04 + 1) / 2
  EXPECT_NEAR(s.lr(2), 1.0, 1e-15);                               // the peak
  EXPECT_NEAR(s.lr(3), anneal(1.0, final_lr, 1.0 / 7.0), 1e-15);  // 0.95048...
  EXPECT_NEAR(s.lr(6), anneal(1.0, final_lr, 4.0 / 7.0), 1e-15);
  EXPECT_NEAR(s.lr(9), final_lr, 1e-15);
  EXPECT_NEAR(s.lr(50), final_lr, 1e-15);  // past the end: the final rate
}

// PyTorch's cycle_momentum: the momentum mirrors the rate along the same two phases.
TEST(LrSchedule, OneCycleMovesTheMomentumAgainstTheRate) {
  LrScheduleConfig c = config(LrScheduleKind::OneCycle);
  const LrSchedule s(c, 1.0, 5, 2);  // 10 steps: the peak at step 2, the end at step 9
  ASSERT_TRUE(s.cycles_momentum());
  const auto anneal = [](double start, double end, double pct) {
    return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
  };
  EXPECT_NEAR(*s.momentum(0), 0.95, 1e-15);
  EXPECT_NEAR(*s.momentum(1), 0.90, 1e-15);  // halfway down
  EXPECT_NEAR(*s.momentum(2), 0.85, 1e-15);  // the rate's peak: the least momentum
  EXPECT_NEAR(*s.momentum(3), anneal(0.85, 0.95, 1.0 / 7.0), 1e-15);
  EXPECT_NEAR(*s.momentum(9), 0.95, 1e-15);
  EXPECT_NEAR(*s.momentum(50), 0.95, 1e-15);
  // Wherever the rate rises the momentum falls, and the other way round.
  for (int64_t i = 0; i + 1 < 10; ++i)
    EXPECT_LT((s.lr(i + 1) - s.lr(i)) * (*s.momentum(i + 1) - *s.momentum(i)), 0.0) << "step " << i;

  c.base_momentum = 0.5;
  c.max_momentum = 0.7;
  EXPECT_NEAR(*LrSchedule(c, 1.0, 5, 2).momentum(2), 0.5, 1e-15);
  EXPECT_NEAR(*LrSchedule(c, 1.0, 5, 2).momentum(0), 0.7, 1e-15);
  c.cycle_momentum = false;
  EXPECT_FALSE(LrSchedule(c, 1.0, 5, 2).momentum(2).has_value());
  // Only one-cycle sets the momentum.
  EXPECT_FALSE(LrSchedule(config(LrScheduleKind::Cosine), 1.0, 5, 2).momentum(0).has_value());
  c.cycle_momentum = true;
  c.max_momentum = 1.0;
  EXPECT_THROW(LrSchedule(c, 1.0, 5, 2), ConfigError);
}

// Keras's ReduceLROnPlateau, epoch by epoch, with cooldown and the min_lr floor.
TEST(LrSchedule, PlateauReducesAfterPatienceWithCooldownAndFloor) {
  LrScheduleConfig c = config(LrScheduleKind::Plateau);
  c.monitor = "loss";
  c.factor = 0.5;
  c.patience = 2;
  c.cooldown = 1;
  c.min_lr = 0.1;
  c.min_delta = 0.0;
  LrSchedule s(c, 1.0, 10, 20);
  const std::vector<double> loss = {1.0,  1.0,  1.0,  1.0,  1.0,  0.9,
                                    0.95, 0.95, 0.95, 0.95, 0.95, 0.95};
  // After each epoch: the rate for the next one (worked through Keras's code by hand).
  const std::vector<double> lr = {1.0,  1.0,   0.5,   0.5, 0.25, 0.25,
                                  0.25, 0.125, 0.125, 0.1, 0.1,  0.1};
  const std::vector<bool> reduced = {false, false, true,  false, true,  false,
                                     false, true,  false, true,  false, false};
  for (size_t e = 0; e < loss.size(); ++e) {
    EXPECT_EQ(s.on_epoch_end(loss[e]), reduced[e]) << "epoch " << e;
    EXPECT_DOUBLE_EQ(s.lr(0), static_cast<double>(static_cast<float>(lr[e]))) << "epoch " << e;
    EXPECT_DOUBLE_EQ(s.lr(12345), s.lr(0));  // constant within an epoch
  }
}

TEST(LrSchedule, PlateauMaximizesAccuracyAndHonoursMinDelta) {
  LrScheduleConfig c = config(LrScheduleKind::Plateau);
  c.monitor = "val_accuracy";
  c.factor = 0.1;
  c.patience = 1;
  c.min_delta = 0.01;
  LrSchedule s(c, 1e-3, 10, 20);
  EXPECT_FALSE(s.on_epoch_end(0.50));  // best 0.50
  EXPECT_FALSE(s.on_epoch_end(0.60));  // better by more than min_delta
  EXPECT_TRUE(s.on_epoch_end(0.605));  // not by more than 0.01: wait 1 >= patience
  // As Keras: the old rate is the optimizer's float32 value, the new one stored as float32.
  const double old_lr = static_cast<double>(static_cast<float>(1e-3));
  EXPECT_EQ(s.lr(0), static_cast<double>(static_cast<float>(old_lr * 0.1)));
  EXPECT_FALSE(s.on_epoch_end(std::nullopt));  // an absent metric is skipped
  EXPECT_EQ(s.plateau().wait, 0);
  ASSERT_TRUE(s.plateau().best.has_value());
  EXPECT_EQ(*s.plateau().best, 0.60);
}

TEST(LrSchedule, PlateauStateRoundTripsThroughJson) {
  LrScheduleConfig c = config(LrScheduleKind::Plateau);
  c.monitor = "loss";
  c.patience = 1;
  LrSchedule a(c, 0.01, 5, 10), b(c, 0.01, 5, 10);
  for (double v : {0.9, 0.95, 0.97}) a.on_epoch_end(v);
  b.restore_state(nlohmann::json::parse(a.state_json().dump()));
  EXPECT_EQ(b.lr(0), a.lr(0));
  EXPECT_EQ(b.plateau().best, a.plateau().best);
  EXPECT_EQ(b.plateau().wait, a.plateau().wait);
  EXPECT_EQ(b.plateau().cooldown_counter, a.plateau().cooldown_counter);
  EXPECT_THROW(b.restore_state(nlohmann::json{
                   {"lr", -1.0}, {"best", nullptr}, {"wait", 0}, {"cooldown_counter", 0}}),
               DataError);
}

TEST(LrSchedule, ConfigRoundTripsAndBadParametersAreRefused) {
  LrScheduleConfig c = config(LrScheduleKind::OneCycle);
  c.pct_start = 0.25;
  c.schedule_epochs = 7;
  c.cycle_momentum = false;
  c.base_momentum = 0.8;
  const LrScheduleConfig back = lr_schedule_from_json(lr_schedule_to_json(c));
  EXPECT_EQ(lr_schedule_to_json(back), lr_schedule_to_json(c));
  // A run saved before the momentum cycled resumes without it.
  nlohmann::json old = lr_schedule_to_json(config(LrScheduleKind::OneCycle));
  for (const char* key : {"cycle_momentum", "base_momentum", "max_momentum"}) old.erase(key);
  EXPECT_FALSE(lr_schedule_from_json(old).cycle_momentum);
  EXPECT_TRUE(config(LrScheduleKind::OneCycle).cycle_momentum);  // new runs cycle it
  EXPECT_EQ(parse_lr_schedule("cosine"), LrScheduleKind::Cosine);
  EXPECT_THROW(parse_lr_schedule("exponential"), ConfigError);

  LrScheduleConfig bad = config(LrScheduleKind::Plateau);
  bad.factor = 1.0;  // Keras refuses factor >= 1
  EXPECT_THROW(LrSchedule(bad, 0.1, 5, 5), ConfigError);
  bad = config(LrScheduleKind::Cosine);
  bad.warmup_epochs = 5;  // as long as the schedule
  EXPECT_THROW(LrSchedule(bad, 0.1, 5, 5), ConfigError);
  bad = config(LrScheduleKind::Step);
  bad.step_epochs = 0;
  EXPECT_THROW(LrSchedule(bad, 0.1, 5, 5), ConfigError);
  EXPECT_THROW(LrSchedule(config(LrScheduleKind::Constant), 0.0, 5, 5), ConfigError);
}

// Inside fit: each step runs at the schedule's rate, and the history records the rate of
// each epoch's last step. With SGD (no momentum) the effect of the rate is visible: a
// step schedule with factor 0 after epoch 1 would freeze the weights, so use a tiny one.
TEST(LrSchedule, FitRecordsThePerEpochRateAndAppliesItPerStep) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 4);
  FitOptions o;
  o.epochs = 4;
  o.batch_size = 25;  // 300 training samples: 12 steps per epoch
  o.optimizer.kind = OptimizerKind::Sgd;
  o.optimizer.learning_rate = 0.05f;
  o.lr_schedule.kind = LrScheduleKind::Step;
  o.lr_schedule.step_epochs = 2;
  o.lr_schedule.factor = 1e-9;
  std::vector<Parameters::Snapshot> after;
  o.on_epoch_end = [&](const EpochLog&, int) { after.push_back(t.parameters().snapshot()); };
  const History h = t.fit(testing::quadrant_dataset(300, 2), o);
  ASSERT_EQ(h.epochs.size(), 4u);
  EXPECT_EQ(h.epochs[0].lr, static_cast<double>(0.05f));
  EXPECT_EQ(h.epochs[1].lr, static_cast<double>(0.05f));
  EXPECT_EQ(h.epochs[2].lr, static_cast<double>(static_cast<float>(0.05f * 1e-9)));
  // Epochs 3 and 4 barely move the weights; epoch 2 moved them a lot.
  const auto moved = [](const Parameters::Snapshot& a, const Parameters::Snapshot& b) {
    double d = 0;
    for (size_t i = 0; i < a.values.size(); ++i)
      d = std::max(d, std::fabs(static_cast<double>(a.values[i]) - b.values[i]));
    return d;
  };
  EXPECT_GT(moved(after[0], after[1]), 1e-3);
  EXPECT_LT(moved(after[2], after[3]), 1e-6);
}

// Inside fit, each step's momentum reaches the update: one-cycle with the momentum held at
// 0.9 (base = max) trains exactly as SGD with momentum 0.9 under the same rates does, and
// cycling it changes the weights. SGD built without momentum gets a velocity from it.
TEST(LrSchedule, FitAppliesTheCycledMomentumPerStep) {
  CpuBackend be;
  const std::vector<float> fixed = testing::one_cycle_sgd(be, 0.9f, false, 0, 0).weights;
  const std::vector<float> held = testing::one_cycle_sgd(be, 0.0f, true, 0.9, 0.9).weights;
  const std::vector<float> cycled = testing::one_cycle_sgd(be, 0.0f, true, 0.85, 0.95).weights;
  ASSERT_EQ(fixed.size(), held.size());
  EXPECT_EQ(0, std::memcmp(fixed.data(), held.data(), fixed.size() * sizeof(float)));
  EXPECT_NE(fixed, cycled);
  // A cycle that starts at 0 still gets a velocity; one at 0 throughout is plain SGD.
  const std::vector<float> plain = testing::one_cycle_sgd(be, 0.0f, false, 0, 0).weights;
  EXPECT_NE(testing::one_cycle_sgd(be, 0.0f, true, 0.5, 0.0).weights, plain);
  const std::vector<float> zero = testing::one_cycle_sgd(be, 0.0f, true, 0, 0).weights;
  EXPECT_EQ(0, std::memcmp(plain.data(), zero.data(), plain.size() * sizeof(float)));
}

// What a schedule may set: SGD's momentum where it keeps a velocity, Adam's beta1 (whose
// bias correction then uses the step's value), never RMSprop's.
TEST(Optimizer, TheMomentumIsSetOnlyWhereThereIsOne) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 4);
  Parameters& params = t.parameters();
  OptimizerConfig c;
  c.kind = OptimizerKind::Adam;
  Optimizer adam(c, params, be);
  EXPECT_EQ(adam.momentum(), 0.9f);
  const float before = adam.next_rate();
  adam.set_momentum(0.5f);
  EXPECT_EQ(adam.momentum(), 0.5f);
  EXPECT_EQ(adam.next_rate(), adam_step_size({c.lr(), 0.5f, c.beta2, c.epsilon}, 1));
  EXPECT_NE(adam.next_rate(), before);
  EXPECT_THROW(adam.set_momentum(1.0f), ConfigError);
  EXPECT_THROW(adam.set_momentum(-0.1f), ConfigError);

  c.kind = OptimizerKind::Sgd;
  c.momentum = 0.0f;
  Optimizer plain(c, params, be);
  EXPECT_THROW(plain.set_momentum(0.9f), ConfigError);  // no velocity to carry it
  plain.set_momentum(0.0f);                             // what it does anyway
  c.momentum = 0.5f;
  Optimizer sgd(c, params, be);
  sgd.set_momentum(0.9f);
  EXPECT_EQ(sgd.momentum(), 0.9f);

  c.kind = OptimizerKind::Rmsprop;
  Optimizer rmsprop(c, params, be);
  EXPECT_EQ(rmsprop.momentum(), 0.0f);
  EXPECT_THROW(rmsprop.set_momentum(0.9f), ConfigError);
}

TEST(LrSchedule, OneCycleCannotCycleRmspropsMomentum) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 4);
  FitOptions o;
  o.optimizer.kind = OptimizerKind::Rmsprop;
  o.lr_schedule.kind = LrScheduleKind::OneCycle;
  EXPECT_THROW(t.fit(testing::quadrant_dataset(40, 2), o), ConfigError);
  o.lr_schedule.cycle_momentum = false;
  EXPECT_NO_THROW(t.fit(testing::quadrant_dataset(40, 2), o));
}

TEST(LrSchedule, PlateauOnAValidationMetricNeedsAValidationSplit) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Trainer t(m, be, 4);
  FitOptions o;
  o.lr_schedule.kind = LrScheduleKind::Plateau;  // monitors val_loss by default
  EXPECT_THROW(t.fit(testing::quadrant_dataset(40, 2), o), ConfigError);
}

}  // namespace
}  // namespace cnn
