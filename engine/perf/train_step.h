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
  void run();

  Executor& executor() { return *executor_; }
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
  Tensor images_, labels_, x_, y_, dlogits_;
  IndexBuffer order_;
  int64_t steps_ = 0;
};

}  // namespace cnn::perf
