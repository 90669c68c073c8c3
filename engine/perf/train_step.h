// One training step as fit runs it (gather the batch on the device, forward, fused
// softmax cross-entropy, backward, one optimizer update), on an executor of its own, so
// `cnn profile` can run steps one at a time and observe the executor's layer passes.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/backend/backend.h"
#include "engine/graph/executor.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/dataset.h"
#include "engine/train/optimizer.h"

namespace cnn::perf {

class TrainStep {
 public:
  // Initialises the parameters from `seed` and uploads `train` to the backend's device.
  // The batch is at most the data's size.
  TrainStep(Model& model, Backend& backend, const Dataset& train, int64_t batch,
            const OptimizerConfig& optimizer, uint64_t seed);

  // One step on the next full batch of a seeded shuffle of the data (wrapping around).
  // With use_graph, as training runs it: replayed from a CUDA graph captured at the second
  // such step (backends without graphs, or with sync_debug, run it launched).
  void run(bool use_graph = false);
  // Steps replayed from the graph so far.
  int64_t replayed() const { return replayed_; }
  // The captured step's nodes (zeros before a capture, or without one).
  Backend::GraphNodes graph_nodes() const {
    return graph_ ? graph_->nodes() : Backend::GraphNodes{};
  }

  Executor& executor() { return *executor_; }
  const Parameters& parameters() const { return params_; }
  int64_t batch() const { return batch_; }
  int64_t steps_run() const { return steps_; }

 private:
  Backend& backend_;
  uint64_t seed_;
  int64_t batch_, batches_, row_;
  int classes_;
  Parameters params_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Optimizer> optimizer_;
  Tensor images_, labels_, x_, y_;
  IndexBuffer order_;
  int64_t steps_ = 0, uncaptured_ = 0, replayed_ = 0;
  std::unique_ptr<Backend::StepGraph> graph_;
  bool capture_failed_ = false;
};

}  // namespace cnn::perf
