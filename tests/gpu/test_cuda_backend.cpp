// The CUDA backend as a whole, through the same interface the CPU backend serves: every
// seed model verified layer by layer against the CPU reference (native and cuDNN), the
// allocator's no-malloc-per-step promise, training, determinism, and clean errors.
// Without a usable GPU every test skips with the probe's reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/graph/executor.h"
#include "engine/graph/layers.h"
#include "engine/graph/zoo.h"
#include "engine/ops/conv2d/conv2d.h"
#include "engine/train/trainer.h"
#include "engine/train/verify.h"
#include "support/engine_fixtures.h"
#include "tests/gpu/gpu_test_util.h"

#if defined(CNNK_SIM)
#include "cnnk_sim_cudnn.h"
#include "cnnk_sim_device.h"
#endif

namespace cnn {
namespace {

std::unique_ptr<cuda::CudaBackend> gpu(ImplPolicy policy) { return testing::quiet_gpu(policy); }

Dataset random_images(int64_t n, uint64_t seed) {
  Dataset d;
  d.images = Tensor::empty_host(Shape{n, 1, 28, 28});
  d.labels = Tensor::empty_host(Shape{n});
  Rng rng(seed);
  for (int64_t i = 0; i < d.images.numel(); ++i)
    d.images.host()[i] = static_cast<float>(rng.uniform());
  for (int64_t i = 0; i < n; ++i) d.labels.host()[i] = static_cast<float>(rng.below(10));
  return d;
}

// Two epochs of `m` on the quadrant task (batch 16, seed 5) on a quiet backend with `o`:
// the trained parameters, and the implementation choices made.
Parameters::Snapshot fit_quadrant(cuda::CudaOptions o, Model m,
                                  std::map<std::string, std::string>* choices) {
  o.verbose = false;
  cuda::CudaBackend be(o);
  Trainer t(m, be, 5);
  FitOptions fo;
  fo.epochs = 2;
  fo.batch_size = 16;
  t.fit(testing::quadrant_dataset(200, 1), fo);
  *choices = be.implementation_choices();
  return t.parameters().snapshot();
}

// One convolution's three passes on a backend, for the cuDNN algorithm tests: the
// tensors are made on the device first, then `before_passes` runs (to shrink the
// simulated device, say), then forward, backward data and backward filter, whose results
// come back to the host in that order.
struct ConvPasses {
  cnnk::Conv2dGeometry g;
  Tensor x, w, dy;

  ConvPasses(int n, int c, int hw, int k, uint64_t seed) {
    g.n = n, g.c = c, g.h = g.w = hw, g.k = k, g.r = g.s = 3, g.p = g.q = hw - 2;
    x = testing::host_random(Shape{n, c, hw, hw}, seed);
    w = testing::host_random(Shape{k, c, 3, 3}, seed + 1);
    dy = testing::host_random(Shape{n, k, g.p, g.q}, seed + 2);
  }
  std::vector<Tensor> run(Backend& be, const std::function<void()>& before_passes = {}) const {
    const Tensor dx = be.to_device(x), dw = be.to_device(w), ddy = be.to_device(dy);
    const Tensor y = be.zeros(dy.shape()), gx = be.zeros(x.shape()), gw = be.zeros(w.shape());
    if (before_passes) before_passes();
    be.conv2d_forward(g, dx.data(), dw.data(), nullptr, y.data());
    be.conv2d_backward_data(g, ddy.data(), dw.data(), gx.data());
    be.conv2d_backward_filter(g, dx.data(), ddy.data(), gw.data(), nullptr);
    return {be.to_host(y), be.to_host(gx), be.to_host(gw)};
  }
  // What ran for `pass` ("forward", "backward-data", "backward-filter") on `be`.
  std::string choice(const cuda::CudaBackend& be, const char* pass) const {
    return be.implementation_choices().at(std::string("conv2d ") + pass + " " + describe(g));
  }
  // The three passes on `be` match the CPU reference's.
  void expect_reference(const std::vector<Tensor>& got) const {
    CpuBackend reference(true);
    const std::vector<Tensor> want = run(reference);
    for (size_t t = 0; t < want.size(); ++t)
      for (int64_t i = 0; i < want[t].numel(); ++i)
        ASSERT_NEAR(got[t].host()[i], want[t].host()[i], 1e-4f) << "pass " << t << " at " << i;
  }
};

#if defined(CNNK_SIM)
// While alive, the simulated cuDNN's first-ranked algorithm of each convolution pass fails
// with `status` when asked to run.
struct FirstAlgorithmFails {
  explicit FirstAlgorithmFails(cudnnStatus_t status) {
    cnnk_sim::set_cudnn_first_algorithm_run_status(status);
  }
  ~FirstAlgorithmFails() { cnnk_sim::set_cudnn_first_algorithm_run_status(CUDNN_STATUS_SUCCESS); }
  FirstAlgorithmFails(const FirstAlgorithmFails&) = delete;
  FirstAlgorithmFails& operator=(const FirstAlgorithmFails&) = delete;
};

// For the tests that shrink the simulated device: its default size (16 GiB) again at
// the end of the scope, or at once with restore().
struct DeviceMemoryRestored {
  ~DeviceMemoryRestored() { restore(); }
  static void restore() { cnnk_sim::set_device_memory(size_t(16) << 30); }
};
#endif

class VerifySeedModels : public ::testing::TestWithParam<std::tuple<std::string, ImplPolicy>> {};

TEST_P(VerifySeedModels, EveryLayerAndPassWithinTolerance) {
  REQUIRE_GPU();
  const auto& [model, policy] = GetParam();
  const Dataset b = random_images(5, 1);  // an odd batch
  CpuBackend reference(true);
  auto candidate = gpu(policy);
  const auto rows = verify_model(model, reference, *candidate, b.images, b.labels);
  for (const VerifyRow& r : rows)
    EXPECT_TRUE(r.ok) << model << " " << impl_policy_name(policy) << " " << r.layer << " " << r.pass
                      << " " << r.param << ": max_rel " << r.max_rel << ", rel_l2 " << r.rel_l2
                      << ", " << r.off << " of " << r.size << " off";
}

INSTANTIATE_TEST_SUITE_P(AllSeeds, VerifySeedModels,
                         ::testing::Combine(::testing::Values("fashion-cnn", "mnist-cnn",
                                                              "mnist-functional", "mnist-nopool"),
                                            ::testing::Values(ImplPolicy::Native,
                                                              ImplPolicy::Cudnn)),
                         [](const auto& param_info) {
                           std::string name = std::get<0>(param_info.param) + "_" +
                                              impl_policy_name(std::get<1>(param_info.param));
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

// Images on a black background, as Fashion-MNIST's: every window there ties, with the
// same values all the way back, and the simulated cuDNN gives a max-pooling window's
// gradient to the last of its tied inputs where the reference gives it to the first.
// Each layer runs on the reference's own tensors, so the choice stays in the pooling
// layer's row, judged by tie groups, and every row passes. In the chained run the choice
// reaches the earlier layers' input gradients (there the tied inputs lie apart), and
// verify judges that run by its logits and weight gradients alone, which the choice
// does not move: those tied inputs hold the same patches.
TEST(CudaBackend, VerifyHoldsOnImagesWithABlackBackground) {
  REQUIRE_GPU();
  Dataset b = random_images(2, 7);
  for (int64_t i = 0; i < b.images.numel(); ++i) {
    const int64_t h = i / 28 % 28, w = i % 28;
    if (h < 9 || h >= 19 || w < 9 || w >= 19) b.images.host()[i] = 0.f;
  }
  CpuBackend reference(true);
  auto candidate = gpu(ImplPolicy::Cudnn);
  int64_t ties = 0, chained = 0;
  for (const VerifyRow& r : verify_model("vgg-small", reference, *candidate, b.images, b.labels)) {
    EXPECT_TRUE(r.ok) << r.layer << " " << r.pass << " " << r.param << ": " << r.off << " of "
                      << r.size << " off, rel_l2 " << r.rel_l2;
    ties += r.tie_groups;
    chained += r.layer == "(model)";
  }
  EXPECT_GT(ties, 0);
  EXPECT_EQ(chained, 2);
}

TEST(CudaBackend, TrainsTheQuadrantTaskAndRepeatsExactly) {
  REQUIRE_GPU();
  auto run = [](Parameters::Snapshot* out) {
    auto be = gpu(ImplPolicy::Native);
    Model m = testing::small_stochastic_model();
    Trainer t(m, *be, 5);
    FitOptions o;
    o.epochs = 3;
    o.batch_size = 16;
    o.validation_split = 0.25;
    const History h = t.fit(testing::quadrant_dataset(400, 1), o);
    *out = t.parameters().snapshot();
    return h;
  };
  Parameters::Snapshot a, b;
  const History ha = run(&a), hb = run(&b);
  EXPECT_LT(ha.epochs.back().loss, ha.epochs.front().loss);
  EXPECT_GT(*ha.epochs.back().val_accuracy, 0.6);
  // The native kernels reduce in a fixed order: the same seed gives the same bits.
  EXPECT_EQ(ha.epochs.back().loss, hb.epochs.back().loss);
  EXPECT_EQ(0, std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)));
}

// The 128x128 tiles (--conv-tiles 128) run every output's reduction in the same order as
// the 64x64 ones (ascending, one FMA at a time, the same backward-filter chunks): training
// with either gives the same bits, and the choices name the kernel that ran. With --tf32
// they run on tensor cores (igemm-tf32-128).
TEST(CudaBackend, LargeTilesComputeWhatTheDefaultTilesDo) {
  REQUIRE_GPU();
  const auto run = [](bool large, std::map<std::string, std::string>* choices, bool tf32 = false) {
    cuda::CudaOptions o;
    o.policy = ImplPolicy::Native;
    o.large_tiles = large;
    o.tf32 = tf32;
    // A second convolution past the direct kernel's small reductions (C*R*S 72 > 64 with
    // more than 4 channels), so every pass of it runs the implicit GEMM.
    Model m("two-convs");
    m.input(Shape{1, 8, 8});
    m.add(layers::conv2d(8, 3, "same", Activation::Relu));
    m.add(layers::conv2d(6, 3, "same", Activation::Relu));
    m.add(layers::max_pool2d(2));
    m.add(layers::flatten());
    m.add(layers::dense(4, Activation::Softmax));
    m.finish();
    return fit_quadrant(o, std::move(m), choices);
  };
  std::map<std::string, std::string> small_choices, large_choices;
  const Parameters::Snapshot small = run(false, &small_choices);
  const Parameters::Snapshot large = run(true, &large_choices);
  const auto count = [](const std::map<std::string, std::string>& choices, const char* kernel) {
    int n = 0;
    for (const auto& [op, impl] : choices) n += impl.find(kernel) != std::string::npos;
    return n;
  };
  EXPECT_EQ(count(small_choices, "igemm-128"), 0);
  EXPECT_GE(count(large_choices, "igemm-128"), 3) << "forward, backward data and filter";
  ASSERT_EQ(small.values.size(), large.values.size());
  EXPECT_EQ(0, std::memcmp(small.values.data(), large.values.data(),
                           small.values.size() * sizeof(float)));

  std::map<std::string, std::string> tf32_choices;
  const Parameters::Snapshot tf32 = run(true, &tf32_choices, true);
  EXPECT_GE(count(tf32_choices, "igemm-tf32-128"), 3) << "forward, backward data and filter";
  for (const float v : tf32.values) ASSERT_TRUE(std::isfinite(v));
}

TEST(CudaBackend, NoDeviceMallocAfterTheFirstSteps) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  Model m = testing::small_stochastic_model();
  Trainer t(m, *be, 1);
  FitOptions o;
  o.batch_size = 16;
  const Dataset d = testing::quadrant_dataset(160, 2);
  t.fit(d, o);  // warms every shape, the last partial batch included
  const size_t mallocs = be->memory_stats().device_mallocs;
  o.epochs = 2;
  t.fit(d, o);
  EXPECT_EQ(be->memory_stats().device_mallocs, mallocs);
}

TEST(CudaBackend, OutOfMemorySaysWhatWasAskedAndWhatToChange) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  try {
    be->empty(Shape{int64_t{1} << 40});  // 4 TiB
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of GPU memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--batch-size"), std::string::npos) << msg;
    EXPECT_NE(msg.find("free"), std::string::npos) << msg;
  }
  // The backend still works afterwards.
  const Tensor t = be->zeros(Shape{4});
  EXPECT_EQ(be->to_host(t).host()[3], 0.0f);
}

TEST(CudaBackend, OutOfMemoryInAnExecutorNamesTheModelAndItsLargestBuffer) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  Model m = build_model("fashion-cnn");
  Parameters p(m, *be);
  try {
    Executor exec(m, p, *be, int64_t{1} << 24);  // 16M images: ~200 TB of activations
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    // One arena holds every activation and gradient (memory_plan.h).
    EXPECT_NE(msg.find("activations and gradients of model 'fashion-cnn'"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("the largest 'conv2d"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--batch-size"), std::string::npos) << msg;
  }
}

// One value per channel (batch 1 after a Dense layer): cuDNN's unbiased running variance
// would divide by zero, so even under --impl cudnn the native kernel runs, and says why.
TEST(CudaBackend, BatchNormOfOneValuePerChannelStaysNativeUnderCudnn) {
  REQUIRE_GPU();
  const cnnk::BatchNormGeometry g{1, 3, 1};
  Tensor x = Tensor::empty_host(Shape{1, 3});
  for (int i = 0; i < 3; ++i) x.host()[i] = static_cast<float>(i + 1);
  auto run = [&](Backend& be) {
    const Tensor dx = be.to_device(x), y = be.zeros(Shape{1, 3}), mean = be.zeros(Shape{3}),
                 var = be.zeros(Shape{3}), save_mean = be.zeros(Shape{3}),
                 save_invstd = be.zeros(Shape{3}), gamma = be.zeros(Shape{3}),
                 beta = be.zeros(Shape{3});
    be.fill(gamma, 1.0f);
    be.fill(var, 1.0f);
    be.batchnorm_forward_training(g, dx.data(), gamma.data(), beta.data(), 0.99f, 1e-3f,
                                  mean.data(), var.data(), y.data(), save_mean.data(),
                                  save_invstd.data());
    return std::vector<Tensor>{be.to_host(y), be.to_host(mean), be.to_host(var)};
  };
  CpuBackend reference(true);
  auto be = gpu(ImplPolicy::Cudnn);
  const std::vector<Tensor> want = run(reference), got = run(*be);
  for (size_t t = 0; t < want.size(); ++t)
    for (int64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(std::isfinite(got[t].host()[i])) << t << " " << i;
      EXPECT_NEAR(got[t].host()[i], want[t].host()[i], 1e-6f) << t << " " << i;
    }
  bool said = false;
  for (const auto& [id, choice] : be->implementation_choices())
    said = said || (id.rfind("batchnorm forward-training", 0) == 0 &&
                    choice.rfind("native (cuDNN does not support it: one value", 0) == 0);
  EXPECT_TRUE(said);
}

// cuDNN reads the saved mean and inverse deviation as a cache of its own forward, so each
// backward runs on the implementation whose forward wrote them: under auto (whose forward
// is native, being untimed) and under cudnn where cuDNN's forward cannot run, that is
// native. The gradients match the reference either way.
TEST(CudaBackend, BatchNormBackwardRunsWhereItsForwardRan) {
  REQUIRE_GPU();
  struct Case {
    ImplPolicy policy;
    cnnk::BatchNormGeometry g;
    const char* impl;
  };
  const Case cases[] = {{ImplPolicy::Auto, {4, 3, 5}, "native"},
                        {ImplPolicy::Cudnn, {4, 3, 5}, "cudnn"},
                        {ImplPolicy::Cudnn, {1, 3, 1}, "native"},
                        {ImplPolicy::Native, {4, 3, 5}, "native"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(impl_policy_name(c.policy) + " " + std::to_string(c.g.n));
    const Shape xs{c.g.n, c.g.c, c.g.spatial}, cs{c.g.c};
    Tensor x = Tensor::empty_host(xs), dy = Tensor::empty_host(xs);
    for (int64_t i = 0; i < x.numel(); ++i) {
      x.host()[i] = static_cast<float>((i * 7) % 11) - 5.0f;
      dy.host()[i] = static_cast<float>((i * 5) % 9) - 4.0f;
    }
    auto run = [&](Backend& be) {
      const Tensor dx_in = be.to_device(x), ddy = be.to_device(dy), y = be.zeros(xs),
                   mean = be.zeros(cs), var = be.zeros(cs), save_mean = be.zeros(cs),
                   save_invstd = be.zeros(cs), gamma = be.zeros(cs), beta = be.zeros(cs),
                   dx = be.zeros(xs), dgamma = be.zeros(cs), dbeta = be.zeros(cs);
      be.fill(gamma, 1.5f);
      be.fill(var, 1.0f);
      be.batchnorm_forward_training(c.g, dx_in.data(), gamma.data(), beta.data(), 0.99f, 1e-3f,
                                    mean.data(), var.data(), y.data(), save_mean.data(),
                                    save_invstd.data());
      be.batchnorm_backward(c.g, dx_in.data(), ddy.data(), gamma.data(), save_mean.data(),
                            save_invstd.data(), 1e-3f, dx.data(), dgamma.data(), dbeta.data());
      return std::vector<Tensor>{be.to_host(dx), be.to_host(dgamma), be.to_host(dbeta)};
    };
    CpuBackend reference(true);
    auto be = gpu(c.policy);
    const std::vector<Tensor> want = run(reference), got = run(*be);
    for (size_t t = 0; t < want.size(); ++t)
      for (int64_t i = 0; i < want[t].numel(); ++i)
        EXPECT_NEAR(got[t].host()[i], want[t].host()[i], 1e-4f) << t << " " << i;
    std::string forward, backward;
    for (const auto& [id, choice] : be->implementation_choices()) {
      if (id.rfind("batchnorm forward-training", 0) == 0) forward = choice;
      if (id.rfind("batchnorm backward", 0) == 0) backward = choice;
    }
    EXPECT_EQ(forward.substr(0, forward.find(' ')), c.impl) << forward;
    EXPECT_EQ(backward, std::string(c.impl) + " (as the forward: it reads its saved statistics)");
  }
}

TEST(CudaBackend, DilatedConvolutionFallsBackToCudnnAndSaysSo) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  Conv2dParams p;
  p.filters = 4;
  p.dilation_h = p.dilation_w = 2;
  Model m("dilated");
  m.input(Shape{1, 12, 12});
  m.add(layers::conv2d(p, Activation::Relu));
  m.add(layers::flatten());
  m.add(layers::dense(3, Activation::Softmax));
  m.finish();
  Trainer t(m, *be, 1);
  t.predict(Tensor::zeros_host(Shape{2, 1, 12, 12}));
  bool fallback = false;
  for (const auto& [op, choice] : be->implementation_choices())
    if (op.rfind("conv2d forward", 0) == 0 && choice.rfind("cudnn (", 0) == 0 &&
        choice.find("native does not support it: dilation") != std::string::npos)
      fallback = true;
  EXPECT_TRUE(fallback);
  EXPECT_EQ(be->impl_name("conv2d"), "cudnn");
}

// --deterministic keeps cuDNN to the algorithms it reports deterministic and to its
// deterministic max pooling: two runs from one seed give the same bits (on a GPU, the
// backward algorithms that add with atomics would not promise that), and every
// convolution pass names the cuDNN algorithm that ran, none "not deterministic".
TEST(CudaBackend, DeterministicCudnnRepeatsExactlyOnDeterministicAlgorithms) {
  REQUIRE_GPU();
  cuda::CudaOptions o;
  o.policy = ImplPolicy::Cudnn;
  o.deterministic = true;
  std::map<std::string, std::string> choices, again;
  const Parameters::Snapshot a = fit_quadrant(o, testing::small_stochastic_model(), &choices);
  const Parameters::Snapshot b = fit_quadrant(o, testing::small_stochastic_model(), &again);
  int convs = 0;
  for (const auto& [op, choice] : choices) {
    if (op.rfind("conv2d ", 0) != 0) continue;
    ++convs;
    EXPECT_EQ(choice.rfind("cudnn (", 0), 0u) << op << ": " << choice;
    EXPECT_EQ(choice.find("not deterministic"), std::string::npos) << op << ": " << choice;
  }
  EXPECT_GE(convs, 2) << "forward and backward-filter at least";
  ASSERT_EQ(a.values.size(), b.values.size());
  EXPECT_EQ(0, std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)));
}

// Under --deterministic, auto would time both implementations, and timings (so the choices,
// so the bits) differ between runs: it runs native where native supports a layer instead.
TEST(CudaBackend, DeterministicAutoChoosesWithoutTiming) {
  REQUIRE_GPU();
  cuda::CudaOptions o;
  o.policy = ImplPolicy::Auto;
  o.verbose = false;
  o.deterministic = true;
  cuda::CudaBackend be(o);
  Model m = build_model("mnist-cnn");
  Trainer t(m, be, 1);
  t.predict(random_images(8, 4).images, 8);
  int convs = 0;
  for (const auto& [op, choice] : be.implementation_choices()) {
    EXPECT_EQ(choice.find("timed"), std::string::npos) << op << ": " << choice;
    if (op.rfind("conv2d forward", 0) == 0) {
      EXPECT_EQ(choice.rfind("native", 0), 0u) << op << ": " << choice;
      ++convs;
    }
  }
  EXPECT_EQ(convs, 2);
}

// cuDNN's algorithm choice, on the simulated library's heuristics (sim_cudnn_conv.cpp: a
// workspace-hungry algorithm first, then a lean one, which for the backward passes is
// algorithm 0, not deterministic, as cuDNN documents): with no workspace the lean one
// runs and computes what the reference does, the log says what was passed over and why,
// and the choice says the algorithm is not deterministic; asked to be deterministic with
// no workspace, backward data has no algorithm left and says what to change. A GPU's
// heuristics offer other lists, so this runs on the simulator only.
TEST(CudaBackend, CudnnAlgorithmsFollowTheWorkspaceBudgetAndDeterminism) {
#if !defined(CNNK_SIM)
  GTEST_SKIP() << "the expectations are those of the simulated cuDNN's heuristics";
#endif
  REQUIRE_GPU();
  const ConvPasses conv(2, 3, 7, 4, 1);
  cuda::CudaOptions o = testing::quiet_options(ImplPolicy::Cudnn);
  o.workspace_limit = 0;
  cuda::CudaBackend lean(o);
  conv.expect_reference(conv.run(lean));
  const std::vector<std::string> log = lean.cudnn_log();
  ASSERT_EQ(log.size(), 3u);
  for (const std::string& line : log)
    EXPECT_NE(line.find("bytes of workspace, over the budget of 0; using"), std::string::npos)
        << line;
  EXPECT_EQ(conv.choice(lean, "forward"), "cudnn (implicit-gemm)");
  EXPECT_EQ(conv.choice(lean, "backward-data"), "cudnn (algo-0, not deterministic)");
  EXPECT_EQ(conv.choice(lean, "backward-filter"), "cudnn (algo-0, not deterministic)");

  o.deterministic = true;
  cuda::CudaBackend strict(o);
  try {
    conv.run(strict);
    FAIL() << "a deterministic backward pass ran without workspace";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no deterministic algorithm for conv2d backward-data"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("algo-0 is not deterministic"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--workspace-mb"), std::string::npos) << msg;
  }
}

// An algorithm that the heuristics list but that refuses the problem when asked to run
// it (a NOT_SUPPORTED status from the pass's own call): the next one in the list runs in
// its place, computes what the reference does, stays chosen, and the log says why; where
// the next ones are all passed over too, the error names the refusal. The simulated
// cuDNN is told to refuse; a real one does so only on some GPUs and versions.
TEST(CudaBackend, CudnnAlgorithmThatRefusesToRunGivesWayToTheNext) {
#if !defined(CNNK_SIM)
  GTEST_SKIP() << "only the simulated cuDNN can be told to refuse an algorithm";
#else
  REQUIRE_GPU();
  const FirstAlgorithmFails refusing(CUDNN_STATUS_NOT_SUPPORTED_SHAPE);
  const ConvPasses conv(2, 3, 6, 5, 4);
  cuda::CudaOptions o = testing::quiet_options(ImplPolicy::Cudnn);
  cuda::CudaBackend be(o);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    conv.expect_reference(conv.run(be));
  }
  // One line per pass, from its first run only: the second round ran the new choice. The
  // refusal is given with cuDNN's own message for it.
  const std::vector<std::string> log = be.cudnn_log();
  ASSERT_EQ(log.size(), 3u);
  const std::string refused = " refused to run (CUDNN_STATUS_NOT_SUPPORTED_SHAPE: ";
  const std::string why = " refuses this problem";
  EXPECT_NE(log[0].find("gemm" + refused + "cudnnConvolutionForward: algorithm 2" + why),
            std::string::npos)
      << log[0];
  EXPECT_NE(log[0].find("); using implicit-gemm"), std::string::npos) << log[0];
  for (const std::string& line : {log[1], log[2]}) {
    EXPECT_NE(line.find("algo-1" + refused), std::string::npos) << line;
    EXPECT_NE(line.find(why), std::string::npos) << line;
    EXPECT_NE(line.find("); using algo-0"), std::string::npos) << line;
  }
  EXPECT_EQ(conv.choice(be, "forward"), "cudnn (implicit-gemm)");
  EXPECT_EQ(conv.choice(be, "backward-data"), "cudnn (algo-0, not deterministic)");

  o.deterministic = true;
  cuda::CudaBackend strict(o);
  try {
    conv.run(strict);
    FAIL() << "backward data ran with its only deterministic algorithm refusing";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no deterministic algorithm for conv2d backward-data"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("algo-1" + refused), std::string::npos) << msg;
    EXPECT_NE(msg.find("); algo-0 is not deterministic"), std::string::npos) << msg;
  }
#endif
}

// A refusal that comes from a failed launch inside cuDNN (too much shared memory asked)
// leaves that launch's error in the runtime, where the next cudaGetLastError finds it: the
// engine takes it as part of the refusal, so the native kernels launched after the pass
// (here a whole native run of the same convolution) do not report it as their own.
TEST(CudaBackend, ARefusedCudnnLaunchLeavesNoErrorForTheNextKernel) {
#if !defined(CNNK_SIM)
  GTEST_SKIP() << "only the simulated cuDNN can be told to refuse an algorithm";
#else
  REQUIRE_GPU();
  const FirstAlgorithmFails refusing(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT);
  const ConvPasses conv(2, 3, 6, 5, 4);
  cuda::CudaBackend cudnn(testing::quiet_options(ImplPolicy::Cudnn));
  conv.expect_reference(conv.run(cudnn));
  EXPECT_EQ(cudnn.cudnn_log().size(), 3u);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  cuda::CudaBackend native(testing::quiet_options(ImplPolicy::Native));
  conv.expect_reference(conv.run(native));
#endif
}

// A NOT_SUPPORTED status that says the installation is at fault (here kernels built for
// other GPUs), not the problem: every algorithm would meet it, so the pass fails at once
// with cuDNN's status and message rather than trying the rest and blaming the workspace;
// under --impl auto, native takes the layer.
TEST(CudaBackend, CudnnInstallationFaultFailsThePassAtOnce) {
#if !defined(CNNK_SIM)
  GTEST_SKIP() << "only the simulated cuDNN can be told to fail an algorithm";
#else
  REQUIRE_GPU();
  const FirstAlgorithmFails broken(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH);
  const ConvPasses conv(2, 3, 6, 5, 4);
  cuda::CudaBackend be(testing::quiet_options(ImplPolicy::Cudnn));
  try {
    conv.run(be);
    FAIL() << "a pass ran past an installation fault";
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cudnnConvolutionForward failed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH: "), std::string::npos) << msg;
    EXPECT_EQ(msg.find("--workspace-mb"), std::string::npos) << msg;
  }
  EXPECT_TRUE(be.cudnn_log().empty());

  // Under --impl auto the failure costs cuDNN the choice, not the run: native runs every
  // pass, and the choice says why.
  cuda::CudaBackend automatic(testing::quiet_options(ImplPolicy::Auto));
  conv.expect_reference(conv.run(automatic));
  for (const char* pass : {"forward", "backward-data", "backward-filter"}) {
    const std::string choice = conv.choice(automatic, pass);
    EXPECT_EQ(choice.rfind("native (", 0), 0u) << choice;
    EXPECT_NE(choice.find("; timed: native "), std::string::npos) << choice;
    EXPECT_NE(choice.find(" ms; cudnn failed: cudnnConvolution"), std::string::npos) << choice;
    EXPECT_NE(choice.find("CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH"), std::string::npos) << choice;
  }
#endif
}

// A workspace within the budget that the GPU has no room for: the algorithm that needs it
// gives way to one that needs none, which computes what the reference does, and the log
// says why with the allocator's own message. The simulated device is shrunk to what the
// tensors take plus 256 KiB, where the simulated cuDNN's workspace-hungry algorithms
// (first in its heuristics) need at least 1 MiB.
TEST(CudaBackend, CudnnWorkspaceTheGpuHasNoRoomForGivesWayToALeanerAlgorithm) {
#if !defined(CNNK_SIM)
  GTEST_SKIP() << "only the simulated device can be shrunk";
#else
  REQUIRE_GPU();
  const DeviceMemoryRestored restored;
  const ConvPasses conv(2, 3, 6, 5, 7);
  cuda::CudaBackend be(testing::quiet_options(ImplPolicy::Cudnn));
  conv.expect_reference(conv.run(be, [] {
    cnnk_sim::set_device_memory(cnnk_sim::device_memory_in_use() + (size_t(256) << 10));
  }));
  const std::vector<std::string> log = be.cudnn_log();
  ASSERT_EQ(log.size(), 3u);
  const std::string no_room =
      " bytes of workspace, which the GPU has no room for (out of GPU memory";
  for (const std::string& line : log) EXPECT_NE(line.find(no_room), std::string::npos) << line;
  EXPECT_NE(log[0].find("; using implicit-gemm (0 bytes)"), std::string::npos) << log[0];
  EXPECT_NE(log[1].find("; using algo-0 (0 bytes)"), std::string::npos) << log[1];
  EXPECT_NE(log[2].find("; using algo-0 (0 bytes)"), std::string::npos) << log[2];
#endif
}

// The native kernels' workspace grows to the largest need; a growth the GPU has no room
// for fails that pass with the allocator's message and leaves the backend as it was: a
// smaller need afterwards gets a buffer, not the size of one that was given back.
TEST(CudaBackend, AFailedWorkspaceGrowthLeavesTheBackendUsable) {
#if !defined(CNNK_SIM)
  GTEST_SKIP() << "only the simulated device can be shrunk";
#else
  REQUIRE_GPU();
  const DeviceMemoryRestored restored;
  const ConvPasses small(2, 3, 6, 6, 4), big(2, 3, 28, 6, 5);
  ASSERT_GT(cnnk::conv2d_backward_filter_workspace_bytes(small.g), 0u);
  ASSERT_GT(cnnk::conv2d_backward_filter_workspace_bytes(big.g),
            cnnk::conv2d_backward_filter_workspace_bytes(small.g) + 4096);
  cuda::CudaBackend be(testing::quiet_options(ImplPolicy::Native));
  small.expect_reference(small.run(be));
  try {
    big.run(be, [] { cnnk_sim::set_device_memory(cnnk_sim::device_memory_in_use() + 4096); });
    FAIL() << "the backward filter's workspace grew past the device";
  } catch (const OutOfDeviceMemory& e) {
    EXPECT_NE(std::string(e.what()).find("the native kernels' workspace"), std::string::npos)
        << e.what();
  }
  DeviceMemoryRestored::restore();
  small.expect_reference(small.run(be));
#endif
}

// cuDNN's handle is made by the first op that runs on it: a model that runs native
// throughout never loads cuDNN (nor takes its memory); one under --impl cudnn does.
TEST(CudaBackend, CudnnStartsOnlyWhenAnOpRunsOnIt) {
  REQUIRE_GPU();
  for (const ImplPolicy policy : {ImplPolicy::Native, ImplPolicy::Cudnn}) {
    SCOPED_TRACE(impl_policy_name(policy));
    auto be = gpu(policy);
    EXPECT_FALSE(be->cudnn_started());
    Model m = build_model("mnist-cnn");
    Trainer t(m, *be, 1);
    t.predict(random_images(8, 4).images, 8);
    EXPECT_EQ(be->cudnn_started(), policy == ImplPolicy::Cudnn);
  }
}

TEST(CudaBackend, AutoTimesBothAndRecordsTheWinner) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Auto);
  Model m = build_model("mnist-cnn");
  Trainer t(m, *be, 1);
  t.predict(random_images(8, 4).images, 8);
  int timed = 0;
  for (const auto& [op, choice] : be->implementation_choices())
    if (op.rfind("conv2d forward", 0) == 0) {
      EXPECT_NE(choice.find("timed: native"), std::string::npos) << op << ": " << choice;
      ++timed;
    }
  EXPECT_EQ(timed, 2);  // mnist-cnn's two convolutions
}

TEST(CudaBackend, BadLabelsAreReportedWhenMetricsAreRead) {
  REQUIRE_GPU();
  auto be = gpu(ImplPolicy::Native);
  const Tensor logits = be->zeros(Shape{2, 3});
  Tensor labels = Tensor::empty_host(Shape{2});
  labels.host()[0] = 1.0f;
  labels.host()[1] = 7.0f;  // outside [0, 3)
  const Tensor dl = be->to_device(labels);
  be->metrics_reset();
  be->softmax_xent({2, 3}, logits.data(), dl.data(), true, 0.0f, nullptr);
  EXPECT_THROW(be->metrics_read(), DataError);
}

// Synchronizing after every launch (and so launching every step, uncaptured) changes
// when the work runs, not what it computes: the same bits as a captured run.
TEST(CudaBackend, SyncDebugTrainsToTheSameBits) {
  REQUIRE_GPU();
  std::map<std::string, std::string> choices;
  cuda::CudaOptions debug;
  debug.sync_debug = true;
  const Parameters::Snapshot a = fit_quadrant(debug, testing::small_stochastic_model(), &choices);
  const Parameters::Snapshot b =
      fit_quadrant(cuda::CudaOptions{}, testing::small_stochastic_model(), &choices);
  ASSERT_EQ(a.values.size(), b.values.size());
  EXPECT_EQ(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)), 0);
  ASSERT_EQ(a.state.size(), b.state.size());
  EXPECT_EQ(std::memcmp(a.state.data(), b.state.data(), a.state.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace cnn
