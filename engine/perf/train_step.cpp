#include "engine/perf/train_step.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/rng.h"

namespace cnn::perf {

TrainStep::TrainStep(Model& model, Backend& backend, const Dataset& train, int64_t batch,
                     const OptimizerConfig& optimizer, uint64_t seed)
    : backend_(backend),
      seed_(seed),
      batch_(std::min(batch, train.size())),
      batches_(0),
      row_(0),
      classes_(0),
      params_(model, backend) {
  CNN_CHECK(train.size() >= 1 && batch >= 1, ConfigError,
            "a training step needs data and a positive batch size ({} samples, batch {})",
            train.size(), batch);
  const Shape& out = model.output_node().shape;
  CNN_CHECK(out.rank() == 1, ConfigError,
            "model '{}' must end in a flat output of class scores, not {}", model.name(),
            out.str());
  classes_ = static_cast<int>(out[0]);
  batches_ = train.size() / batch_;
  params_.initialize(seed);
  executor_ = std::make_unique<Executor>(model, params_, backend, batch_);
  optimizer_ = std::make_unique<Optimizer>(optimizer, params_, backend);
  images_ = backend.to_device(train.images);
  labels_ = backend.to_device(train.labels);
  row_ = images_.shape().per_item();
  x_ = backend.empty(images_.shape().with_batch(batch_));
  y_ = backend.empty(Shape{batch_});
  // The order fit's first epoch draws (trainer.cpp), so the gathers touch memory as
  // training does.
  std::vector<int32_t> order(static_cast<size_t>(train.size()));
  std::iota(order.begin(), order.end(), 0);
  Rng::stream(seed, 0x5AFF1E, 1).shuffle(order);
  order_ = backend.upload_indices(order);
  backend.metrics_reset();
}

// As fit's step (trainer.cpp): host bookkeeping around device work that reads the batch's
// rows, the step count and the rate from the step scalars, so that it can be captured once
// and replayed.
void TrainStep::run(bool use_graph) {
  backend_.set_step(optimizer_->step_scalars(order_.get() + (steps_ % batches_) * batch_));
  const cnnk::StepScalars* live = backend_.step_scalars();
  const auto body = [&] {
    const cnnk::Live<const int32_t*> rows(nullptr, &live->rows);
    backend_.gather_rows(images_.data(), row_, rows, batch_, x_.data());
    backend_.gather_rows(labels_.data(), 1, rows, batch_, y_.data());
    const Tensor logits = executor_->forward(x_, true, seed_, optimizer_->iterations(), live);
    const Tensor dlogits = executor_->output_gradient(batch_);
    backend_.softmax_xent({batch_, classes_}, logits.data(), y_.data(), true,
                          1.0f / static_cast<float>(batch_), dlogits.data());
    executor_->backward(dlogits);
    optimizer_->launch_update(live);
  };
  // The first step runs uncaptured (it allocates and chooses implementations); a graph is
  // captured at the next step that asks for one.
  if (use_graph && !graph_ && uncaptured_ >= 1 && !capture_failed_) {
    graph_ = backend_.capture(body);
    capture_failed_ = graph_ == nullptr;
  }
  if (use_graph && graph_) {
    graph_->replay();
    ++replayed_;
  } else {
    body();
    ++uncaptured_;
  }
  optimizer_->advance();
  ++steps_;
}

}  // namespace cnn::perf
