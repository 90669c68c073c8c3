#include "engine/perf/step_profile.h"

#include <map>
#include <utility>

#include "engine/core/error.h"
#include "engine/perf/layer_ops.h"

namespace cnn::perf {
namespace {

// Marks the backend's timeline around every layer pass.
class LayerTimer final : public ExecutorObserver {
 public:
  explicit LayerTimer(Backend::Timeline& timeline) : timeline_(timeline) {}
  void before(const Node& /*node*/, LayerPass /*pass*/) override { open_ = timeline_.mark(); }
  void after(const Node& node, LayerPass pass) override {
    spans.push_back({node.id, pass, open_, timeline_.mark()});
  }

  struct Span {
    int node;
    LayerPass pass;
    int from, to;
  };
  std::vector<Span> spans;

 private:
  Backend::Timeline& timeline_;
  int open_ = -1;
};

// The op passes a layer's backward runs: the weight gradient where the layer trains, the
// input gradient where the executor wants one (not for the model's input).
std::vector<OpPass> backward_passes(const LayerOp& op, const Node& node, const Executor& exec) {
  bool trainable = false;
  for (const ParamSpec& p : node.params) trainable = trainable || p.trainable;
  const int input = node.inputs.empty() ? 0 : node.inputs[0];
  const bool input_grad = input >= 1 && exec.has_gradient(input);
  std::vector<OpPass> ran;
  if (op.family == "conv2d" || op.family == "dense") {
    if (trainable)
      ran.push_back(op.family == "conv2d" ? OpPass::BackwardFilter : OpPass::BackwardWeights);
    if (input_grad) ran.push_back(OpPass::BackwardData);
  } else if (op.family == "pool2d") {
    if (input_grad) ran.push_back(OpPass::Backward);
  } else if (op.family == "batchnorm" && trainable) {
    // A frozen batch norm's backward is a per-channel scale, not this op: no cost.
    ran.push_back(OpPass::Backward);
  }
  return ran;
}

// The cost and the implementation of one layer pass, from the op passes it ran.
void describe_pass(const Backend& backend, const LayerOp& op, const std::vector<OpPass>& ran,
                   LayerPassTime& out) {
  if (ran.empty()) return;
  OpCost sum;
  for (OpPass p : ran) {
    const OpCost c = op.cost(p);
    sum.flops += c.flops;
    sum.bytes += c.bytes;
    const std::string impl = implementation_of(backend, op, p);
    if (out.impl.find(impl) == std::string::npos)
      out.impl += (out.impl.empty() ? "" : " + ") + impl;
  }
  out.cost = sum;
}

}  // namespace

std::string layer_pass_name(LayerPass pass) {
  return pass == LayerPass::kForward ? "forward" : "backward";
}

double StepProfile::other_ms() const {
  double layers = 0;
  for (const LayerPassTime& p : passes) layers += p.ms;
  return observed_step_ms - layers;
}

StepProfile profile_steps(TrainStep& step, const Model& model, const ProfileOptions& options) {
  CNN_CHECK(options.warmup >= 0 && options.steps >= 1, ConfigError,
            "profiling needs warmup >= 0 and steps >= 1, got {} and {}", options.warmup,
            options.steps);
  Executor& exec = step.executor();
  Backend& backend = exec.backend();
  StepProfile prof;
  prof.batch = step.batch();
  const int warmup = options.warmup_steps(!backend.device().is_host());
  prof.warmup = warmup;
  prof.steps = options.steps;

  // Warm-up: the first step allocates and chooses implementations, the second captures
  // the graph (when asked for and possible), the rest replay it.
  for (int i = 0; i < warmup; ++i) step.run(options.cuda_graphs);
  {
    // The region the profilers capture: the steps, and two timeline marks (events, not
    // kernels) so the span excludes the profiler's own start and stop.
    const std::unique_ptr<Backend::Timeline> t = backend.timeline();
    const int64_t replayed_before = step.replayed();
    backend.profiler_start();
    const int from = t->mark();
    for (int i = 0; i < options.steps; ++i) step.run(options.cuda_graphs);
    const int to = t->mark();
    backend.profiler_stop();
    prof.step_ms = t->elapsed_ms(from, to) / options.steps;
    prof.step_replayed = step.replayed() - replayed_before == options.steps;
  }

  const std::unique_ptr<Backend::Timeline> t = backend.timeline();
  LayerTimer timer(*t);
  std::vector<std::pair<int, int>> steps;
  exec.set_observer(&timer);
  try {
    for (int i = 0; i < options.steps; ++i) {
      const int from = t->mark();
      step.run();
      steps.emplace_back(from, t->mark());
    }
  } catch (...) {
    exec.set_observer(nullptr);
    throw;
  }
  exec.set_observer(nullptr);
  for (const auto& [from, to] : steps) prof.observed_step_ms += t->elapsed_ms(from, to);
  prof.observed_step_ms /= options.steps;

  // Mean per step of each (node, pass), in the order of the first step.
  std::map<std::pair<int, LayerPass>, size_t> index;
  for (const LayerTimer::Span& s : timer.spans) {
    const auto key = std::make_pair(s.node, s.pass);
    auto it = index.find(key);
    if (it == index.end()) {
      const Node& node = model.nodes().at(static_cast<size_t>(s.node));
      LayerPassTime p;
      p.node = s.node;
      p.layer = node.name;
      p.type = node.layer->type();
      p.pass = s.pass;
      if (const std::optional<LayerOp> op = layer_op(model, s.node, prof.batch)) {
        const std::vector<OpPass> ran = s.pass == LayerPass::kForward
                                            ? std::vector<OpPass>{OpPass::Forward}
                                            : backward_passes(*op, node, exec);
        describe_pass(backend, *op, ran, p);
      }
      it = index.emplace(key, prof.passes.size()).first;
      prof.passes.push_back(std::move(p));
    }
    prof.passes[it->second].ms += t->elapsed_ms(s.from, s.to) / options.steps;
  }
  return prof;
}

}  // namespace cnn::perf
