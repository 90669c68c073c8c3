// Checkpoints of a training run, in the safetensors format of engine/io/checkpoint.h, and
// the callback that writes them every epoch.
//
// Tensors (float32, named by layer):
//   <layer>/<param>                   every parameter and non-trainable state, as the
//                                     weights file names them
//   optimizer/<slot>/<layer>/<param>  the optimizer's moments (slot "m" and "v" for Adam,
//                                     "momentum" for SGD, "velocity" for RMSprop)
//   early_stopping/best/<layer>/<param>  early stopping's best weights, when it will
//                                     restore them
// Metadata (strings; structured values are JSON text):
//   format "cnn-engine-checkpoint", format_version "1", checksum
//   model, model_source ("zoo" or "file"), model_json (the model's description, which
//   model_from_json reads), frozen_layers (comma-separated)
//   epoch (completed), iterations (optimizer steps), train_samples, seed
//   options (fit options, see fit_options_to_json), data (where the data came from)
//   lr_schedule_state, early_stopping_state, history, optimizer_slots
//   rng: how the random streams derive from the seed (nothing else is needed to resume:
//   the shuffle of epoch e is a pure function of (seed, e), dropout and augmentation of
//   (seed, step))
//   checkpoint_monitor, checkpoint_best, checkpoint_best_epoch (the Checkpointer's state)
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "engine/backend/backend.h"
#include "engine/graph/model.h"
#include "engine/graph/parameters.h"
#include "engine/io/checkpoint.h"
#include "engine/train/callbacks.h"

namespace cnn {

inline constexpr const char* kCheckpointFormat = "cnn-engine-checkpoint";

// Which model a checkpoint holds, and how to build it again.
struct ModelDescription {
  std::string name;
  bool from_file = false;  // a model file (else a zoo model, rebuilt by name)
  std::string json;        // model_to_json of the model as trained (frozen flags included)
  std::vector<std::string> frozen_layers;

  static ModelDescription of(const Model& model, bool from_file);
  // Builds the model again: by name from the zoo (then freezes the frozen layers), or
  // from the stored description for a model file.
  Model build(const std::string& origin) const;
};

// What a run stores besides its state: the options to resume with and notes for humans.
struct RunInfo {
  ModelDescription model;
  uint64_t seed = 0;
  nlohmann::json options = nlohmann::json::object();  // fit_options_to_json(...)
  nlohmann::json data = nlohmann::json::object();     // {"dir": ..., "limit": ..., ...}
};

// The file contents for a run's state (for write_checkpoint_file).
CheckpointFile make_checkpoint(const Model& model, const Parameters& params, const RunInfo& run,
                               const TrainState& state);

// A checkpoint read and checked as a file; the model-specific checks come with state()
// and load_weights().
class Checkpoint {
 public:
  // Refuses (DataError naming the file) anything that is not a whole, uncorrupted
  // checkpoint of this engine. With `allow_weights_file`, a weights file of save_weights
  // is accepted too (weights only: no state, no options).
  static Checkpoint read(const std::string& path, bool allow_weights_file = false);

  const std::string& path() const { return path_; }
  bool is_weights_file() const { return weights_only_; }
  const CheckpointFile& file() const { return file_; }
  const RunInfo& run() const { return run_; }
  int epoch() const { return epoch_; }
  // A metadata value, or "" when absent.
  std::string meta(const std::string& key) const;

  // Checks that `model` is the checkpoint's (its name, every tensor present with its
  // shape, no tensor that the model lacks): a clear DataError otherwise.
  void check_model(const Model& model, const Parameters& params) const;
  // The run's state for `model` (check_model first).
  TrainState state(const Model& model, const Parameters& params) const;
  // Only the weights (and non-trainable state), into params.
  void load_weights(const Model& model, Parameters& params) const;

 private:
  // The file's tensor for the model's parameter `e`, of its shape: a DataError otherwise.
  const CheckpointFile::Tensor& tensor_of(const Model& model, const Parameters::Entry& e) const;

  std::string path_;
  CheckpointFile file_;
  RunInfo run_;
  bool weights_only_ = false;
  int epoch_ = 0;
};

// A model with its trained weights, ready for predict or evaluate, from a checkpoint or a
// weights file (whose metadata names a zoo model). Built in place: params refers to model.
struct InferenceModel {
  Model model;
  std::unique_ptr<Parameters> params;
  std::string source;  // "mnist-cnn (30762 parameters) from checkpoint c.safetensors (epoch 3)"
};
// `expected_model`, when not empty, must be the checkpoint's model (a clear refusal
// otherwise).
std::unique_ptr<InferenceModel> load_checkpoint_for_inference(
    const std::string& path, Backend& backend, const std::string& expected_model = "");

// Keras's ModelCheckpoint, twice: after every epoch the run's state goes to
// DIR/last.safetensors, and to DIR/best.safetensors when the monitored metric improved
// (strictly, as Keras's save_best_only; the first epoch always counts). Writes are
// atomic, so a kill leaves the previous file whole; stale temporaries of dead processes
// are removed when the checkpointer starts.
class Checkpointer : public FitCallback {
 public:
  // `resumed`: the checkpoint the run continues (its best value carries over).
  Checkpointer(std::string dir, const Model& model, const Parameters& params, RunInfo run,
               std::string monitor, const Checkpoint* resumed = nullptr);

  void on_epoch_end(const EpochEnd& end) override;

  std::string last_path() const;
  std::string best_path() const;
  const std::string& monitor() const { return monitor_; }
  int last_epoch() const { return last_epoch_; }  // 0: none written yet
  int best_epoch() const { return best_epoch_; }
  std::optional<double> best() const { return best_; }

 private:
  std::string dir_;
  const Model& model_;
  const Parameters& params_;
  RunInfo run_;
  std::string monitor_;
  std::optional<double> best_;
  int best_epoch_ = 0, last_epoch_ = 0;
};

// Removes `<dir>/<name>.tmp.<pid>` files left by write_file_atomic in processes that no
// longer run; returns how many. A temporary of a live process is left alone.
int remove_stale_temporaries(const std::string& dir, const std::string& name);

}  // namespace cnn
