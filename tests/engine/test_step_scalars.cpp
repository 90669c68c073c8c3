// The step scalars on the CPU backend (cnnk/step.h): a Live value pointing into the
// backend's step block is read when the op runs, so what set_step wrote last is what an
// op sees; the trainer drives every step through them, and on the CPU (which cannot
// capture a graph) asking for CUDA graphs changes nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/ops/dropout/dropout.h"
#include "engine/train/trainer.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

TEST(StepScalars, CpuOpsReadTheStepWrittenLast) {
  CpuBackend be;
  const cnnk::StepScalars* live = be.step_scalars();
  const std::vector<int32_t> order = {2, 0, 1};
  const std::vector<float> src = {10, 11, 20, 21, 30, 31};
  std::vector<float> dst(2);
  std::vector<float> w = {1.0f}, g = {2.0f};
  const cnnk::Live<const int32_t*> rows(nullptr, &live->rows);
  const cnnk::Live<float> rate(-100.0f, &live->rate);  // the value must not be used
  const cnnk::Live<float> momentum(-100.0f, &live->momentum);

  be.set_step({order.data(), 0, 0.25f, 0.0f});
  be.gather_rows(src.data(), 2, rows, 1, dst.data());
  EXPECT_EQ(dst, (std::vector<float>{30, 31}));
  be.sgd_update(1, SgdHyper{}, rate, momentum, w.data(), g.data(), nullptr);
  EXPECT_EQ(w[0], 0.5f);

  be.set_step({order.data() + 1, 1, 0.125f, 0.0f});
  be.gather_rows(src.data(), 2, rows, 1, dst.data());
  EXPECT_EQ(dst, (std::vector<float>{10, 11}));
  be.sgd_update(1, SgdHyper{}, rate, momentum, w.data(), g.data(), nullptr);
  EXPECT_EQ(w[0], 0.25f);

  // With a velocity, the momentum is the step's too: v = momentum * v - rate * g.
  float v = 0.5f;
  be.set_step({nullptr, 2, 0.125f, 0.5f});
  be.sgd_update(1, SgdHyper{}, rate, momentum, w.data(), g.data(), &v);
  EXPECT_EQ(v, 0.5f * 0.5f - 0.125f * 2.0f);  // 0
  EXPECT_EQ(w[0], 0.25f);
  be.set_step({nullptr, 3, 0.125f, 0.75f});
  v = 1.0f;
  be.sgd_update(1, SgdHyper{}, rate, momentum, w.data(), g.data(), &v);
  EXPECT_EQ(v, 0.75f - 0.25f);
  EXPECT_EQ(w[0], 0.75f);
  // Adam's beta1 too: m += (g - m) * (1 - beta1).
  float am = 0.0f, av = 0.0f;
  be.set_step({nullptr, 4, 0.0f, 0.75f});
  be.adam_update(1, AdamHyper{}, rate, momentum, w.data(), g.data(), &am, &av);
  EXPECT_EQ(am, 2.0f * 0.25f);
}

TEST(StepScalars, ALiveStepSeedsDropoutAsItsValueWould) {
  CpuBackend be;
  const cnnk::DropoutGeometry geo{2, 3, 5, false};
  const std::vector<float> x(30, 1.0f);
  std::vector<float> y_live(30), m_live(30), y_value(30), m_value(30);
  be.set_step({nullptr, 17, 0.0f});
  const cnnk::Live<int64_t> live_step(0, &be.step_scalars()->iteration);
  be.dropout_forward(geo, 0.5f, {9, 4, live_step}, x.data(), y_live.data(), m_live.data());
  ref::dropout_forward<float>(geo, 0.5f, cnnk::StepSeed{9, 4, 17}.value(), x.data(), y_value.data(),
                              m_value.data());
  EXPECT_EQ(m_live, m_value);
  // And another step draws another mask.
  ref::dropout_forward<float>(geo, 0.5f, cnnk::StepSeed{9, 4, 18}.value(), x.data(), y_value.data(),
                              m_value.data());
  EXPECT_NE(m_live, m_value);
}

TEST(StepScalars, CudaGraphsChangeNothingOnTheCpu) {
  auto run = [](bool graphs) {
    CpuBackend be;
    Model m = testing::small_stochastic_model();
    Trainer t(m, be, 5);
    FitOptions o;
    o.epochs = 2;
    o.batch_size = 20;
    o.validation_split = 0.2;
    o.augment.flip = true;
    o.augment.max_shift = 1;
    o.finite_check_steps = 4;  // the deferred checks: the path a GPU takes with graphs
    o.cuda_graphs = graphs;
    t.fit(testing::quadrant_dataset(150, 3), o);
    EXPECT_EQ(t.graph_stats().captured, 0);
    EXPECT_EQ(t.graph_stats().replayed, 0);
    return t.parameters().snapshot();
  };
  const Parameters::Snapshot with = run(true), without = run(false);
  ASSERT_EQ(with.values.size(), without.values.size());
  EXPECT_EQ(0, std::memcmp(with.values.data(), without.values.data(),
                           with.values.size() * sizeof(float)));
}

}  // namespace
}  // namespace cnn
