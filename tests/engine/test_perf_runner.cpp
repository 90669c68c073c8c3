// The measuring machinery of `cnn bench`, `cnn profile` and `cnn train --target-accuracy`
// on the CPU backend: the backend's timer and timeline, the layer benchmark, the
// executor's observer, the profiled training step, and the stop at a target accuracy.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/graph/executor.h"
#include "engine/graph/layers.h"
#include "engine/graph/zoo.h"
#include "engine/perf/layer_bench.h"
#include "engine/perf/layer_ops.h"
#include "engine/perf/step_profile.h"
#include "engine/perf/train_step.h"
#include "engine/train/target_accuracy.h"
#include "engine/train/trainer.h"
#include "support/cpu_gemm_name.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

using perf::OpPass;
using testing::quadrant_dataset;
using testing::small_stochastic_model;

TEST(BackendTiming, TimeMsRunsWarmupThenTimesEachRepeat) {
  CpuBackend be;
  int calls = 0;
  const std::vector<double> ms = be.time_ms([&] { ++calls; }, 2, 5);
  EXPECT_EQ(calls, 7);
  ASSERT_EQ(ms.size(), 5u);
  for (double v : ms) EXPECT_GE(v, 0.0);
  EXPECT_THROW(be.time_ms([] {}, 0, 0), ConfigError);
  EXPECT_THROW(be.time_ms([] {}, -1, 1), ConfigError);
  // The CPU has no profiler range; the brackets do nothing.
  be.profiler_start();
  be.profiler_stop();
}

TEST(BackendTiming, TimelineMarksMeasureTheSpanBetweenThem) {
  CpuBackend be;
  const auto t = be.timeline();
  const int a = t->mark();
  volatile double sink = 0;
  for (int i = 0; i < 200000; ++i) sink = sink + i;
  const int b = t->mark();
  const int c = t->mark();
  EXPECT_GT(t->elapsed_ms(a, b), 0.0);
  EXPECT_GE(t->elapsed_ms(a, c), t->elapsed_ms(a, b));
  EXPECT_THROW(t->elapsed_ms(a, 7), Error);
}

TEST(LayerBench, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(perf::median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(perf::median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_EQ(perf::median({5.0}), 5.0);
  EXPECT_THROW(perf::median({}), Error);
}

TEST(LayerBench, TimesEveryPassOfConvPoolAndBatchNorm) {
  CpuBackend be;
  const Model m = small_stochastic_model();
  const std::vector<perf::LayerOp> ops = perf::conv_pool_batchnorm_ops(m, 4);
  ASSERT_EQ(ops.size(), 3u);  // conv, batch norm, pooling
  perf::BenchTiming t;
  t.warmup = 1;
  t.repeats = 3;
  for (const perf::LayerOp& op : ops) {
    const std::vector<perf::TimedPass> passes = perf::time_layer_op(be, op, t);
    ASSERT_EQ(passes.size(), op.passes().size()) << op.layer;
    for (size_t i = 0; i < passes.size(); ++i) {
      EXPECT_EQ(passes[i].pass, op.passes()[i]);
      EXPECT_EQ(passes[i].ms.size(), 3u);
      EXPECT_GE(passes[i].median_ms, 0.0);
      // What ran: the family's implementation, or for the 2x2 max pooling the CPU's fast
      // path of disjoint windows.
      EXPECT_EQ(passes[i].impl, op.family == "pool2d" ? "disjoint-max" : be.impl_name(op.family))
          << op.layer;
    }
  }
  EXPECT_EQ(perf::implementation_of(be, ops[0], OpPass::Forward), test::cpu_gemm_impl_name());
  const std::optional<perf::LayerOp> dense = perf::layer_op(m, m.find("dense"), 4);
  ASSERT_TRUE(dense);
  EXPECT_THROW(perf::time_layer_op(be, *dense, t), Error);
}

TEST(LayerImplementations, NameWhatRanPerLayerOnTheCpu) {
  const Model m = build_model("mnist-cnn");
  CpuBackend fast;
  CpuBackend reference(/*reference_only=*/true);
  const auto fast_rows = perf::layer_implementations(m, fast, 32);
  ASSERT_EQ(fast_rows.size(), 6u);  // two convolutions, two poolings, two dense
  EXPECT_EQ(fast_rows[0].layer, "conv2d");
  EXPECT_EQ(fast_rows[0].forward, test::cpu_gemm_impl_name());
  EXPECT_EQ(fast_rows[0].backward, test::cpu_gemm_impl_name());
  EXPECT_EQ(fast_rows[1].type, "MaxPooling2D");
  // Before a pooling has run, the family's name; after, what ran for its shape: the fast
  // path of disjoint max windows.
  EXPECT_EQ(fast_rows[1].forward, "reference");
  perf::BenchTiming once;
  once.warmup = 0;
  once.repeats = 1;
  for (const perf::LayerOp& op : perf::conv_pool_batchnorm_ops(m, 32))
    perf::time_layer_op(fast, op, once);
  const auto ran = perf::layer_implementations(m, fast, 32);
  EXPECT_EQ(ran[1].forward, "disjoint-max");
  EXPECT_EQ(ran[1].backward, "disjoint-max");
  EXPECT_EQ(ran[0].forward, test::cpu_gemm_impl_name());
  for (const auto& r : perf::layer_implementations(m, reference, 32)) {
    EXPECT_EQ(r.forward, "reference") << r.layer;
    EXPECT_EQ(r.backward, "reference") << r.layer;
  }
}

// Records the observer's calls.
class Recorder : public ExecutorObserver {
 public:
  void before(const Node& node, LayerPass pass) override {
    calls.push_back("before " + node.name + " " + perf::layer_pass_name(pass));
  }
  void after(const Node& node, LayerPass pass) override {
    calls.push_back("after " + node.name + " " + perf::layer_pass_name(pass));
  }
  std::vector<std::string> calls;
};

TEST(ExecutorObserver, BracketsEveryLayerPassInOrder) {
  CpuBackend be;
  Model m("chain");
  m.input(Shape{1, 6, 6});
  m.add(layers::conv2d(2, 3, "same", Activation::Relu));
  m.add(layers::flatten());
  m.add(layers::dense(3));
  m.finish();
  Parameters params(m, be);
  params.initialize(1);
  Executor exec(m, params, be, 2);
  Recorder rec;
  exec.set_observer(&rec);
  const Tensor x = be.zeros(Shape{2, 1, 6, 6});
  const Tensor out = exec.forward(x, true);
  exec.backward(be.zeros(out.shape()));
  const std::vector<std::string> want = {
      "before conv2d forward",  "after conv2d forward",   "before flatten forward",
      "after flatten forward",  "before dense forward",   "after dense forward",
      "before dense backward",  "after dense backward",   "before flatten backward",
      "after flatten backward", "before conv2d backward", "after conv2d backward"};
  EXPECT_EQ(rec.calls, want);
  exec.set_observer(nullptr);
  exec.forward(x, false);
  EXPECT_EQ(rec.calls.size(), want.size());  // detached: no more calls
}

TEST(StepProfile, TimesEveryLayerPassWithItsCostAndImplementation) {
  CpuBackend be;
  Model m = small_stochastic_model();
  OptimizerConfig opt;
  perf::TrainStep step(m, be, quadrant_dataset(64, 1), 16, opt, 7);
  perf::ProfileOptions o;
  o.warmup = 1;
  o.steps = 2;
  const perf::StepProfile prof = perf::profile_steps(step, m, o);
  // Warm-up, measured, observed. The CPU captures no graphs: one warm-up step is enough,
  // and every step was launched. Where graphs are captured there are two at least (one
  // launched, one captured), unless graphs are off.
  EXPECT_EQ(prof.warmup, 1);
  EXPECT_EQ(step.steps_run(), 1 + 2 + 2);
  EXPECT_FALSE(prof.step_replayed);
  EXPECT_EQ(o.warmup_steps(/*captures=*/true), 2);
  o.cuda_graphs = false;
  EXPECT_EQ(o.warmup_steps(/*captures=*/true), 1);
  EXPECT_EQ(prof.batch, 16);
  EXPECT_GT(prof.step_ms, 0.0);
  EXPECT_GT(prof.observed_step_ms, 0.0);
  // Every layer runs forward; all reach a trainable layer, so all run backward too.
  const size_t layers = m.nodes().size() - 1;
  ASSERT_EQ(prof.passes.size(), 2 * layers);
  double sum = 0;
  for (const perf::LayerPassTime& p : prof.passes) {
    EXPECT_GE(p.ms, 0.0) << p.layer;
    sum += p.ms;
  }
  EXPECT_NEAR(prof.other_ms(), prof.observed_step_ms - sum, 1e-9);
  EXPECT_GE(prof.other_ms(), -1e-6);  // the layer spans lie inside the step's span
  // Forwards in graph order, then backwards in reverse.
  EXPECT_EQ(prof.passes.front().layer, "conv2d");
  EXPECT_EQ(prof.passes.front().pass, LayerPass::kForward);
  EXPECT_EQ(prof.passes.back().layer, "conv2d");
  EXPECT_EQ(prof.passes.back().pass, LayerPass::kBackward);

  const perf::LayerOp conv = *perf::layer_op(m, 1, 16);
  const perf::LayerPassTime& conv_fwd = prof.passes.front();
  ASSERT_TRUE(conv_fwd.cost);
  EXPECT_EQ(conv_fwd.cost->flops, conv.cost(OpPass::Forward).flops);
  EXPECT_EQ(conv_fwd.impl, test::cpu_gemm_impl_name());
  // The first layer reads the data: its backward computes the filter gradient only.
  const perf::LayerPassTime& conv_bwd = prof.passes.back();
  ASSERT_TRUE(conv_bwd.cost);
  EXPECT_EQ(conv_bwd.cost->flops, conv.cost(OpPass::BackwardFilter).flops);
  EXPECT_EQ(conv_bwd.cost->bytes, conv.cost(OpPass::BackwardFilter).bytes);
  for (const perf::LayerPassTime& p : prof.passes) {
    if (p.type == "BatchNormalization") {
      ASSERT_TRUE(p.cost);
      EXPECT_EQ(p.impl, "reference");
    }
    if (p.type == "Dropout" || p.type == "Flatten" || p.type == "SpatialDropout2D") {
      EXPECT_FALSE(p.cost) << p.layer;
      EXPECT_EQ(p.impl, "") << p.layer;
    }
  }
  EXPECT_THROW(perf::profile_steps(step, m, {0, 0}), ConfigError);
}

TEST(TargetAccuracy, StopsFitAtTheFirstEpochThatReachesTheTarget) {
  CpuBackend be;
  Model m = small_stochastic_model();
  Trainer trainer(m, be, 5);
  // Scripted evaluations and clock: the target is reached at the third epoch.
  const std::vector<double> accuracy = {0.2, 0.45, 0.61, 0.9};
  size_t evals = 0;
  double clock = 10.0;
  TargetAccuracy target(
      0.6,
      [&] {
        EvalResult r;
        r.accuracy = accuracy.at(evals++);
        r.loss = 1.0;
        return r;
      },
      [&] { return clock += 1.5; });
  std::vector<int> printed;
  target.set_on_evaluation([&](const TargetAccuracy::Point& p) { printed.push_back(p.epoch); });
  FitOptions o;
  o.epochs = 6;
  o.batch_size = 16;
  o.callbacks.push_back(&target);
  const History h = trainer.fit(quadrant_dataset(64, 2), o);
  ASSERT_EQ(h.epochs.size(), 3u);
  EXPECT_FALSE(h.stopped_early);
  EXPECT_TRUE(target.reached());
  EXPECT_EQ(printed, (std::vector<int>{1, 2, 3}));
  const nlohmann::ordered_json j = target.report();
  EXPECT_EQ(j["target"], 0.6);
  EXPECT_EQ(j["reached"], true);
  EXPECT_EQ(j["epoch"], 3);
  EXPECT_DOUBLE_EQ(j["seconds_from_process_start"].get<double>(), 14.5);
  EXPECT_DOUBLE_EQ(j["test_accuracy"].get<double>(), 0.61);
  EXPECT_EQ(j["evaluations"].size(), 3u);
}

TEST(TargetAccuracy, UnreachedTargetRunsEveryEpochAndSaysSo) {
  CpuBackend be;
  Model m = small_stochastic_model();
  Trainer trainer(m, be, 5);
  // Each test image twice, under two different labels: no model can score above 0.5, so
  // a target of 1.0 is out of reach whatever the training does.
  const Dataset once = quadrant_dataset(16, 9);
  Dataset test;
  test.classes = once.classes;
  test.images = Tensor::empty_host(Shape{32, 1, 8, 8});
  test.labels = Tensor::empty_host(Shape{32});
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t copy = 0; copy < 2; ++copy) {
      std::copy(once.images.host() + i * 64, once.images.host() + (i + 1) * 64,
                test.images.host() + (2 * i + copy) * 64);
      test.labels.host()[2 * i + copy] =
          static_cast<float>((static_cast<int>(once.labels.host()[i]) + copy) % once.classes);
    }
  TargetAccuracy target(
      1.0, [&] { return trainer.evaluate(test, 16); }, [] { return 1.0; });
  FitOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  o.callbacks.push_back(&target);
  const History h = trainer.fit(quadrant_dataset(64, 2), o);
  const nlohmann::ordered_json j = target.report();
  EXPECT_FALSE(target.reached());
  EXPECT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(j["reached"], false);
  EXPECT_TRUE(j["epoch"].is_null());
  EXPECT_TRUE(j["seconds_from_process_start"].is_null());
  ASSERT_EQ(j["evaluations"].size(), 2u);
  // The evaluation inside fit scored the test set with the weights the run ended with.
  const EvalResult now = trainer.evaluate(test, 16);
  EXPECT_EQ(j["evaluations"][1]["test_accuracy"].get<double>(), now.accuracy);
  EXPECT_LE(now.accuracy, 0.5);
  EXPECT_THROW(TargetAccuracy(
                   0.0, [] { return EvalResult(); }, [] { return 0.0; }),
               ConfigError);
  EXPECT_THROW(TargetAccuracy(
                   1.5, [] { return EvalResult(); }, [] { return 0.0; }),
               ConfigError);
}

}  // namespace
}  // namespace cnn
