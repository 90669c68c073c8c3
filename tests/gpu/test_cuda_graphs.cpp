// Training steps captured into CUDA graphs (issue 4): a replayed step does exactly what
// the same step launched op by op does (bit for bit: every native kernel is deterministic
// and reads what changes per step from the step scalars), a capture refuses to allocate
// and leaves the backend usable, and a replay sees the scalars written before it.
// Without a usable GPU every test skips with the probe's reason.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/device.h"
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
// changes the rate every step, and a last batch smaller than the others (320 samples
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
  o.lr_schedule.kind = LrScheduleKind::Cosine;
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

// cuDNN's paths are captured too; cuDNN's algorithms need not be deterministic, so the
// check is that training still learns, not bit equality.
TEST(CudaGraphs, TheCudnnPathCapturesAndLearns) {
  REQUIRE_GPU();
  const RunResult r = train(ImplPolicy::Cudnn, true, OptimizerKind::Adam);
  EXPECT_EQ(r.graphs.captured, 2);
  EXPECT_LT(r.history.epochs.back().loss, r.history.epochs.front().loss);
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
  auto g = be->capture([&] {
    be->gather_rows(d_src.data(), 1, cnnk::Live<const int32_t*>(nullptr, &live->rows), 1,
                    dst.data());
    be->sgd_update(1, SgdHyper{}, cnnk::Live<float>(0.0f, &live->rate), w.data(), grad.data(),
                   nullptr);
  });
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

}  // namespace
}  // namespace cnn
