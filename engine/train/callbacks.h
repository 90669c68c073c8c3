// What fit reports while it runs, Keras-style: the per-epoch log and the history, the
// callbacks that see them (progress, CSV logging, checkpoints), and the state a
// checkpoint needs to resume a run exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/graph/parameters.h"
#include "engine/train/early_stopping.h"

namespace cnn {

struct EpochLog {
  int epoch = 0;  // 1-based, as Keras prints it
  double loss = 0, accuracy = 0;
  std::optional<double> val_loss, val_accuracy;
  double lr = 0;  // the learning rate of the epoch's last step
  double seconds = 0;
};

struct History {
  std::vector<EpochLog> epochs;
  bool stopped_early = false;
  int best_epoch = 0;  // 1-based; 0 when not monitored
  bool restored_best = false;
};

// The value of a metric of an epoch: "loss", "accuracy", "val_loss", "val_accuracy"
// (absent when the run has no validation data).
std::optional<double> epoch_metric(const EpochLog& e, const std::string& name);

// Everything a resumed run needs besides the options: with it, fit continues exactly as
// the uninterrupted run would have (the shuffle, dropout masks and augmentation are pure
// functions of the seed and the epoch or step, so no generator state is needed).
struct TrainState {
  int epoch = 0;              // epochs completed (the resumed run's Keras initial_epoch)
  int64_t iterations = 0;     // optimizer steps taken
  int64_t train_samples = 0;  // size of the training split (a resumed run must match)
  Parameters::Snapshot weights;
  // The optimizer's state buffers, named as Optimizer::slots(), each laid out as
  // weights.values.
  struct Slot {
    std::string name;
    std::vector<float> values;
  };
  std::vector<Slot> optimizer_slots;
  nlohmann::json schedule = nlohmann::json::object();  // LrSchedule::state_json()
  EarlyStopper::State stopping;
  Parameters::Snapshot best_weights;  // early stopping's best, when it restores them
  History history;
};

struct TrainBegin {
  int initial_epoch = 0;  // epochs already done (a resumed run)
  int epochs = 0;         // the total
  int64_t steps_per_epoch = 0;
  int64_t train_samples = 0, val_samples = 0;
};

struct EpochEnd {
  const EpochLog& log;
  const History& history;  // this epoch included
  int epochs = 0;          // the total
  bool stopping = false;   // early stopping ends the run after this epoch
  // A host copy of the run's state after this epoch (downloads: call it only when needed).
  std::function<TrainState()> capture_state;
};

// Keras's callbacks: fit calls every hook of every callback in order.
class FitCallback {
 public:
  virtual ~FitCallback() = default;
  virtual void on_train_begin(const TrainBegin& /*info*/) {}
  virtual void on_epoch_begin(int /*epoch*/, int /*epochs*/, int64_t /*steps*/) {}
  // After each step (0-based, of `steps`). `running` holds the epoch's running loss and
  // accuracy when fit read them at this step (a read synchronizes a GPU, so fit reads
  // only a few times per epoch, when FitOptions::progress_reads asks, and always after
  // the last step: then they are the epoch's figures), else null.
  virtual void on_batch_end(int64_t /*step*/, int64_t /*steps*/, const Metrics* /*running*/) {}
  virtual void on_epoch_end(const EpochEnd& /*end*/) {}
  virtual void on_train_end(const History& /*history*/) {}
  // Keras's model.stop_training: asked after every epoch's on_epoch_end; true ends the run
  // after that epoch (a target reached), with no early-stopping restore of weights.
  virtual bool stop_training() const { return false; }
};

}  // namespace cnn
