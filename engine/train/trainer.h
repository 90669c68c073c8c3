// Keras's fit / evaluate / predict over one executor. The dataset goes to the backend's
// device once; each step gathers its batch there from the epoch's shuffled order,
// runs forward, the fused softmax cross-entropy, backward and one optimizer update.
// Metrics accumulate on the device and are read once per epoch.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/executor.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/dataset.h"
#include "engine/train/early_stopping.h"
#include "engine/train/optimizer.h"

namespace cnn {

struct EpochLog {
  int epoch = 0;  // 1-based, as Keras prints it
  double loss = 0, accuracy = 0;
  std::optional<double> val_loss, val_accuracy;
  double seconds = 0;
};

struct History {
  std::vector<EpochLog> epochs;
  bool stopped_early = false;
  int best_epoch = 0;  // 1-based; 0 when not monitored
  bool restored_best = false;
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  double validation_split = 0.0;  // the last fraction of the training data, as Keras
  bool shuffle = true;
  EarlyStopping early_stopping;
  OptimizerConfig optimizer;
  // Called after every epoch (progress printing); may be empty.
  std::function<void(const EpochLog&, int epochs)> on_epoch_end;
  // Called after each batch with (batch index, batches in the epoch); may be empty.
  std::function<void(int64_t, int64_t)> on_batch_end;
};

// Keras's split: the first int(n * (1 - fraction)) samples train, the rest validate.
int64_t validation_split_index(int64_t n, double fraction);

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t count = 0;
};

class Trainer {
 public:
  // Initialises the model's parameters from `seed` on the backend.
  Trainer(Model& model, Backend& backend, uint64_t seed);

  History fit(const Dataset& train, const FitOptions& options);
  EvalResult evaluate(const Dataset& data, int64_t batch_size = 256);
  // Class probabilities [N, classes] on the host.
  Tensor predict(const Tensor& images, int64_t batch_size = 256);

  Parameters& parameters() { return params_; }
  Model& model() { return model_; }

 private:
  Executor& executor_for(int64_t batch);
  EvalResult evaluate_range(const Tensor& images, const Tensor& labels, int64_t begin,
                            int64_t count, int64_t batch_size);
  int classes() const;

  Model& model_;
  Backend& backend_;
  uint64_t seed_;
  Parameters params_;
  std::unique_ptr<Executor> executor_;
  Tensor dlogits_;
};

}  // namespace cnn
