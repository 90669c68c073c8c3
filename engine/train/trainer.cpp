#include "engine/train/trainer.h"

#include <chrono>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"
#include "engine/core/rng.h"

namespace cnn {
namespace {

double monitored(const EpochLog& e, const std::string& monitor) {
  if (monitor == "loss") return e.loss;
  if (monitor == "accuracy") return e.accuracy;
  if (monitor == "val_loss") return e.val_loss.value();
  return e.val_accuracy.value();
}

}  // namespace

int64_t validation_split_index(int64_t n, double fraction) {
  return static_cast<int64_t>(static_cast<double>(n) * (1.0 - fraction));
}

Trainer::Trainer(Model& model, Backend& backend, uint64_t seed)
    : model_(model), backend_(backend), seed_(seed), params_(model, backend) {
  params_.initialize(seed);
}

int Trainer::classes() const {
  const Shape& out = model_.output_node().shape;
  CNN_CHECK(out.rank() == 1, ConfigError,
            "model '{}' must end in a flat output of class scores, not {}", model_.name(),
            out.str());
  return static_cast<int>(out[0]);
}

Executor& Trainer::executor_for(int64_t batch) {
  if (!executor_ || executor_->max_batch() < batch)
    executor_ = std::make_unique<Executor>(model_, params_, backend_, batch);
  return *executor_;
}

History Trainer::fit(const Dataset& train, const FitOptions& opt) {
  CNN_CHECK(opt.epochs >= 1, ConfigError, "epochs must be at least 1, got {}", opt.epochs);
  CNN_CHECK(opt.batch_size >= 1, ConfigError, "batch size must be at least 1, got {}",
            opt.batch_size);
  CNN_CHECK(opt.validation_split >= 0.0 && opt.validation_split < 1.0, ConfigError,
            "validation split must be in [0, 1), got {}", opt.validation_split);
  const int n_classes = classes();
  CNN_CHECK(train.classes <= n_classes, ConfigError,
            "the data has {} classes but model '{}' outputs {}", train.classes, model_.name(),
            n_classes);
  const int64_t n = train.size();
  // Keras: the validation data is the last fraction, taken before any shuffling.
  const int64_t n_train = validation_split_index(n, opt.validation_split);
  const int64_t n_val = n - n_train;
  CNN_CHECK(n_train >= 1, ConfigError, "no training samples left after a validation split of {}",
            opt.validation_split);
  CNN_CHECK(opt.validation_split == 0.0 || n_val >= 1, ConfigError,
            "validation split {} of {} samples leaves no validation samples", opt.validation_split,
            n);
  const EarlyStopping& es = opt.early_stopping;
  EarlyStopper stopper(es);
  CNN_CHECK(!es.enabled || n_val > 0 || es.monitor.rfind("val_", 0) != 0, ConfigError,
            "early stopping monitors '{}' but there is no validation split", es.monitor);

  // The whole dataset lives on the device for the run.
  const Tensor images = backend_.to_device(train.images);
  const Tensor labels = backend_.to_device(train.labels);
  const int64_t row = images.shape().per_item();
  Executor& exec = executor_for(opt.batch_size);
  Optimizer optimizer(opt.optimizer, params_, backend_);
  const Tensor batch_x = backend_.empty(images.shape().with_batch(opt.batch_size));
  const Tensor batch_y = backend_.empty(Shape{opt.batch_size});
  dlogits_ = backend_.empty(Shape{opt.batch_size, n_classes});

  History history;
  Parameters::Snapshot best_weights;
  std::vector<int32_t> order(static_cast<size_t>(n_train));
  const int64_t batches = (n_train + opt.batch_size - 1) / opt.batch_size;

  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), 0);
    if (opt.shuffle) Rng::stream(seed_, 0x5AFF1E, static_cast<uint64_t>(epoch)).shuffle(order);
    const IndexBuffer idx = backend_.upload_indices(order);
    backend_.metrics_reset();
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t begin = b * opt.batch_size;
      const int64_t count = std::min(opt.batch_size, n_train - begin);
      const Tensor x = batch_x.slice_batch(0, count), y = batch_y.slice_batch(0, count);
      backend_.gather_rows(images.data(), row, idx.get() + begin, count, x.data());
      backend_.gather_rows(labels.data(), 1, idx.get() + begin, count, y.data());
      const Tensor logits = exec.forward(x, true, seed_, optimizer.iterations());
      const Tensor dlogits = dlogits_.slice_batch(0, count);
      backend_.softmax_xent({count, n_classes}, logits.data(), y.data(), true,
                            1.0f / static_cast<float>(count), dlogits.data());
      exec.backward(dlogits);
      optimizer.step();
      if (opt.on_batch_end) opt.on_batch_end(b, batches);
    }
    const Metrics m = backend_.metrics_read();
    EpochLog log;
    log.epoch = epoch;
    log.loss = m.mean_loss();
    log.accuracy = m.accuracy();
    CNN_CHECK(std::isfinite(log.loss), Error,
              "training diverged: the loss of epoch {} is {} (try a lower learning rate)", epoch,
              log.loss);
    if (n_val > 0) {
      const EvalResult v = evaluate_range(images, labels, n_train, n_val, opt.batch_size);
      log.val_loss = v.loss;
      log.val_accuracy = v.accuracy;
    }
    log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history.epochs.push_back(log);
    if (opt.on_epoch_end) opt.on_epoch_end(log, opt.epochs);

    if (es.enabled) {
      const bool stop = stopper.update(epoch, monitored(log, es.monitor));
      history.best_epoch = stopper.best_epoch();
      if (stopper.improved() && es.restore_best_weights) best_weights = params_.snapshot();
      if (stop) {
        history.stopped_early = true;
        if (es.restore_best_weights) {
          params_.restore(best_weights);
          history.restored_best = true;
        }
        break;
      }
    }
  }
  return history;
}

EvalResult Trainer::evaluate_range(const Tensor& images, const Tensor& labels, int64_t begin,
                                   int64_t count, int64_t batch_size) {
  const int n_classes = classes();
  Executor& exec = executor_for(batch_size);
  backend_.metrics_reset();
  for (int64_t b = begin; b < begin + count; b += batch_size) {
    const int64_t k = std::min(batch_size, begin + count - b);
    const Tensor logits = exec.forward(images.slice_batch(b, k), false);
    backend_.softmax_xent({k, n_classes}, logits.data(), labels.slice_batch(b, k).data(), true,
                          0.0f, nullptr);
  }
  const Metrics m = backend_.metrics_read();
  return {m.mean_loss(), m.accuracy(), m.count};
}

EvalResult Trainer::evaluate(const Dataset& data, int64_t batch_size) {
  CNN_CHECK(batch_size >= 1, ConfigError, "batch size must be at least 1, got {}", batch_size);
  CNN_CHECK(data.size() >= 1, ConfigError, "nothing to evaluate: the dataset is empty");
  const Tensor images = backend_.to_device(data.images);
  const Tensor labels = backend_.to_device(data.labels);
  return evaluate_range(images, labels, 0, data.size(), batch_size);
}

Tensor Trainer::predict(const Tensor& host_images, int64_t batch_size) {
  const int n_classes = classes();
  const int64_t n = host_images.shape()[0];
  const Tensor images = backend_.to_device(host_images);
  Executor& exec = executor_for(batch_size);
  const Tensor probs = backend_.empty(Shape{n, n_classes});
  for (int64_t b = 0; b < n; b += batch_size) {
    const int64_t k = std::min(batch_size, n - b);
    const Tensor logits = exec.forward(images.slice_batch(b, k), false);
    const Tensor out = probs.slice_batch(b, k);
    if (model_.softmax_folded())
      backend_.activation_forward(Activation::Softmax, {k, n_classes, 1}, logits.data(),
                                  out.data());
    else
      backend_.copy(logits, out);
  }
  return backend_.to_host(probs);
}

}  // namespace cnn
