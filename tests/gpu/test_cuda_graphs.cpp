// Training steps captured into CUDA graphs (issue 4): a replayed step does exactly what
// the same step launched op by op does (bit for bit: every native kernel is deterministic
// and reads what changes per step from the step scalars), a capture refuses to allocate
// and leaves the backend usable, a replay sees the scalars written before it, and no
// buffer a graph names is handed to anyone else while the graph lives.
// Without a usable GPU every test skips with the probe's reason.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/device.h"
#include "engine/perf/train_step.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"
#include "tests/gpu/gpu_test_util.h"

namespace cnn {
namespace {

std::unique_ptr<cuda::CudaBackend> gpu(ImplPolicy policy) { return testing::quiet_gpu(policy); }

struct RunResult {
  Parameters::Snapshot weights;
  History history;
  Trainer::GraphStats graphs;
};

// Three epochs of a model with dropout, batch norm and augmentation, a schedule that
// changes the rate every step (one-cycle: the momentum of SGD and Adam too), and a last
// batch smaller than the others (320 samples
// less a quarter for validation, batch 28: 8 full batches and one of 16).
RunResult train(ImplPolicy policy, bool graphs, OptimizerKind optimizer) {
  auto be = gpu(policy);
  Model m = testing::small_stochastic_model();
  Trainer t(m, *be, 33);
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 28;
  o.validation_split = 0.25;
  o.augment.flip = true;
  o.augment.max_shift = 1;
  o.optimizer.kind = optimizer;
  o.optimizer.momentum = optimizer == OptimizerKind::Sgd ? 0.9f : 0.0f;
  o.lr_schedule.kind = LrScheduleKind::OneCycle;
  o.lr_schedule.cycle_momentum = optimizer != OptimizerKind::Rmsprop;  // it has none
  o.lr_schedule.schedule_epochs = 3;
  o.cuda_graphs = graphs;
  RunResult r;
  r.history = t.fit(testing::quadrant_dataset(320, 8), o);
  r.weights = t.parameters().snapshot();
  r.graphs = t.graph_stats();
  return r;
}

TEST(CudaGraphs, ReplayedStepsEqualLaunchedStepsBitForBit) {
  REQUIRE_GPU();
  for (const OptimizerKind kind :
       {OptimizerKind::Adam, OptimizerKind::Sgd, OptimizerKind::Rmsprop}) {
    SCOPED_TRACE(optimizer_name(kind));
    const RunResult eager = train(ImplPolicy::Native, false, kind);
    const RunResult graphed = train(ImplPolicy::Native, true, kind);
    EXPECT_EQ(eager.graphs.captured, 0);
    EXPECT_EQ(eager.graphs.replayed, 0);
    // One graph for the full batch (captured at step 2), one for the last (epoch 2).
    EXPECT_EQ(graphed.graphs.captured, 2);
    EXPECT_EQ(graphed.graphs.replayed, 9 * 3 - 2);  // all but the two uncaptured firsts
    // The step moves nothing it need not: the Flatten is a view and the loss writes the
    // logits' gradient where backward reads it, so the graph holds kernels and no copies.
    EXPECT_EQ(graphed.graphs.nodes.copies, 0);
    EXPECT_GT(graphed.graphs.nodes.kernels, 10);
    EXPECT_EQ(eager.graphs.nodes.total(), 0);
    ASSERT_EQ(eager.weights.values.size(), graphed.weights.values.size());
    EXPECT_EQ(0, std::memcmp(eager.weights.values.data(), graphed.weights.values.data(),
                             eager.weights.values.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(eager.weights.state.data(), graphed.weights.state.data(),
                             eager.weights.state.size() * sizeof(float)));
    ASSERT_EQ(eager.history.epochs.size(), graphed.history.epochs.size());
    for (size_t e = 0; e < eager.history.epochs.size(); ++e) {
      EXPECT_EQ(eager.history.epochs[e].loss, graphed.history.epochs[e].loss) << "epoch " << e;
      EXPECT_EQ(eager.history.epochs[e].val_loss, graphed.history.epochs[e].val_loss);
    }
  }
}

// One-cycle's momentum reaches the replayed updates: held at 0.9 it trains exactly as a
// fixed momentum of 0.9 does, and cycled it trains otherwise (were the step's momentum
// lost, both would read the same stale value).
TEST(CudaGraphs, ReplayedStepsReadEachStepsMomentum) {
  REQUIRE_GPU();
  const auto run = [](float sgd_momentum, bool cycle, double base, double max) {
    auto be = gpu(ImplPolicy::Native);
    const testing::OneCycleRun r = testing::one_cycle_sgd(*be, sgd_momentum, cycle, base, max);
    EXPECT_GT(r.replayed, 0);
    return r.weights;
  };
  const std::vector<float> fixed = run(0.9f, false, 0, 0);
  const std::vector<float> held = run(0.0f, true, 0.9, 0.9);
  const std::vector<float> cycled = run(0.0f, true, 0.85, 0.95);
  ASSERT_EQ(fixed.size(), held.size());
  EXPECT_EQ(0, std::memcmp(fixed.data(), held.data(), fixed.size() * sizeof(float)));
  EXPECT_NE(fixed, cycled);
}

// cuDNN's paths are captured too; cuDNN's algorithms need not be deterministic, so the
// check is that training still learns, not bit equality.
TEST(CudaGraphs, TheCudnnPathCapturesAndLearns) {
  REQUIRE_GPU();
  const RunResult r = train(ImplPolicy::Cudnn, true, OptimizerKind::Adam);
  EXPECT_EQ(r.graphs.captured, 2);
  EXPECT_LT(r.history.epochs.back().loss, r.history.epochs.front().loss);
}

// `cnn profile`'s steps (perf::TrainStep) replayed from a graph do what launched ones do.
TEST(CudaGraphs, ProfiledStepsReplayedEqualLaunchedOnes) {
  REQUIRE_GPU();
  const Dataset d = testing::quadrant_dataset(96, 4);
  auto steps = [&](bool graphs, int64_t* replayed) {
    auto be = gpu(ImplPolicy::Native);
    Model m = testing::small_stochastic_model();
    perf::TrainStep step(m, *be, d, 16, OptimizerConfig{}, 7);
    for (int i = 0; i < 5; ++i) step.run(graphs);
    *replayed = step.replayed();
    return step.parameters().snapshot();
  };
  int64_t replayed_with = 0, replayed_without = 0;
  const Parameters::Snapshot a = steps(true, &replayed_with), b = steps(false, &replayed_without);
  EXPECT_EQ(replayed_with, 4);  // the first launched; the second captured, then replayed
  EXPECT_EQ(replayed_without, 0);
  ASSERT_EQ(a.values.size(), b.values.size());
  EXPECT_EQ(0, std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)));
}

TEST(CudaGraphs, ACaptureThatAllocatesFailsCleanly) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  const Tensor kept = be->zeros(Shape{64});
  std::unique_ptr<Backend::StepGraph> g = be->capture([&] {
    be->fill(kept, 1.0f);
    const Tensor fresh = be->empty(Shape{1 << 20});  // refused: the graph would keep it
    be->fill(fresh, 2.0f);
  });
  EXPECT_EQ(g, nullptr);
  // Nothing of the failed capture ran, and the stream works as before.
  be->fill(kept, 3.0f);
  const Tensor host = be->to_host(kept);
  for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(host.host()[i], 3.0f);
}

TEST(CudaGraphs, AReplaySeesTheScalarsSetBeforeIt) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  const int64_t n = 4;
  Tensor src = Tensor::empty_host(Shape{n, 1});
  for (int64_t i = 0; i < n; ++i) src.host()[i] = static_cast<float>(10 * (i + 1));
  const Tensor d_src = be->to_device(src);
  const Tensor w = be->zeros(Shape{1}), grad = be->to_device(src).view(0, Shape{1});
  const Tensor dst = be->zeros(Shape{1, 1});
  const IndexBuffer order = be->upload_indices({3, 2, 1, 0});
  const cnnk::StepScalars* live = be->step_scalars();
  be->set_step({order.get(), 0, 0.0f});
  const auto body = [&] {
    be->gather_rows(d_src.data(), 1, cnnk::Live<const int32_t*>(nullptr, &live->rows), 1,
                    dst.data());
    be->sgd_update(1, SgdHyper{}, cnnk::Live<float>(0.0f, &live->rate),
                   cnnk::Live<float>(0.0f, &live->momentum), w.data(), grad.data(), nullptr);
  };
  // Once uncaptured first (at rate 0: w stays 0), as the trainer runs a step before it
  // captures one: a kernel's first launch may load its module (CUDA's lazy loading), which
  // is no part of what this test is about.
  body();
  auto g = be->capture(body);
  ASSERT_NE(g, nullptr);
  float w_expected = 0.0f;
  for (int64_t step = 0; step < n; ++step) {
    const float rate = 0.5f * static_cast<float>(step + 1);
    be->set_step({order.get() + step, step, rate});
    g->replay();
    w_expected -= rate * 10.0f;  // grad is src[0] = 10
    const Tensor got = be->to_host(dst);
    EXPECT_EQ(got.host()[0], static_cast<float>(10 * (n - step))) << "step " << step;
    EXPECT_EQ(be->to_host(w).host()[0], w_expected) << "step " << step;
  }
}

// A buffer the backend outgrows after a capture (here the loss's per-row scratch) stays
// the graph's: were it handed to a tensor, the next replay would write into the tensor.
TEST(CudaGraphs, ABufferOutgrownAfterACaptureIsNotHandedToATensor) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  const LossGeometry small{4, 3}, large{200, 3};
  const Tensor logits = be->zeros(Shape{large.rows, large.classes});
  const Tensor labels = be->zeros(Shape{large.rows});
  const Tensor dlogits = be->zeros(Shape{large.rows, large.classes});
  auto loss = [&](const LossGeometry& g) {
    be->softmax_xent(g, logits.data(), labels.data(), true, 1.0f, dlogits.data());
  };
  loss(small);  // sizes the per-row scratch for 4 rows, before the capture
  auto g = be->capture([&] { loss(small); });
  ASSERT_NE(g, nullptr);
  loss(large);  // outgrows it
  // Tensors of the old scratch's size, as many as the cache could hold of them.
  std::vector<Tensor> tensors;
  for (int i = 0; i < 16; ++i) {
    tensors.push_back(be->empty(Shape{2 * small.rows}));
    be->fill(tensors.back(), 7.0f);
  }
  g->replay();
  for (const Tensor& t : tensors) {
    const Tensor h = be->to_host(t);
    for (int64_t i = 0; i < h.numel(); ++i) ASSERT_EQ(h.host()[i], 7.0f) << i;
  }
}

TEST(CudaGraphs, TheAllocatorHoldsBlocksBackUntilTheLastGraphIsGone) {
  REQUIRE_GPU();
  cuda::DeviceAllocator a(0);
  void* old_block = a.allocate(4096, "a workspace");
  a.graph_created();
  a.graph_created();
  a.release_after_graphs(old_block);
  void* fresh = a.allocate(4096, "a tensor");
  EXPECT_NE(fresh, old_block);
  a.graph_destroyed();
  void* another = a.allocate(4096, "another tensor");
  EXPECT_NE(another, old_block);
  a.graph_destroyed();
  void* reused = a.allocate(4096, "a third tensor");
  EXPECT_EQ(reused, old_block);  // back in the cache
  for (void* p : {fresh, another, reused}) a.release(p);
  // With no graph alive it goes back at once.
  a.release_after_graphs(a.allocate(4096, "x"));
  EXPECT_EQ(a.stats().in_use, 0u);
}

}  // namespace
}  // namespace cnn
