// Times each pass of one layer op alone on a backend, as a benchmark harness does: fresh
// tensors of the op's shapes on the backend's device (seeded uniform values), warm-up
// runs, then many timed repeats (Backend::time_ms), reported as the median.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/perf/layer_ops.h"

namespace cnn::perf {

struct BenchTiming {
  int warmup = 3;
  int repeats = 20;
  uint64_t seed = 1;  // the inputs' values
};

struct TimedPass {
  OpPass pass = OpPass::Forward;
  double median_ms = 0;
  std::vector<double> ms;  // every repeat
  std::string impl;        // what ran it (implementation_of after the runs)
};

// Every pass of `op` (LayerOp::passes(), forward first, so the backward passes see the
// forward's outputs), each timed on its own. Conv2D, pooling and batch normalization
// (the training forward); other families throw Error.
std::vector<TimedPass> time_layer_op(Backend& backend, const LayerOp& op, const BenchTiming& t);

// The median of a non-empty list (the mean of the middle two for an even count).
double median(std::vector<double> values);

}  // namespace cnn::perf
