// The executor's planned arena: buffers that share memory change no result. A planned
// executor and a keep_all one (every buffer its own memory, as separate allocations were)
// agree bit for bit on outputs, activations and parameter gradients over several steps,
// for chains and for branchy graphs (residual adds, inception concatenations).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/core/error.h"
#include "engine/core/rng.h"
#include "engine/graph/executor.h"
#include "engine/graph/layers.h"
#include "engine/graph/parameters.h"
#include "engine/graph/zoo.h"
#include "support/engine_fixtures.h"

namespace cnn {
namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.host(), b.host(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

Tensor random_host(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty_host(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.host()[i] = static_cast<float>(rng.uniform(-1, 1));
  return t;
}

// One model, parameters and executor: the planned one or the keep_all reference.
struct Side {
  Side(const std::string& name, Backend& be, bool keep_all)
      : model(build_model(name)), params(model, be) {
    params.initialize(5);
    ExecutorOptions o;
    o.keep_all = keep_all;
    exec = std::make_unique<Executor>(model, params, be, 4, o);
  }
  Model model;
  Parameters params;
  std::unique_ptr<Executor> exec;
};

class PlannedArena : public ::testing::TestWithParam<std::string> {};

TEST_P(PlannedArena, MatchesSeparateBuffersBitForBit) {
  CpuBackend be;
  Side planned(GetParam(), be, false), reference(GetParam(), be, true);
  const int64_t classes = planned.model.output_node().shape[0];
  Rng rng(17);
  // Three steps, the last with a smaller batch: the second and third run on memory the
  // previous step left behind, so a buffer read before it is written would show.
  for (int64_t n : {4, 4, 3}) {
    const Tensor x = random_host(Shape{n, 1, 28, 28}, rng);
    Tensor labels = Tensor::empty_host(Shape{n});
    for (int64_t i = 0; i < n; ++i) labels.host()[i] = static_cast<float>(rng.below(10));
    const uint64_t seed = 3;
    const int64_t step = n;
    const Tensor a = planned.exec->forward(x, true, seed, step);
    const Tensor b = reference.exec->forward(x, true, seed, step);
    ASSERT_TRUE(same_bits(a, b)) << "output, batch " << n;
    for (const Node& node : planned.model.nodes()) {
      if (!node.layer) continue;
      ASSERT_TRUE(same_bits(planned.exec->activation(node.id), reference.exec->activation(node.id)))
          << node.name << ", batch " << n;
    }
    Tensor dlogits = Tensor::empty_host(Shape{n, classes});
    be.softmax_xent({n, classes}, a.data(), labels.data(), true, 1.0f / static_cast<float>(n),
                    dlogits.data());
    planned.exec->backward(dlogits);
    reference.exec->backward(dlogits);
    ASSERT_TRUE(same_bits(planned.params.grads(), reference.params.grads()))
        << "parameter gradients, batch " << n;
    // Inference passes share the training plan.
    ASSERT_TRUE(same_bits(planned.exec->forward(x, false), reference.exec->forward(x, false)));
  }
  const MemoryReport p = planned.exec->memory_report(), r = reference.exec->memory_report();
  EXPECT_LT(p.planned_bytes, r.planned_bytes);
  EXPECT_LT(p.planned_bytes, p.naive_bytes);
  EXPECT_GE(r.planned_bytes, r.naive_bytes);  // keep_all: nothing shared
  EXPECT_EQ(p.naive_bytes, r.naive_bytes);
  EXPECT_EQ(p.buffers, r.buffers);
}

INSTANTIATE_TEST_SUITE_P(Zoo, PlannedArena,
                         ::testing::Values("mnist-cnn", "fashion-cnn", "mnist-functional",
                                           "resnet-small", "inception-small"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(PlannedArena, BackwardReusesActivationsSoReadingThemAfterwardNeedsKeepAll) {
  CpuBackend be;
  Model m = testing::small_stochastic_model();
  Parameters p(m, be);
  p.initialize(1);
  Executor exec(m, p, be, 2);
  const int first = 1, last = m.output_id();
  EXPECT_FALSE(exec.activations_readable());  // no pass yet
  Rng rng(2);
  const Tensor x = random_host(Shape{2, 1, 8, 8}, rng);
  const Tensor out = exec.forward(x, true);
  EXPECT_TRUE(exec.activations_readable());
  EXPECT_NO_THROW(exec.activation(first));
  EXPECT_THROW(exec.gradient(last), Error);  // gradients exist only within backward
  exec.backward(Tensor::zeros_host(out.shape()));
  EXPECT_FALSE(exec.activations_readable());
  EXPECT_THROW(exec.activation(first), Error);
  EXPECT_THROW(exec.gradient(first), Error);
  exec.forward(x, false);
  EXPECT_TRUE(exec.activations_readable());

  ExecutorOptions keep;
  keep.keep_all = true;
  Executor kept(m, p, be, 2, keep);
  kept.backward(Tensor::zeros_host(kept.forward(x, true).shape()));
  EXPECT_TRUE(kept.activations_readable());
  EXPECT_NO_THROW(kept.activation(first));
  EXPECT_NO_THROW(kept.gradient(first));
}

TEST(PlannedArena, AFrozenBaseGetsNoGradientMemory) {
  CpuBackend be;
  Model frozen = testing::small_stochastic_model(), open = testing::small_stochastic_model();
  // Everything but the head: no gradient flows past it, so the base needs none.
  std::vector<std::string> base;
  for (const Node& n : frozen.nodes())
    if (n.layer && n.id != frozen.output_id()) base.push_back(n.name);
  freeze_layers(frozen, base);
  Parameters pf(frozen, be), po(open, be);
  ExecutorOptions keep;
  keep.keep_all = true;
  Executor ef(frozen, pf, be, 8, keep), eo(open, po, be, 8, keep);
  EXPECT_LT(ef.memory_report().naive_bytes, eo.memory_report().naive_bytes);
  Rng rng(4);
  const Tensor out = ef.forward(random_host(Shape{8, 1, 8, 8}, rng), true);
  ef.backward(Tensor::zeros_host(out.shape()));
  EXPECT_THROW(ef.gradient(1), Error);
  EXPECT_NO_THROW(ef.gradient(frozen.output_id()));
}

// The node of `m` named `name`.
const Node& node_named(const Model& m, const std::string& name) {
  for (const Node& n : m.nodes())
    if (n.name == name) return n;
  throw Error("no node " + name);
}

// A Flatten moves nothing: its output is its input's memory, and so is its gradient
// when it is the input's only reader. Where the input has other readers the gradient is
// its own (backward sums the readers' shares), and a Flatten of the model's input copies.
TEST(PlannedArena, FlattenIsAViewOfItsInputWhereItCanBe) {
  CpuBackend be;
  Model m("views");
  NodeRef x = m.input(Shape{2, 5, 5});
  NodeRef c = m.add(layers::conv2d(3, 3, "same", Activation::Tanh), x, "c");
  NodeRef p = m.add(layers::max_pool2d(2), c, "p");
  NodeRef f = m.add(layers::flatten(), p, "f");    // p's only reader
  NodeRef fc = m.add(layers::flatten(), c, "fc");  // c is also read by p
  NodeRef fx = m.add(layers::flatten(), x, "fx");  // the model's input
  NodeRef d = m.add(layers::dense(4), {f}, "d");
  NodeRef dc = m.add(layers::dense(4), {fc}, "dc");
  NodeRef dx = m.add(layers::dense(4), {fx}, "dx");
  m.finish(m.add(layers::add(), {d, dc, dx}, "sum"));
  Parameters params(m, be);
  params.initialize(2);
  ExecutorOptions keep;
  keep.keep_all = true;  // to read gradients after backward
  Executor exec(m, params, be, 3, keep);
  Rng rng(6);
  const Tensor out = exec.forward(random_host(Shape{3, 2, 5, 5}, rng), true);
  exec.backward(random_host(out.shape(), rng));
  const auto id = [&](const char* name) { return node_named(m, name).id; };
  const auto act = [&](const char* name) { return exec.activation(id(name)).data(); };
  const auto grad = [&](const char* name) { return exec.gradient(id(name)).data(); };
  EXPECT_EQ(act("f"), act("p"));
  EXPECT_EQ(grad("f"), grad("p"));
  EXPECT_EQ(act("fc"), act("c"));
  EXPECT_NE(grad("fc"), grad("c"));
  EXPECT_NE(act("fx"), nullptr);
  // Shared or not, the values are the input's.
  for (const char* name : {"f", "fc"}) {
    const Tensor a = exec.activation(id(name));
    const Tensor b = exec.activation(node_named(m, name).inputs[0]);
    ASSERT_EQ(a.numel(), b.numel());
    EXPECT_EQ(std::memcmp(a.host(), b.host(), static_cast<size_t>(a.numel()) * sizeof(float)), 0)
        << name;
  }
}

// A loss that writes its gradient where backward wants it (trainer.cpp does) gets the
// same parameter gradients as one that hands backward a tensor of its own to copy.
TEST(PlannedArena, AnOutputGradientWrittenInPlaceIsNotCopied) {
  CpuBackend be;
  Side in_place("fashion-cnn", be, false), copied("fashion-cnn", be, false);
  Rng rng(9);
  for (int64_t n : {4, 2}) {
    const Tensor x = random_host(Shape{n, 1, 28, 28}, rng);
    Tensor labels = Tensor::empty_host(Shape{n});
    for (int64_t i = 0; i < n; ++i) labels.host()[i] = static_cast<float>(rng.below(10));
    const Tensor a = in_place.exec->forward(x, true, 1, n);
    const Tensor b = copied.exec->forward(x, true, 1, n);
    const Tensor target = in_place.exec->output_gradient(n);
    Tensor dlogits = Tensor::empty_host(Shape{n, 10});
    be.softmax_xent({n, 10}, a.data(), labels.data(), true, 1.0f / static_cast<float>(n),
                    target.data());
    be.softmax_xent({n, 10}, b.data(), labels.data(), true, 1.0f / static_cast<float>(n),
                    dlogits.data());
    ASSERT_TRUE(same_bits(target, dlogits));
    in_place.exec->backward(target);
    copied.exec->backward(dlogits);
    ASSERT_TRUE(same_bits(in_place.params.grads(), copied.params.grads())) << "batch " << n;
  }
  EXPECT_THROW(in_place.exec->output_gradient(5), Error);  // past the planned batch
}

}  // namespace
}  // namespace cnn
