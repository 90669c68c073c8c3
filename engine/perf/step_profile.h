// `cnn profile`'s measurement: warm-up steps, then the measured steps between
// Backend::profiler_start and profiler_stop (what Nsight Systems and Nsight Compute
// capture, with nothing added to them), then the same number of steps again with the
// executor observed, each layer pass timed on the backend's timeline. The observed steps
// give the engine's own per-layer table, without perturbing the captured region. Steps
// run as launched, not replayed from a CUDA graph, so each shows every layer's kernels
// and NVTX ranges.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/graph/executor.h"
#include "engine/graph/model.h"
#include "engine/perf/op_cost.h"
#include "engine/perf/train_step.h"

namespace cnn::perf {

struct ProfileOptions {
  int warmup = 5;
  int steps = 20;
  // The measured steps as training runs them: replayed from a CUDA graph where the
  // backend captures one. The per-layer table comes from separate, launched steps (a
  // replay has no layer boundaries to mark).
  bool cuda_graphs = true;
  // The warm-up steps run: at least two where a graph is captured (one launched, one
  // captured); `captures`: the backend captures graphs (the CPU's does not).
  int warmup_steps(bool captures) const {
    return cuda_graphs && captures && warmup < 2 ? 2 : warmup;
  }
};

struct LayerPassTime {
  int node = 0;
  std::string layer, type;
  LayerPass pass = LayerPass::kForward;
  double ms = 0;  // mean per observed step
  // The work of the layer's op in this pass (for backward: of the passes that ran, the
  // input gradient only where one is needed); none for layers without a measured op
  // (activations, dropout, flatten, add, concatenate). A fused activation's elementwise
  // work is in the time, not in the cost.
  std::optional<OpCost> cost;
  std::string impl;  // what ran the op ("native", "openblas", ...); "" without an op
};

struct StepProfile {
  int64_t batch = 0;
  int warmup = 0, steps = 0;
  double step_ms = 0;                 // mean of the measured steps, unobserved
  bool step_replayed = false;         // whether they replayed a CUDA graph
  double observed_step_ms = 0;        // mean of the observed steps
  std::vector<LayerPassTime> passes;  // in the order they ran: forwards, then backwards
  // The observed step less its layer passes: the gather, the loss, the optimizer update.
  double other_ms() const;
};

StepProfile profile_steps(TrainStep& step, const Model& model, const ProfileOptions& options);

// "forward" / "backward".
std::string layer_pass_name(LayerPass pass);

}  // namespace cnn::perf
