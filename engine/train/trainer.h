// Keras's fit / evaluate / predict over one executor. The dataset goes to the backend's
// device once; each step gathers its batch there from the epoch's shuffled order,
// optionally augments it (flip, shift), runs forward, the fused softmax cross-entropy,
// backward and one optimizer update at the schedule's learning rate. Metrics accumulate
// on the device and are read at the end of each epoch, and a few times within it when
// progress is shown. A non-finite loss stops the run with the first layer whose output
// is not finite.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/core/error.h"
#include "engine/graph/executor.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/dataset.h"
#include "engine/train/callbacks.h"
#include "engine/train/early_stopping.h"
#include "engine/train/lr_schedule.h"
#include "engine/train/optimizer.h"

namespace cnn {

// Training-time augmentation, on the device after the batch gather (never on validation
// or test data): see cnnk/augment.h for the draws.
struct AugmentConfig {
  bool flip = false;  // random horizontal flip
  int max_shift = 0;  // random translation by up to this many pixels, zero fill
  bool enabled() const { return flip || max_shift > 0; }
  std::string describe() const;  // "flip, shift 2" or "none"
};

// The seed of step `step`'s augmentation draws (cnnk::augment_draw's seed is its value()).
cnnk::StepSeed augment_seed(uint64_t run_seed, cnnk::Live<int64_t> step);

struct FitOptions {
  int epochs = 1;  // the total, counting the epochs of a resumed run (Keras's epochs)
  int64_t batch_size = 32;
  double validation_split = 0.0;  // the last fraction of the training data, as Keras
  bool shuffle = true;
  EarlyStopping early_stopping;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  AugmentConfig augment;

  // Mid-epoch reads of the running loss and accuracy, for a progress bar: after every
  // epochs/progress_reads_per_epoch steps, or when progress_read_seconds have passed
  // since the last read. Off: metrics are read at the end of each epoch only.
  bool progress_reads = false;
  int progress_reads_per_epoch = 10;
  double progress_read_seconds = 0.5;
  // How often the loss is checked for NaN/Inf within an epoch: 0 chooses, which is every
  // step where reading the metrics is free (the CPU) and at the metric reads on a GPU;
  // 1 is every step; N > 1 at least every N steps. Between checks fit keeps a device copy
  // of the state at the last good check and, when a check fails, replays from it step by
  // step to find the failing batch.
  int64_t finite_check_steps = 0;
  // Capture each training step into a CUDA graph and replay it (where the backend can:
  // a GPU without sync_debug; steps with per-step finite checks run uncaptured). A batch
  // size is captured the second time it occurs, after a first step that allocates and
  // chooses every implementation.
  bool cuda_graphs = true;

  std::vector<FitCallback*> callbacks;
  // Called after every epoch; may be empty.
  std::function<void(const EpochLog&, int epochs)> on_epoch_end;
  // Called after each batch with (batch index, batches in the epoch); may be empty.
  std::function<void(int64_t, int64_t)> on_batch_end;
};

// The serialisable part of FitOptions (what a checkpoint stores to resume), and back:
// from_json sets those fields of `into` and leaves callbacks and read settings alone.
nlohmann::json fit_options_to_json(const FitOptions& o);
void fit_options_from_json(const nlohmann::json& j, FitOptions& into);

// Keras's split: the first int(n * (1 - fraction)) samples train, the rest validate.
int64_t validation_split_index(int64_t n, double fraction);

// A NaN or an infinity in the loss: says where (epoch, step) and which layer's output was
// the first not to be finite.
class TrainingDiverged : public Error {
 public:
  TrainingDiverged(std::string message, int epoch, int64_t step, std::string layer)
      : Error(std::move(message)), epoch_(epoch), step_(step), layer_(std::move(layer)) {}
  int epoch() const { return epoch_; }                 // 1-based
  int64_t step() const { return step_; }               // 1-based, within the epoch
  const std::string& layer() const { return layer_; }  // "" when no layer output was bad

 private:
  int epoch_;
  int64_t step_;
  std::string layer_;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t count = 0;
};

class Trainer {
 public:
  // Initialises the model's parameters from `seed` on the backend.
  Trainer(Model& model, Backend& backend, uint64_t seed);

  // Trains until options.epochs. With `resume`, continues the run it describes: weights,
  // optimizer state, schedule, early stopping and history are restored, and training
  // starts at epoch resume->epoch + 1.
  History fit(const Dataset& train, const FitOptions& options, const TrainState* resume = nullptr);
  EvalResult evaluate(const Dataset& data, int64_t batch_size = 256);
  // The same on images and labels already on the backend's device: upload once, evaluate
  // often (the test set after every epoch).
  EvalResult evaluate_on_device(const Tensor& images, const Tensor& labels,
                                int64_t batch_size = 256);
  // Class probabilities [N, classes] on the host.
  Tensor predict(const Tensor& images, int64_t batch_size = 256);

  Parameters& parameters() { return params_; }
  // How the training steps of the last fit ran: graphs captured, steps replayed from them.
  struct GraphStats {
    int64_t captured = 0, replayed = 0;
    Backend::GraphNodes nodes;  // of the full batch's graph (zeros: none captured)
  };
  GraphStats graph_stats() const { return graph_stats_; }
  // The activation and gradient memory the executor planned, and the batch it is planned
  // for (the largest that training or evaluation asked for); zeros before any pass.
  struct PlannedMemory {
    MemoryReport report;
    int64_t batch = 0;
  };
  PlannedMemory planned_memory() const {
    return executor_ ? PlannedMemory{executor_->memory_report(), executor_->max_batch()}
                     : PlannedMemory{};
  }
  Model& model() { return model_; }
  uint64_t seed() const { return seed_; }

 private:
  Executor& executor_for(int64_t batch);
  EvalResult evaluate_range(const Tensor& images, const Tensor& labels, int64_t begin,
                            int64_t count, int64_t batch_size);
  // After a forward whose loss was not finite: the parameters, the input and each
  // layer's output (in graph order) on the host; names the first layer that is not finite.
  std::string explain_non_finite(Executor& exec, const Tensor& input, std::string* layer);
  // Throws TrainingDiverged when a parameter holds a NaN or an infinity (a host scan).
  void check_parameters_finite(int epoch);
  // Validation found a non-finite loss: finds the batch and explains it.
  [[noreturn]] void diagnose_validation(const Tensor& images, const Tensor& labels, int64_t begin,
                                        int64_t count, int64_t batch_size, int epoch);
  int classes() const;

  Model& model_;
  Backend& backend_;
  uint64_t seed_;
  Parameters params_;
  std::unique_ptr<Executor> executor_;
  GraphStats graph_stats_;
};

}  // namespace cnn
